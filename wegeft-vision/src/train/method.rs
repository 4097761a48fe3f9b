//! The fine-tuning methods a run compares: WeGeFT (shared or per layer), LoRA, a linear probe,
//! and full fine-tuning.

use std::fmt;

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use wegeft::{Injector, LoraConfig, Sharing, Targets, WegeftConfig, WegeftInit};

use crate::error::Result;

/// What a run trains besides the head.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// WeGeFT, one (φ, ψ) pair per module type (the paper's setting).
    Wegeft,
    /// WeGeFT, one pair per layer.
    WegeftLayer,
    /// LoRA, the paper's baseline.
    Lora,
    /// The head alone (linear probe).
    Linear,
    /// Every weight.
    Full,
}

impl Method {
    /// Every method, in report order.
    pub const ALL: [Method; 5] = [Self::Linear, Self::Lora, Self::Wegeft, Self::WegeftLayer, Self::Full];

    /// The paper's rank: 16 for WeGeFT on ViTs, 8 for the LoRA baseline.
    pub fn default_rank(self) -> usize {
        match self {
            Self::Lora => 8,
            _ => 16,
        }
    }

    /// The injector that adds this method's adapter to layers whose names end with one of
    /// `targets` ([`Injector::none`] for methods without adapter).
    pub fn injector(self, rank: usize, targets: &[String]) -> Result<Injector> {
        let targets = targets.iter().fold(Targets::new(), |t, suffix| t.suffix(suffix.as_str()));
        let wegeft = |sharing| WegeftConfig::new(rank).with_init(WegeftInit::Vision).with_sharing(sharing);
        Ok(match self {
            Self::Wegeft => Injector::new(wegeft(Sharing::PerModuleType), targets)?,
            Self::WegeftLayer => Injector::new(wegeft(Sharing::PerLayer), targets)?,
            Self::Lora => Injector::new(LoraConfig::new(rank), targets)?,
            Self::Linear | Self::Full => Injector::none(),
        })
    }

    /// Whether the pretrained weights train too.
    pub fn trains_backbone(self) -> bool {
        self == Self::Full
    }
}

impl fmt::Display for Method {
    /// The name the command line and run directories use (`wegeft-layer`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(clap::ValueEnum::to_possible_value(self).expect("no skipped variants").get_name())
    }
}

/// Makes every parameter of `module` trainable (full fine-tuning of a model loaded frozen).
pub fn unfreeze<B: Backend, M: Module<B>>(module: M) -> M {
    struct Unfreeze;
    impl<B: Backend> ModuleMapper<B> for Unfreeze {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            param.set_require_grad(true)
        }
    }
    module.map(&mut Unfreeze)
}
