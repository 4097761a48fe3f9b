//! Errors of the LLM crate.

use std::path::PathBuf;

/// What can go wrong loading or running a decoder.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// A file that cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A malformed or unsupported checkpoint (GGUF, safetensors, config.json).
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A tensor the model needs is missing or has the wrong shape.
    #[error("{path}: tensor `{name}`: {reason}")]
    Tensor {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Settings no run or generation can use.
    #[error("invalid settings: {0}")]
    InvalidConfig(String),
    /// The tokenizer could not be built or failed on a text.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A chat template that does not compile or fails to render.
    #[error("chat template: {0}")]
    Template(String),
    /// Adapter planning or files.
    #[error(transparent)]
    Peft(#[from] wegeft::PeftError),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, LlmError>;
