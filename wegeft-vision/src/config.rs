//! ViT hyper-parameters and the standard presets.

use burn::config::Config;

use crate::error::VisionError;

/// The per-channel mean and std a checkpoint's images are normalised with.
#[derive(Config, Debug, PartialEq)]
pub struct Normalization {
    /// Channel means (RGB).
    pub mean: [f32; 3],
    /// Channel standard deviations (RGB).
    pub std: [f32; 3],
}

impl Normalization {
    /// ImageNet statistics (DINOv2, most timm in1k/in21k models other than AugReg).
    pub fn imagenet() -> Self {
        Self::new([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    }

    /// Mean 0.5, std 0.5 (timm's AugReg `vit_*_patch16_224.augreg_in21k` checkpoints).
    pub fn inception() -> Self {
        Self::new([0.5; 3], [0.5; 3])
    }
}

/// A Vision Transformer in the layout of timm's `VisionTransformer`.
#[derive(Config, Debug, PartialEq)]
pub struct VitConfig {
    /// Side of the pretrained input image; the position embeddings cover its patch grid.
    pub image_size: usize,
    /// Side of a square patch.
    pub patch_size: usize,
    /// Token width D.
    pub embed_dim: usize,
    /// Number of blocks.
    pub depth: usize,
    /// Attention heads; D must divide by it.
    pub num_heads: usize,
    /// Classes of the head; 0 for a backbone without head.
    pub num_classes: usize,
    /// MLP hidden width as a multiple of D.
    #[config(default = 4.0)]
    pub mlp_ratio: f64,
    /// Initial LayerScale γ (DINOv2: 1e-5); `None` for no LayerScale.
    #[config(default = "None")]
    pub layer_scale: Option<f64>,
    /// LayerNorm epsilon (timm and DINOv2: 1e-6).
    #[config(default = 1e-6)]
    pub norm_eps: f64,
    /// Stochastic depth rate of the last block (linearly increasing from 0).
    #[config(default = 0.0)]
    pub drop_path: f64,
    /// The normalisation the checkpoint expects.
    #[config(default = "Normalization::imagenet()")]
    pub normalization: Normalization,
}

impl VitConfig {
    fn standard(embed_dim: usize, depth: usize, num_heads: usize, num_classes: usize) -> Self {
        Self::new(224, 16, embed_dim, depth, num_heads, num_classes)
    }

    /// ViT-Ti/16 at 224 (AugReg normalisation).
    pub fn tiny(num_classes: usize) -> Self {
        Self::standard(192, 12, 3, num_classes).with_normalization(Normalization::inception())
    }

    /// ViT-S/16 at 224 (AugReg normalisation).
    pub fn small(num_classes: usize) -> Self {
        Self::standard(384, 12, 6, num_classes).with_normalization(Normalization::inception())
    }

    /// ViT-B/16 at 224 (AugReg in21k normalisation).
    pub fn base(num_classes: usize) -> Self {
        Self::standard(768, 12, 12, num_classes).with_normalization(Normalization::inception())
    }

    /// ViT-L/16 at 224 (AugReg in21k normalisation).
    pub fn large(num_classes: usize) -> Self {
        Self::standard(1024, 24, 16, num_classes).with_normalization(Normalization::inception())
    }

    /// DINOv2 ViT-S/14: patch 14, LayerScale, position embeddings for a 518 px (37×37) grid.
    pub fn dinov2_small(num_classes: usize) -> Self {
        Self::new(518, 14, 384, 12, 6, num_classes).with_layer_scale(Some(1e-5))
    }

    /// Checks that the sizes describe a ViT.
    pub fn validate(&self) -> crate::error::Result<()> {
        let problem = if self.patch_size == 0 || self.image_size < self.patch_size {
            Some(format!("patch size {} does not fit image size {}", self.patch_size, self.image_size))
        } else if self.num_heads == 0 || !self.embed_dim.is_multiple_of(self.num_heads) {
            Some(format!("{} heads do not divide embed_dim {}", self.num_heads, self.embed_dim))
        } else if !(0.0..1.0).contains(&self.drop_path) {
            Some(format!("drop_path must be in [0, 1), got {}", self.drop_path))
        } else if self.depth == 0 || self.mlp_hidden() == 0 {
            Some("depth and MLP width must be positive".to_string())
        } else {
            None
        };
        problem.map_or(Ok(()), |problem| Err(VisionError::InvalidConfig(problem)))
    }

    /// Side of the pretrained patch grid.
    pub fn grid_size(&self) -> usize {
        self.image_size / self.patch_size
    }

    /// The MLP's hidden width.
    pub fn mlp_hidden(&self) -> usize {
        (self.embed_dim as f64 * self.mlp_ratio).round() as usize
    }
}
