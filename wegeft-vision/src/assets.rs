//! Where downloaded and converted assets live: `$WEGEFT_CACHE/assets`, by default
//! `~/.cache/wegeft/assets` (outside git; `cargo xtask assets vit` fills it).

use std::path::PathBuf;

/// The converted DINOv2 ViT-S/14 checkpoint (timm layout), made by `cargo xtask assets vit`.
pub const DINOV2_VITS14: &str = "dinov2_vits14.safetensors";

/// The asset directory.
pub fn asset_dir() -> PathBuf {
    let cache = std::env::var_os("WEGEFT_CACHE").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
        home.join(".cache/wegeft")
    });
    cache.join("assets")
}

/// The offline VTAB-1k-style suite, made by `cargo xtask assets vtab`.
pub const VTAB_SUITE: &str = "vtab";
