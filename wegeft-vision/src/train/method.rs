//! What a ViT run trains: an adapter method of the core crate's list (WeGeFT, LoRA, DoRA, VeRA),
//! the head alone (a linear probe), or every weight.

use std::fmt;
use std::sync::OnceLock;

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use clap::builder::PossibleValue;
use serde::{Deserialize, Serialize};
use wegeft::{Domain, Injector, MethodName, Overrides, Targets};

use crate::error::Result;

/// What a run trains besides the head. Run configs and directories name it as the command line does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Method {
    /// An adapter method, with the paper's ViT settings.
    Adapter(MethodName),
    /// The head alone (linear probe).
    Linear,
    /// Every weight.
    Full,
}

impl Method {
    /// Every method, in report order: the probe, the adapters, full fine-tuning.
    pub fn all() -> &'static [Method] {
        static ALL: OnceLock<Vec<Method>> = OnceLock::new();
        ALL.get_or_init(|| {
            let adapters = MethodName::ALL.into_iter().map(Method::Adapter);
            std::iter::once(Method::Linear).chain(adapters).chain([Method::Full]).collect()
        })
    }

    /// The adapter rank a run uses unless told otherwise (`None` without adapter).
    pub fn default_rank(self) -> Option<usize> {
        match self {
            Self::Adapter(name) => Some(name.default_rank(Domain::Vision)),
            Self::Linear | Self::Full => None,
        }
    }

    /// The injector that adds this method's adapter, of rank `rank` (else the method's
    /// default), to layers whose names end with one of `targets` ([`Injector::none`] for methods
    /// without adapter).
    pub fn injector(self, rank: Option<usize>, targets: &[String]) -> Result<Injector> {
        let targets = targets.iter().fold(Targets::new(), |t, suffix| t.suffix(suffix.as_str()));
        Ok(match self {
            Self::Adapter(name) => {
                let overrides = Overrides { rank, ..Overrides::default() };
                Injector::new(name.config(Domain::Vision, overrides), targets)?
            }
            Self::Linear | Self::Full => Injector::none(),
        })
    }

    /// Whether the pretrained weights train too.
    pub fn trains_backbone(self) -> bool {
        self == Self::Full
    }
}

impl From<MethodName> for Method {
    fn from(name: MethodName) -> Self {
        Self::Adapter(name)
    }
}

impl clap::ValueEnum for Method {
    fn value_variants<'a>() -> &'a [Self] {
        Self::all()
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            Self::Adapter(name) => name.to_possible_value()?,
            Self::Linear => PossibleValue::new("linear").help("The head alone (linear probe)"),
            Self::Full => PossibleValue::new("full").help("Every weight (full fine-tuning)"),
        })
    }
}

impl fmt::Display for Method {
    /// The name the command line and run directories use (`wegeft-layer`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(clap::ValueEnum::to_possible_value(self).expect("no skipped variants").get_name())
    }
}

impl From<Method> for String {
    fn from(method: Method) -> Self {
        method.to_string()
    }
}

impl TryFrom<String> for Method {
    type Error = String;

    fn try_from(name: String) -> std::result::Result<Self, String> {
        clap::ValueEnum::from_str(&name, false).map_err(|_| format!("unknown method `{name}`"))
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
