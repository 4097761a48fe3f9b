//! LoRA, the baseline WeGeFT is compared with.

mod adapter;
mod config;

pub use adapter::LoraAdapter;
pub use config::LoraConfig;
pub(crate) use config::{lora_peft_fields, lora_tensors, read_lora_fields};
