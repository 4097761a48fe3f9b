//! LoRA, the baseline WeGeFT is compared with.

mod adapter;
mod config;

pub use adapter::LoraAdapter;
pub use config::LoraConfig;
