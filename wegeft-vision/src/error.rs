//! Errors of the vision crate.

use std::path::PathBuf;

/// What can go wrong when building or loading a ViT.
#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    /// A configuration that cannot describe a ViT.
    #[error("invalid ViT config: {0}")]
    InvalidConfig(String),
    /// An image whose sides are not multiples of the patch size.
    #[error("image size {height}x{width} is not a multiple of the patch size {patch}")]
    ImageSize {
        /// The image height in pixels.
        height: usize,
        /// The image width in pixels.
        width: usize,
        /// The model's patch side in pixels.
        patch: usize,
    },
    /// Cluster maps asked of a layer that has no WeGeFT generator.
    #[error("cannot map token clusters: {0}")]
    Explain(String),
    /// A file or directory that cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Bad data: an unreadable image, a malformed split list, a label out of range.
    #[error("{}{}: {reason}", path.display(), line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Data {
        /// The file.
        path: PathBuf,
        /// The 1-based line at fault, where one is known.
        line: Option<usize>,
        /// What is wrong.
        reason: String,
    },
    /// Logits that are not finite: an accuracy scored on them would mean nothing.
    #[error("{label}: the model's logits are not finite on images {first}..{last} (the adapter or head holds values too large to use)")]
    NonFiniteLogits {
        /// What was being evaluated.
        label: String,
        /// The first image of the batch.
        first: usize,
        /// One past its last image.
        last: usize,
    },
    /// Adapter planning or files.
    #[error(transparent)]
    Peft(#[from] wegeft::PeftError),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, VisionError>;
