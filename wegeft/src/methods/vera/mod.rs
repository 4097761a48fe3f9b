//! VeRA (Kopiczko et al., 2024): one pair of frozen random projections shared by every adapted
//! layer, and two trained scaling vectors per layer, as HF PEFT's `VeraModel` computes it.

mod adapter;
mod config;

pub use adapter::VeraAdapter;
pub use config::VeraConfig;
