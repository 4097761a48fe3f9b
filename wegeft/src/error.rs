//! The one error type of the crate: every failure names the file, key or layer it is about.

use std::path::PathBuf;

/// Everything that can go wrong when planning, building, saving or loading an adapter.
#[derive(Debug, thiserror::Error)]
pub enum PeftError {
    /// A configuration value is out of range (rank 0, dropout outside [0, 1), ...).
    #[error("invalid adapter config: {0}")]
    InvalidConfig(String),

    /// A weight precision the backend cannot store or compute in.
    #[error("the {backend} backend has no {precision} tensors; use f32, or a device that has them (CUDA: f16 and bf16, WGPU: f16 where the adapter offers shader-f16)")]
    Precision {
        /// The precision asked for.
        precision: crate::Precision,
        /// The backend's name.
        backend: String,
    },

    /// A regex target does not compile.
    #[error("invalid target regex `{pattern}`: {source}")]
    BadPattern {
        /// The pattern as given.
        pattern: String,
        /// Why the regex engine rejected it.
        #[source]
        source: regex::Error,
    },

    /// The targets matched none of the linear layers the model offered.
    #[error("the targets {targets} matched none of the {offered} linear layers offered ({examples})")]
    NoTargetMatched {
        /// The targets, as displayed.
        targets: String,
        /// How many linear layers were offered.
        offered: usize,
        /// A few of the offered layer names.
        examples: String,
    },

    /// The same layer name was offered twice.
    #[error("layer `{0}` was offered twice; layer names must be unique")]
    DuplicateLayer(String),

    /// A shared (φ, ψ) pair is defined on d_in, so every layer of its group must agree on it.
    #[error("group `{group}` shares one (phi, psi) pair, but `{first}` has d_in {first_d_in} and `{layer}` has d_in {d_in}")]
    GroupInputMismatch {
        /// The group sharing the pair.
        group: String,
        /// The group's first layer, which fixed its d_in.
        first: String,
        /// The first layer's d_in.
        first_d_in: usize,
        /// The layer that disagrees.
        layer: String,
        /// That layer's d_in.
        d_in: usize,
    },

    /// A planned layer is missing from the model it is used with (e.g. on export).
    #[error("layer `{0}` is in the adapter's plan but the model has no such layer")]
    MissingLayer(String),

    /// Saving or exporting an adapter of a model that has none (an empty bank).
    #[error("the model has no adapter to save: its bank is empty (nothing targeted, or merged)")]
    EmptyBank,

    /// The ranks of a multi-process run were started on different configs, plans or data.
    #[error("{who} from rank 0 on `{field}`: {detail}; every rank must train the same run on the same data")]
    RanksDisagree {
        /// What was compared (`config`, `inputs`, `trainable parameters`, ...).
        field: String,
        /// `rank N differs` or `ranks N, M differ`.
        who: String,
        /// The differing keys or values.
        detail: String,
    },

