//! Where the project's downloaded and converted assets live: `$WEGEFT_CACHE/assets`, by default
//! `~/.cache/wegeft/assets` (outside git; `cargo xtask assets …` fills it).

use std::path::PathBuf;

/// The asset directory.
pub fn asset_dir() -> PathBuf {
    let cache = std::env::var_os("WEGEFT_CACHE").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
        home.join(".cache/wegeft")
    });
    cache.join("assets")
}
