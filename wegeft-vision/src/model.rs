//! The Vision Transformer: patch embedding, class token, position embeddings, blocks, norm, head.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};
use wegeft::io::{Init, WeightStore};
use wegeft::precision::{autocast, CastParams};
use wegeft::train::LossScaler;
use wegeft::Precision;
use wegeft::{Adapted, AdapterBank, Injector};

use crate::block::Block;
use crate::config::VitConfig;
use crate::error::{Result, VisionError};
use crate::layer_norm::LayerNorm;
use crate::patch_embed::PatchEmbed;
use crate::pos_embed::PositionEmbedding;

/// A ViT with timm's structure and parameter names, frozen but for its head and adapter.
#[derive(Module, Debug)]
pub struct VisionTransformer<B: Backend> {
    /// `patch_embed`.
    pub patch_embed: PatchEmbed<B>,
    /// `cls_token`, `[1, 1, D]`.
    pub cls_token: Param<Tensor<B, 3>>,
    /// `pos_embed`.
    pub pos_embed: PositionEmbedding<B>,
    /// `blocks`.
    pub blocks: Vec<Block<B>>,
    /// `norm`, the final LayerNorm.
    pub norm: LayerNorm<B>,
    /// `head`, trainable; `None` for a backbone.
    pub head: Option<Linear<B>>,
    /// The adapter (empty when nothing is adapted).
    pub adapters: AdapterBank<B>,
    /// Patch side.
    pub patch_size: usize,
    /// Scales the loss of f16 training ([`LossScaler::for_run`]); `None` otherwise.
    #[module(skip)]
    pub loss_scaler: Option<LossScaler>,
}

impl<B: Backend> VisionTransformer<B> {
    /// Builds the model from `weights`; the `injector` decides which linear layers are adapted
    /// ([`Injector::none`] for none). Layer names are timm's, with the fused qkv split into
    /// `attn.qkv.{q,k,v}`. The head is loaded when the checkpoint has one for
    /// `config.num_classes` classes and is freshly initialised otherwise.
    pub fn load(config: &VitConfig, mut weights: WeightStore, mut injector: Injector, device: &B::Device) -> Result<Self> {
        config.validate()?;
        let dim = config.embed_dim;
        let mut root = weights.root();
        let patch_embed = PatchEmbed::load(&mut root.sub("patch_embed"), config.patch_size, dim, device)?;
        let cls_token = root.param("cls_token", [1, 1, dim], Init::Normal(1e-6), device)?;
        let pos_embed = PositionEmbedding::load(&mut root, config.grid_size(), dim, device)?;
        let blocks = (0..config.depth)
            .map(|index| Block::load(&mut root.sub("blocks").sub(index), &mut injector, config, index, device))
            .collect::<Result<Vec<_>>>()?;
        let norm = LayerNorm::load(&mut root, "norm", dim, config.norm_eps, device)?;
        let head = match config.num_classes {
            0 => None,
            classes if root.has("head.weight", &[classes, dim]) => Some(root.linear("head", dim, classes, true, device)?),
            classes => Some(WeightStore::random().root().linear("head", dim, classes, true, device)?),
        };
        weights.skip("head.");
        weights.finish()?;
        Ok(Self {
            patch_embed,
            cls_token: cls_token.set_require_grad(false),
            pos_embed,
            blocks,
            norm,
            head,
            adapters: injector.finish(device)?,
            patch_size: config.patch_size,
            loss_scaler: None,
        })
    }

    /// The model with the blocks' linear layers (attention and MLP) in `precision`; the patch
    /// embedding, norms, head and adapter stay f32 (the adapter is cast where it is used, so it
    /// trains in f32). A typed error when the backend lacks that precision.
    pub fn with_precision(self, precision: Precision, device: &B::Device) -> Result<Self> {
        precision.check::<B>(device)?;
        let mut cast = CastParams(precision.float_dtype());
        let blocks = self
            .blocks
            .into_iter()
            .map(|block| Block {
                attn: block.attn.map(&mut cast),
                mlp: block.mlp.map(&mut cast),
                ..block
            })
            .collect();
        Ok(Self { blocks, ..self })
    }

    /// The precision the blocks compute in: that of their frozen weights.
    fn block_dtype(&self) -> DType {
        self.blocks.first().map_or(DType::F32, |block| block.attn.q.base.weight.val().dtype())
    }

    /// Replaces the head with the one saved in `path` (`head.weight` [classes, D], `head.bias`).
    pub fn load_head(&mut self, path: &std::path::Path, device: &B::Device) -> Result<()> {
        let head = self.head.as_ref().ok_or_else(|| VisionError::InvalidConfig("the model has no head".into()))?;
        let [dim, classes] = head.weight.dims();
        let mut weights = WeightStore::safetensors(&[path.to_path_buf()])?;
        self.head = Some(weights.root().linear("head", dim, classes, true, device)?);
        Ok(weights.finish()?)
    }

    /// Fails unless both image sides are multiples of the patch size.
    pub fn check_image_size(&self, height: usize, width: usize) -> Result<()> {
        if height.is_multiple_of(self.patch_size) && width.is_multiple_of(self.patch_size) {
            Ok(())
        } else {
            Err(VisionError::ImageSize {
                height,
                width,
                patch: self.patch_size,
            })
        }
    }

    /// Normalised images `[B, 3, H, W]` → final normed tokens `[B, 1 + N, D]`, class token first.
    /// Both sides must be multiples of the patch size ([`Self::check_image_size`] says so as an
    /// error; data pipelines resize to the model's size before this point).
    pub fn forward_features(&self, images: Tensor<B, 4>) -> Tensor<B, 3> {
        let (mut x, _) = self.embed(images);
        for block in &self.blocks {
            x = block.forward(x, &self.adapters);
        }
        // The final norm in f32, and the features stay f32 for the head.
        self.norm.forward(autocast(x, DType::F32))
    }

    /// The tokens the first block sees, `[B, 1 + N, D]` (class token, then the patch grid
    /// row by row, position embeddings added, in the blocks' precision), and the grid's (rows,
    /// columns).
    pub fn embed(&self, images: Tensor<B, 4>) -> (Tensor<B, 3>, (usize, usize)) {
        let [batch, _, height, width] = images.dims();
        let tokens = self.patch_embed.forward(images);
        let dim = tokens.dims()[2];
        let class = self.cls_token.val().expand([batch, 1, dim]);
        let grid = (height / self.patch_size, width / self.patch_size);
        let tokens = Tensor::cat(vec![class, tokens], 1) + self.pos_embed.for_grid(grid.0, grid.1);
        (autocast(tokens, self.block_dtype()), grid)
    }

    /// Class-token logits `[B, classes]` (the pooled features `[B, D]` without head).
    pub fn forward(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        let features = self.forward_features(images);
        let [batch, _, dim] = features.dims();
        let pooled = features.slice([0..batch, 0..1, 0..dim]).reshape([batch, dim]);
        match &self.head {
            Some(head) => head.forward(pooled),
            None => pooled,
        }
    }

}

impl<B: Backend> Adapted<B> for VisionTransformer<B> {
    fn bank(&self) -> &AdapterBank<B> {
        &self.adapters
    }

    fn bank_mut(&mut self) -> &mut AdapterBank<B> {
        &mut self.adapters
    }
}
