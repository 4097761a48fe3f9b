//! WeGeFT adapters for burn, with the baselines the paper compares (LoRA, DoRA, VeRA).
//!
//! WeGeFT (weight-generative fine-tuning, ICML 2025) fine-tunes a frozen linear layer by
//! generating its update from the pretrained weight: in burn's `[d_in, d_out]` layout
//! `W' = (I + s·ψᵀφᵀ) W`, so `y = xW + b + s·(xψᵀ)(φᵀW)`. One (φ, ψ) pair can serve every layer of
//! a module type, which makes the adapter tiny: 24,576 parameters for ViT-B's twelve `attn.proj`.
//!
//! The contract for an adapted model, the same for a ViT, a LLaMA or your own model:
//! - while you build it, an [`Injector`] wraps each linear layer (`injector.linear(name, base)`)
//!   as a frozen [`PeftLinear`] that gets a slot if the targets match its name;
//! - the model keeps the [`AdapterBank`] the injector finishes with as a field (an empty one
//!   from [`Injector::none`]) and passes it to every `PeftLinear::forward`;
//! - it implements [`Adapted`] (two one-line methods), which gives merging, export as a PEFT
//!   adapter and parameter counts by walking the model's modules;
//! - a method is one folder of [`methods`]: a config implementing [`PeftMethod`] and a layer
//!   module implementing [`LayerAdapter`].
//!
//! ```
//! use burn::{backend::{Autodiff, NdArray}, module::Module, nn::LinearConfig, tensor::{backend::Backend, Tensor}};
//! use wegeft::{Adapted, AdapterBank, Injector, PeftLinear, Targets, WegeftConfig};
//! type B = Autodiff<NdArray>;
//!
//! #[derive(Module, Debug)]
//! struct Proj<B: Backend> { proj: PeftLinear<B>, adapters: AdapterBank<B> }
//! impl<B: Backend> Adapted<B> for Proj<B> {
//!     fn bank(&self) -> &AdapterBank<B> { &self.adapters }
//!     fn bank_mut(&mut self) -> &mut AdapterBank<B> { &mut self.adapters }
//! }
//!
//! let device = Default::default();
//! let mut injector = Injector::new(WegeftConfig::new(8), Targets::new().suffix("attn.proj"))?;
//! let proj = injector.linear("blocks.0.attn.proj", LinearConfig::new(64, 48).init::<B>(&device))?;
//! let model = Proj { proj, adapters: injector.finish(&device)? };   // the bank: train it, save it
//! let y = model.proj.forward(Tensor::<B, 2>::ones([4, 64], &device), &model.adapters);
//! wegeft::save_adapter(&model.adapters, std::env::temp_dir().join("my-adapter"))?;
//! let merged = model.merged();                                      // plain frozen layers
//! # assert_eq!(y.dims(), [4, 48]);
//! # assert!(merged.adapters.plan().is_none());
//! # Ok::<(), wegeft::PeftError>(())
//! ```
//!
//! The frozen base gets no gradient; the optimizer trains the bank (and whatever else you leave
//! trainable, such as a head). [`ParamReport`] counts both. Adapter files are described in [`io`];
//! pretrained weights come from a [`io::WeightStore`]; [`train`] holds the pieces of a run.

#![warn(missing_docs)]

pub mod error;
pub mod io;
pub mod kernels;
pub mod methods;
pub mod packed;
pub mod precision;
pub mod train;

mod adapted;
mod bank;
mod injector;
mod layer;
mod layer_name;
mod params;
mod plan;
mod targets;

pub use adapted::Adapted;
pub use bank::AdapterBank;
pub use error::{PeftError, Result};
pub use injector::Injector;
pub use io::{export_peft, load_adapter, save_adapter, AdapterFile};
pub use layer::PeftLinear;
pub use layer_name::LayerName;
pub use methods::dora::{DoraAdapter, DoraConfig};
pub use methods::lora::{LoraAdapter, LoraConfig};
pub use methods::vera::{VeraAdapter, VeraConfig};
pub use methods::wegeft::{Sharing, WegeftConfig, WegeftInit, WegeftPair};
pub use methods::{Adapter, AdapterMethod, Domain, FrozenWeight, LayerAdapter, LayerInput, MethodName, Overrides, PeftMethod, TensorSpec};
pub use packed::{PackedWeight, RowDecoder};
pub use params::ParamReport;
pub use precision::Precision;
pub use plan::{AdapterGroup, AdapterPlan, PlannedLayer};
pub use targets::{layer_index, module_type, TargetPattern, Targets};
