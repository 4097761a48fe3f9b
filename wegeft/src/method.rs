//! Which adapter method a bank uses, and its hyper-parameters.

use serde::{Deserialize, Serialize};

use crate::error::{PeftError, Result};
use crate::io::keys;
use crate::lora::LoraConfig;
use crate::plan::PlannedLayer;
use crate::generator::WegeftConfig;

/// The fine-tuning method applied to the targeted layers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdapterMethod {
    /// WeGeFT: update generated from the frozen weight by (φ, ψ).
    Wegeft(WegeftConfig),
    /// LoRA: a free low-rank update per layer.
    Lora(LoraConfig),
}

impl AdapterMethod {
    /// The rank r.
    pub fn rank(&self) -> usize {
        match self {
            Self::Wegeft(config) => config.rank,
            Self::Lora(config) => config.rank,
        }
    }

    /// The scale s applied to the low-rank update.
    pub fn scale(&self) -> f64 {
        match self {
            Self::Wegeft(config) => config.scale(),
            Self::Lora(config) => config.scale(),
        }
    }

    /// The `peft_type` written to adapter files.
    pub fn peft_type(&self) -> &'static str {
        match self {
            Self::Wegeft(_) => "WEGEFT",
            Self::Lora(_) => "LORA",
        }
    }

    /// The tensors (key, PyTorch-layout shape) an adapter file holds for the group whose
    /// parameters `owner` holds.
    pub(crate) fn file_shapes(&self, owner: &PlannedLayer) -> Vec<(String, Vec<usize>)> {
        let (rank, name) = (self.rank(), &owner.name);
        match self {
            Self::Wegeft(_) => vec![
                (keys::wegeft_phi(name), vec![rank, owner.d_in]),
                (keys::wegeft_psi(name), vec![rank, owner.d_in]),
            ],
            Self::Lora(_) => vec![
                (keys::lora_a(name), vec![rank, owner.d_in]),
                (keys::lora_b(name), vec![owner.d_out, rank]),
            ],
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let (dropout, alpha) = match self {
            Self::Wegeft(config) => (config.dropout, config.alpha),
            Self::Lora(config) => (config.dropout, config.alpha),
        };
        if self.rank() == 0 {
            return Err(PeftError::InvalidConfig("rank must be at least 1".into()));
        }
        if !(0.0..1.0).contains(&dropout) {
            return Err(PeftError::InvalidConfig(format!(
                "dropout must be in [0, 1), got {dropout}"
            )));
        }
        if alpha.is_some_and(|alpha| !alpha.is_finite()) {
            return Err(PeftError::InvalidConfig(format!(
                "alpha must be finite, got {alpha:?}"
            )));
        }
        Ok(())
    }
}

impl From<WegeftConfig> for AdapterMethod {
    fn from(config: WegeftConfig) -> Self {
        Self::Wegeft(config)
    }
}

impl From<LoraConfig> for AdapterMethod {
    fn from(config: LoraConfig) -> Self {
        Self::Lora(config)
    }
}
