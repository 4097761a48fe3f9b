//! The methods by name, as command lines and run configs choose them, each with the settings
//! the paper (and the method's own paper) used in a domain.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::dora::DoraConfig;
use super::lora::LoraConfig;
use super::vera::VeraConfig;
use super::wegeft::{Sharing, WegeftConfig, WegeftInit};
use super::AdapterMethod;

/// An adapter method by name: the one list every app's `--methods` takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum MethodName {
    /// WeGeFT, one (φ, ψ) pair per module type (the paper's setting).
    Wegeft,
    /// WeGeFT, one pair per layer.
    WegeftLayer,
    /// LoRA, the paper's main baseline.
    Lora,
    /// DoRA: LoRA with a learned magnitude per output.
    Dora,
    /// VeRA: shared frozen random projections, trained scaling vectors.
    Vera,
}

/// Which of the paper's two settings a run follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Domain {
    /// ViTs on VTAB-1k: the official ViT code's init, s = 1, no dropout.
    Vision,
    /// Decoders on instruction data: the official PEFT code's init, α = 2r, dropout.
    Llm,
}

/// Settings that override a preset; `None` keeps it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Overrides {
    /// The rank r.
    pub rank: Option<usize>,
    /// α in s = α/r (ignored by VeRA, which has no scale).
    pub alpha: Option<f64>,
    /// The dropout probability.
    pub dropout: Option<f64>,
}

impl MethodName {
    /// Every method, in report order.
    pub const ALL: [Self; 5] = [Self::Lora, Self::Dora, Self::Vera, Self::Wegeft, Self::WegeftLayer];

    /// The rank the papers use: WeGeFT 16 on ViTs and 64 on LLMs; LoRA and DoRA 8 and 16;
    /// VeRA 256 (its paper's ViT rank) and 1024 (WeGeFT's LLM baseline).
    pub fn default_rank(self, domain: Domain) -> usize {
        match (self, domain) {
            (Self::Wegeft | Self::WegeftLayer, Domain::Vision) => 16,
            (Self::Wegeft | Self::WegeftLayer, Domain::Llm) => 64,
            (Self::Lora | Self::Dora, Domain::Vision) => 8,
            (Self::Lora | Self::Dora, Domain::Llm) => 16,
            (Self::Vera, Domain::Vision) => 256,
            (Self::Vera, Domain::Llm) => 1024,
        }
    }

    /// The method's config with the paper's settings for `domain`, overridden where asked.
    pub fn config(self, domain: Domain, overrides: Overrides) -> AdapterMethod {
        let rank = overrides.rank.unwrap_or_else(|| self.default_rank(domain));
        let llm = domain == Domain::Llm;
        // The LLM baselines scale by α = 2r; the ViT code leaves s = 1.
        let alpha = overrides.alpha.or(llm.then_some(2.0 * rank as f64));
        let dropout = |llm_default: f64| overrides.dropout.unwrap_or(if llm { llm_default } else { 0.0 });
        match self {
            Self::Wegeft | Self::WegeftLayer => {
                let init = if llm { WegeftInit::Llm } else { WegeftInit::Vision };
                let sharing = if self == Self::Wegeft { Sharing::PerModuleType } else { Sharing::PerLayer };
                WegeftConfig::new(rank).with_init(init).with_alpha(alpha).with_dropout(dropout(0.1)).with_sharing(sharing).into()
            }
            Self::Lora => LoraConfig::new(rank).with_alpha(alpha).with_dropout(dropout(0.05)).into(),
            Self::Dora => DoraConfig::new(rank).with_alpha(alpha).with_dropout(dropout(0.05)).into(),
            Self::Vera => VeraConfig::new(rank).with_dropout(dropout(0.05)).into(),
        }
    }
}

impl fmt::Display for MethodName {
    /// The name the command line and run directories use (`wegeft-layer`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(clap::ValueEnum::to_possible_value(self).expect("no skipped variants").get_name())
    }
}
