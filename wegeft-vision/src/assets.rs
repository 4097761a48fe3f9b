//! The vision assets in [`wegeft_backend::asset_dir`], by file name.

/// The converted DINOv2 ViT-S/14 checkpoint (timm layout), made by `cargo xtask assets vit`.
pub const DINOV2_VITS14: &str = "dinov2_vits14.safetensors";

/// The offline VTAB-1k-style suite, made by `cargo xtask assets vtab`.
pub const VTAB_SUITE: &str = "vtab";
