//! Vision Transformers with WeGeFT adapters: timm's `VisionTransformer` layout and the DINOv2
//! variant (patch 14, LayerScale, interpolated position embeddings), loaded from safetensors.

#![warn(missing_docs)]

pub mod assets;
pub mod attention;
pub mod block;
pub mod config;
pub mod data;
pub mod drop_path;
pub mod error;
pub mod explain;
mod layer_norm;
pub mod mlp;
pub mod model;
pub mod patch_embed;
pub mod pos_embed;
pub mod train;

pub use config::{Normalization, VitConfig};
pub use error::{Result, VisionError};
pub use layer_norm::LayerNorm;
pub use model::VisionTransformer;
