//! WeGeFT and LoRA adapters for burn.
pub mod error;
pub mod io;
pub mod lora;
pub mod wegeft;

mod bank;
mod injector;
mod layer;
mod method;
mod params;
mod plan;
mod targets;

pub use bank::AdapterBank;
pub use error::{PeftError, Result};
pub use injector::Injector;
pub use layer::PeftLinear;
pub use lora::{LoraAdapter, LoraConfig};
pub use method::AdapterMethod;
pub use params::ParamReport;
pub use plan::{AdapterGroup, AdapterPlan, PlannedLayer};
pub use targets::{layer_index, module_type, TargetPattern, Targets};
pub use wegeft::{Sharing, WegeftConfig, WegeftInit, WegeftPair};
pub use io::{export_peft_lora, load_adapter, save_adapter, AdapterFile};
