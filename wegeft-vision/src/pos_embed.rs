//! Learned absolute position embeddings, resampled bicubically for other grids (as DINOv2 does).

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::Tensor;

use wegeft::io::{Init, Scope};

use crate::error::Result;

/// timm's `pos_embed`, `[1, 1 + G·G, D]`: the class token's position, then the G×G grid.
#[derive(Module, Debug)]
pub struct PositionEmbedding<B: Backend> {
    /// The embeddings, frozen.
    pub pos_embed: Param<Tensor<B, 3>>,
    /// G, the pretrained grid side.
    pub grid: usize,
}

impl<B: Backend> PositionEmbedding<B> {
    pub(crate) fn load(weights: &mut Scope, grid: usize, dim: usize, device: &B::Device) -> Result<Self> {
        let pos_embed = weights.param("pos_embed", [1, 1 + grid * grid, dim], Init::Normal(0.02), device)?;
        Ok(Self { pos_embed: pos_embed.set_require_grad(false), grid })
    }

    /// Embeddings for a `height`×`width` patch grid: the stored ones, or their bicubic resampling
    /// (half-pixel centres, no antialiasing: DINOv2's `interpolate_pos_encoding`).
    pub fn for_grid(&self, height: usize, width: usize) -> Tensor<B, 3> {
        let embed = self.pos_embed.val();
        if height == self.grid && width == self.grid {
            return embed;
        }
        let [_, tokens, dim] = embed.dims();
        let class = embed.clone().slice([0..1, 0..1, 0..dim]);
        let patches = embed
            .slice([0..1, 1..tokens, 0..dim])
            .reshape([1, self.grid, self.grid, dim])
            .permute([0, 3, 1, 2]);
        let options = InterpolateOptions::new(InterpolateMode::Bicubic).with_align_corners(false);
        let resized = interpolate(patches, [height, width], options)
            .permute([0, 2, 3, 1])
            .reshape([1, height * width, dim]);
        Tensor::cat(vec![class, resized], 1)
    }
}