    /// Rank 0 refused what this rank was about to do; every rank stops with its reason.
    #[error("rank 0: {0}")]
    OnRank0(String),

    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// `adapter_config.json` is not valid JSON or lacks a required field.
    #[error("{path}: {message}")]
    BadConfigFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// The adapter file was written by a newer, incompatible version.
    #[error("{path}: adapter format version {found} is not supported (this build reads versions up to {supported})")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version the file declares.
        found: u64,
        /// The newest version this build reads.
        supported: u64,
    },

    /// The adapter file describes another adapter than the one the model was built with.
    #[error("{path}: the adapter does not fit this model: {detail}")]
    ConfigMismatch {
        /// The file.
        path: PathBuf,
        /// What differs.
        detail: String,
    },

    /// The safetensors file is corrupt or truncated.
    #[error("{path}: not a valid safetensors file: {reason}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What the safetensors parser reported.
        reason: String,
    },

    /// A tensor the adapter needs is not in the file.
    #[error("{path}: missing tensor `{key}` (expected shape {expected:?})")]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The tensor's key.
        key: String,
        /// The shape the model expects.
        expected: Vec<usize>,
    },

    /// The file holds a tensor the adapter does not know (strict loading).
    #[error("{path}: unexpected tensor `{key}` with shape {shape:?}")]
    UnexpectedTensor {
        /// The file.
        path: PathBuf,
        /// The tensor's key.
        key: String,
        /// The tensor's shape in the file.
        shape: Vec<usize>,
    },

    /// A fresh run was pointed at a directory that holds another run.
    #[error(
        "{dir} holds a previous run (its config.json): {}`--overwrite` starts afresh and replaces it",
        if *resumable { "`--resume` continues it, " } else { "it stopped before its first checkpoint, so it cannot be resumed; " }
    )]
    RunExists {
        /// The run directory.
        dir: PathBuf,
        /// Whether it has a complete checkpoint to resume from.
        resumable: bool,
    },

    /// Another process is training into the run directory.
    #[error("{dir} is in use by another run (its .lock is held): wait for it to finish, or choose another `--out`")]
    RunLocked {
        /// The run directory.
        dir: PathBuf,
    },

    /// A resumed run's settings differ from the ones it was started with.
    #[error("{path}: the run was started with other settings, so it cannot resume with these ({differences}); start a new run, or `--overwrite` this one")]
    ResumeMismatch {
        /// The stored config.
        path: PathBuf,
        /// Each differing setting, `key: stored → given`.
        differences: String,
    },

    /// The disk has no room for a run's checkpoints.
    #[error("{dir}: {available} bytes free, but the run's checkpoints need about {needed}; free some space or choose another --out")]
    DiskFull {
        /// The run directory.
        dir: PathBuf,
        /// Bytes the checkpoints need, about.
        needed: u64,
        /// Bytes free on its file system.
        available: u64,
    },

    /// The training loss became NaN or infinite; training stopped there.
    #[error(
        "the training loss became {loss} at epoch {epoch}, iteration {iteration}; training stopped. {}Try a lower learning rate",
        match resume_after {
            Some(last) => format!("The checkpoints of the diverging weights were removed; the last finite one is epoch {last}'s, where `--resume` continues. "),
            None => "No checkpoint from before the divergence remains: start again with `--overwrite`. ".to_string(),
        }
    )]
    NonFiniteLoss {
        /// The epoch it happened in.
        epoch: usize,
        /// The iteration within that epoch.
        iteration: usize,
        /// The loss value.
        loss: f64,
        /// The epoch of the last checkpoint kept, if any.
        resume_after: Option<usize>,
    },

    /// A run asked to resume has no complete checkpoint.
    #[error("{dir}: no complete checkpoint (model, optim and scheduler of one epoch) to resume from; a run stopped before its first epoch ended has none: start it again with `--overwrite`")]
    NoCheckpoint {
        /// The run's checkpoint directory.
        dir: PathBuf,
    },

    /// A tensor has the wrong shape.
    #[error("{path}: tensor `{key}` has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        /// The file.
        path: PathBuf,
        /// The tensor's key.
        key: String,
        /// The shape the model expects.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },

    /// A tensor is stored in a dtype that cannot become an adapter weight.
    #[error("{path}: tensor `{key}` has dtype {dtype}, expected F32, F16, BF16 or F64")]
    UnsupportedDtype {
        /// The file.
        path: PathBuf,
        /// The tensor's key.
        key: String,
        /// The dtype in the file.
        dtype: String,
    },

    /// A stored tensor holds NaN or an infinity, which would poison everything computed from it.
    #[error("{path}: tensor `{key}` holds {value} at element {index}")]
    NonFiniteTensor {
        /// The file.
        path: PathBuf,
        /// The tensor's key.
        key: String,
        /// The first non-finite element's index.
        index: usize,
        /// Its value.
        value: f32,
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
