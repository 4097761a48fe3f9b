//! Image → patch tokens: a convolution whose kernel and stride are the patch size.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use wegeft::io::{Init, Scope};

use crate::error::Result;

/// timm's `patch_embed.proj`.
#[derive(Module, Debug)]
pub struct PatchEmbed<B: Backend> {
    /// The patchifying convolution, frozen.
    pub proj: Conv2d<B>,
}

impl<B: Backend> PatchEmbed<B> {
    pub(crate) fn load(weights: &mut Scope, patch: usize, dim: usize, device: &B::Device) -> Result<Self> {
        let mut proj = Conv2dConfig::new([3, dim], [patch, patch]).with_stride([patch, patch]).init(device);
        proj.weight = weights.param("proj.weight", [dim, 3, patch, patch], Init::Normal(0.02), device)?;
        proj.bias = Some(weights.param("proj.bias", [dim], Init::Zeros, device)?);
        Ok(Self { proj: proj.no_grad() })
    }

    /// `[B, 3, H, W]` → `[B, (H/p)·(W/p), D]`, row-major over the patch grid.
    pub fn forward(&self, images: Tensor<B, 4>) -> Tensor<B, 3> {
        let patches = self.proj.forward(images);
        patches.flatten::<3>(2, 3).swap_dims(1, 2)
    }
}
