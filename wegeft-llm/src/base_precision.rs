//! How the frozen base is held in memory: floats of a precision, or the blocks its file stores.

use std::fmt;

use serde::{Deserialize, Serialize};
use wegeft::Precision;

/// The frozen base's storage, as `--base-precision` names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BasePrecision {
    /// 32-bit floats.
    #[default]
    F32,
    /// IEEE half precision (embedding, projections and head); the adapter stays f32.
    F16,
    /// bfloat16, likewise.
    Bf16,
    /// As the GGUF file stores it: projections, embedding and output head in quantisation blocks
    /// (Q4_K, Q8_0, …), decoded a tile at a time in each product; norms, and HF checkpoints, in
    /// f32.
    Stored,
}

impl BasePrecision {
    /// The float precision of what is not kept in blocks.
    pub fn precision(self) -> Precision {
        match self {
            Self::F32 | Self::Stored => Precision::F32,
            Self::F16 => Precision::F16,
            Self::Bf16 => Precision::Bf16,
        }
    }

    /// Whether quantised projections stay in their blocks.
    pub fn keeps_blocks(self) -> bool {
        self == Self::Stored
    }
}

impl fmt::Display for BasePrecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stored => f.write_str("stored"),
            other => other.precision().fmt(f),
        }
    }
}
