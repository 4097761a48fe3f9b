//! The fine-tuning methods, one folder each: WeGeFT, and the baselines the paper compares it
//! with (LoRA, DoRA, VeRA).
//!
//! A method is a config type implementing [`PeftMethod`] and a layer module implementing
//! [`LayerAdapter`]. burn's `#[derive(Module)]` needs one enum over every method's module, so the
//! list at the bottom of this file generates [`Adapter`] (the modules) and [`AdapterMethod`]
//! (the configs, as run configs and adapter files name them), with dispatch to the traits: a new
//! method is its folder plus one line there.

mod method;
mod name;
mod spec;

pub mod dora;
pub mod lora;
pub mod vera;
pub mod wegeft;

pub use method::{FrozenWeight, LayerAdapter, LayerInput, PeftMethod};
pub use name::{Domain, MethodName, Overrides};
pub use spec::TensorSpec;

pub(crate) use method::check_common;
pub(crate) use spec::{module_tensors, stored_param, with_module_tensors};

use std::collections::BTreeMap;

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use dora::DoraAdapter;
use lora::LoraAdapter;
use vera::VeraAdapter;
use wegeft::WegeftPair;

use crate::error::Result;
use crate::io::StoredTensor;
use crate::plan::PlannedLayer;

macro_rules! methods {
    ($($(#[$doc:meta])* $variant:ident($config:ty, $adapter:ident)),* $(,)?) => {
        /// The fine-tuning method applied to the targeted layers, with its hyper-parameters.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum AdapterMethod {
            $($(#[$doc])* $variant($config),)*
        }

        /// One plan group's parameters, whichever method made them.
        #[derive(Module, Debug)]
        pub enum Adapter<B: Backend> {
            $($(#[$doc])* $variant($adapter<B>),)*
        }

        $(impl From<$config> for AdapterMethod {
            fn from(config: $config) -> Self {
                Self::$variant(config)
            }
        })*

        impl AdapterMethod {
            /// The method's name in run configs and on the command line (`wegeft`, `dora`, …).
            pub fn name(&self) -> &'static str {
                match self { $(Self::$variant(_) => <$config as PeftMethod>::NAME,)* }
            }

            /// The group's fresh adapter.
            pub(crate) fn init<B: Backend>(&self, owner: &PlannedLayer, statistic: Option<&[f32]>, device: &B::Device) -> Result<Adapter<B>> {
                Ok(match self { $(Self::$variant(config) => Adapter::$variant(config.init(owner, statistic, device)?),)* })
            }

            /// The rank r.
            pub fn rank(&self) -> usize {
                match self { $(Self::$variant(config) => config.rank(),)* }
            }

            /// The scale s applied to the low-rank update.
            pub fn scale(&self) -> f64 {
                match self { $(Self::$variant(config) => config.scale(),)* }
            }

            /// Fails on settings no layer can use.
            pub(crate) fn validate(&self) -> Result<()> {
                match self { $(Self::$variant(config) => config.validate(),)* }
            }

            /// The largest useful rank for a d_in → d_out layer.
            pub(crate) fn rank_limit(&self, d_in: usize, d_out: usize) -> usize {
                match self { $(Self::$variant(config) => config.rank_limit(d_in, d_out),)* }
            }

            /// The plan group `layer` joins.
            pub(crate) fn group_name(&self, layer: &str) -> String {
                match self { $(Self::$variant(config) => config.group_name(layer),)* }
            }

            /// The file tensors of the group `owner` owns.
            pub(crate) fn layer_tensors(&self, owner: &PlannedLayer) -> Vec<TensorSpec> {
                match self { $(Self::$variant(config) => config.layer_tensors(owner),)* }
            }

            /// The frozen tensors shared by every adapted layer.
            pub(crate) fn shared_tensors(&self, layers: &[PlannedLayer]) -> Vec<TensorSpec> {
                match self { $(Self::$variant(config) => config.shared_tensors(layers),)* }
            }

            /// What the method's init reads from a layer's frozen weight.
            pub(crate) fn weight_statistic<B: Backend>(&self, weight: &FrozenWeight<'_, B>) -> Option<Vec<f32>> {
                match self { $(Self::$variant(config) => config.weight_statistic(weight),)* }
            }

            /// The shared frozen tensors, freshly drawn.
            pub(crate) fn init_shared<B: Backend>(&self, layers: &[PlannedLayer], device: &B::Device) -> Vec<Tensor<B, 2>> {
                match self { $(Self::$variant(config) => config.init_shared(layers, device),)* }
            }

            /// The fields HF PEFT reads from `adapter_config.json`.
            pub(crate) fn peft_fields(&self) -> Map<String, Value> {
                match self { $(Self::$variant(config) => config.peft_fields(),)* }
            }

            /// The method whose PEFT `adapter_config.json` this is, if we support it.
            pub(crate) fn from_peft_fields(fields: &Map<String, Value>) -> Option<Result<Self>> {
                None $(.or_else(|| <$config>::from_peft_fields(fields).map(|config| config.map(Self::$variant))))*
            }
        }

        impl<B: Backend> Adapter<B> {
            /// The adapted layer's output without bias.
            pub fn forward(&self, layer: LayerInput<'_, B>) -> Tensor<B, 2> {
                match self { $(Self::$variant(adapter) => adapter.forward(layer),)* }
            }

            /// The merged weight (f32) of a layer with frozen weight `weight` (f32).
            pub fn merged_weight(&self, weight: Tensor<B, 2>, shared: &[Param<Tensor<B, 2>>]) -> Tensor<B, 2> {
                match self { $(Self::$variant(adapter) => adapter.merged_weight(weight, shared),)* }
            }

            /// The adapter's tensors as a file holds them, laid out by `specs`.
            pub(crate) fn file_tensors(&self, specs: &[TensorSpec]) -> Vec<(String, StoredTensor)> {
                match self { $(Self::$variant(adapter) => module_tensors(adapter, specs),)* }
            }

            /// The adapter with its parameters read from checked file tensors.
            pub(crate) fn with_file_tensors(self, specs: &[TensorSpec], tensors: &BTreeMap<String, StoredTensor>) -> Self {
                match self { $(Self::$variant(adapter) => Self::$variant(with_module_tensors(adapter, specs, tensors)),)* }
            }
        }
    };
}

methods! {
    /// WeGeFT: the update generated from the frozen weight by (φ, ψ), possibly shared per module type.
    Wegeft(wegeft::WegeftConfig, WegeftPair),
    /// LoRA: a free low-rank update per layer.
    Lora(lora::LoraConfig, LoraAdapter),
    /// DoRA: LoRA's direction with a learned magnitude per output.
    Dora(dora::DoraConfig, DoraAdapter),
    /// VeRA: frozen random projections shared by every layer, scaled by trained vectors per layer.
    Vera(vera::VeraConfig, VeraAdapter),
}
