//! The one error type of the crate: every failure names the file, key or layer it is about.

use std::path::PathBuf;

/// Everything that can go wrong when planning, building, saving or loading an adapter.
#[derive(Debug, thiserror::Error)]
pub enum PeftError {
    /// A configuration value is out of range (rank 0, dropout outside [0, 1), ...).
    #[error("invalid adapter config: {0}")]
    InvalidConfig(String),

    /// A regex target does not compile.
    #[error("invalid target regex `{pattern}`: {source}")]
    BadPattern {
        pattern: String,
        #[source]
        source: regex::Error,
    },

    /// The targets matched none of the linear layers the model offered.
    #[error("the targets {targets} matched none of the {offered} linear layers offered ({examples})")]
    NoTargetMatched {
        targets: String,
        offered: usize,
        examples: String,
    },

    /// The same layer name was offered twice.
    #[error("layer `{0}` was offered twice; layer names must be unique")]
    DuplicateLayer(String),

    /// A shared (φ, ψ) pair is defined on d_in, so every layer of its group must agree on it.
    #[error("group `{group}` shares one (phi, psi) pair, but `{first}` has d_in {first_d_in} and `{layer}` has d_in {d_in}")]
    GroupInputMismatch {
        group: String,
        first: String,
        first_d_in: usize,
        layer: String,
        d_in: usize,
    },

    /// A planned layer is missing from the model it is used with (e.g. on export).
    #[error("layer `{0}` is in the adapter's plan but the model has no such layer")]
    MissingLayer(String),

    /// Saving or exporting an adapter of a model that has none (an empty bank).
    #[error("the model has no adapter to save: its bank is empty (nothing targeted, or merged)")]
    EmptyBank,

    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// `adapter_config.json` is not valid JSON or lacks a required field.
    #[error("{path}: {message}")]
    BadConfigFile { path: PathBuf, message: String },

    /// The adapter file was written by a newer, incompatible version.
    #[error("{path}: adapter format version {found} is not supported (this build reads versions up to {supported})")]
    UnsupportedVersion {
        path: PathBuf,
        found: u64,
        supported: u64,
    },

    /// The adapter file describes another adapter than the one the model was built with.
    #[error("{path}: the adapter does not fit this model: {detail}")]
    ConfigMismatch { path: PathBuf, detail: String },

    /// The safetensors file is corrupt or truncated.
    #[error("{path}: not a valid safetensors file: {reason}")]
    Safetensors { path: PathBuf, reason: String },

    /// A tensor the adapter needs is not in the file.
    #[error("{path}: missing tensor `{key}` (expected shape {expected:?})")]
    MissingTensor {
        path: PathBuf,
        key: String,
        expected: Vec<usize>,
    },

    /// The file holds a tensor the adapter does not know (strict loading).
    #[error("{path}: unexpected tensor `{key}` with shape {shape:?}")]
    UnexpectedTensor {
        path: PathBuf,
        key: String,
        shape: Vec<usize>,
    },

    /// A run asked to resume has no complete checkpoint.
    #[error("{dir}: no complete checkpoint (model, optim and scheduler of one epoch) to resume from")]
    NoCheckpoint { dir: PathBuf },

    /// A tensor has the wrong shape.
    #[error("{path}: tensor `{key}` has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        path: PathBuf,
        key: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },

    /// A tensor is stored in a dtype that cannot become an adapter weight.
    #[error("{path}: tensor `{key}` has dtype {dtype}, expected F32, F16, BF16 or F64")]
    UnsupportedDtype {
        path: PathBuf,
        key: String,
        dtype: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, PeftError>;

impl PeftError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
