//! WeGeFT: weight-generative fine-tuning (ICML 2025).

mod config;
mod pair;

pub use config::{Sharing, WegeftConfig, WegeftInit};
pub use pair::WegeftPair;
