//! WeGeFT: the (φ, ψ) pair that generates a layer's update from its frozen weight.

mod config;
mod pair;

pub use config::{Sharing, WegeftConfig, WegeftInit};
pub use pair::WegeftPair;
