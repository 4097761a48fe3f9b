//! The fine-tuning methods a run compares: WeGeFT (shared or per layer), LoRA, a linear probe,
//! and full fine-tuning.

use std::fmt;
use std::str::FromStr;

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use wegeft::{Injector, LoraConfig, Sharing, Targets, WegeftConfig, WegeftInit};

use crate::error::Result;

/// What a run trains besides the head.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// `targets` (`None` for methods without adapter).
    pub fn injector(self, rank: usize, targets: &[String]) -> Result<Option<Injector>> {
        let targets = targets.iter().fold(Targets::new(), |t, suffix| t.suffix(suffix.as_str()));
        let wegeft = |sharing| WegeftConfig::new(rank).with_init(WegeftInit::Vision).with_sharing(sharing);
        let injector = match self {
            Self::Wegeft => Injector::new(wegeft(Sharing::PerModuleType), targets)?,
            Self::WegeftLayer => Injector::new(wegeft(Sharing::PerLayer), targets)?,
            Self::Lora => Injector::new(LoraConfig::new(rank), targets)?,
            Self::Linear | Self::Full => return Ok(None),
        };
        Ok(Some(injector))
    }

    /// Whether the pretrained weights train too.
    pub fn trains_backbone(self) -> bool {
        self == Self::Full
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Wegeft => "wegeft",
            Self::WegeftLayer => "wegeft-layer",
            Self::Lora => "lora",
            Self::Linear => "linear",
            Self::Full => "full",
        })
    }
}

impl FromStr for Method {
    type Err = String;

    fn from_str(name: &str) -> std::result::Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|method| method.to_string() == name)
            .ok_or_else(|| format!("unknown method `{name}`: expected wegeft, wegeft-layer, lora, linear or full"))
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
