//! DoRA (Liu et al., 2024): LoRA's update as the direction of each output's weight column, with
//! its length learned separately, as HF PEFT's `use_dora` computes it.

mod adapter;
mod config;

pub use adapter::DoraAdapter;
pub use config::DoraConfig;
