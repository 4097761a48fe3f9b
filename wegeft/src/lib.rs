//! WeGeFT and LoRA adapters for burn.
//!
//! WeGeFT (weight-generative fine-tuning, ICML 2025) fine-tunes a frozen linear layer by
//! generating its update from the pretrained weight: in burn's `[d_in, d_out]` layout
//! `W' = (I + s·ψᵀφᵀ) W`, so `y = xW + b + s·(xψᵀ)(φᵀW)`. One (φ, ψ) pair can serve every layer of
//! a module type, which makes the adapter tiny: 24,576 parameters for ViT-B's twelve `attn.proj`.
//!
//! Wrap your model's linear layers with an [`Injector`] while you build it; the targeted ones get
//! a slot in the [`AdapterBank`] that your model keeps as a field:
//!
//! ```
//! use burn::{backend::{Autodiff, NdArray}, nn::LinearConfig, tensor::Tensor};
//! use wegeft::{Injector, Targets, WegeftConfig};
//! type B = Autodiff<NdArray>;
//! let device = Default::default();
//!
//! let mut injector = Injector::new(WegeftConfig::new(8), Targets::new().suffix("attn.proj"))?;
//! let proj = injector.linear("blocks.0.attn.proj", LinearConfig::new(64, 48).init::<B>(&device))?;
//! let bank = injector.finish::<B>(&device)?;           // the adapter: train it, save it
//! let y = proj.forward(Tensor::<B, 2>::ones([4, 64], &device), &bank);
//! let merged = proj.merged(&bank);                     // a plain `Linear` for inference
//! wegeft::save_adapter(&bank, std::env::temp_dir().join("my-adapter"))?;
//! # assert_eq!(y.dims(), [4, 48]);
//! # Ok::<(), wegeft::PeftError>(())
//! ```
//!
//! The frozen base gets no gradient; the optimizer trains the bank (and whatever else you leave
//! trainable, such as a head). [`ParamReport`] counts both. Adapter files are described in [`io`].
pub mod assets;
pub mod error;
pub mod io;
pub mod kernels;
pub mod lora;
pub mod train;
pub mod wegeft;

mod bank;
mod injector;
mod layer;
mod method;
mod params;
mod plan;
mod rng;
mod targets;

pub use bank::AdapterBank;
pub use error::{PeftError, Result};
pub use injector::Injector;
pub use layer::PeftLinear;
pub use lora::{LoraAdapter, LoraConfig};
pub use method::AdapterMethod;
pub use params::ParamReport;
pub use plan::{AdapterGroup, AdapterPlan, PlannedLayer};
pub use rng::SplitMix64;
pub use targets::{layer_index, module_type, TargetPattern, Targets};
pub use wegeft::{Sharing, WegeftConfig, WegeftInit, WegeftPair};
pub use io::{export_peft_lora, load_adapter, save_adapter, AdapterFile};
