//! Hyper-parameters of the LoRA baseline.

use burn::config::Config;

/// Configuration of LoRA: `y = xW + b + (α/r)·dropout(x)·A·B`, A: d_in×r (Kaiming), B: r×d_out (zero).
#[derive(Config, Debug, PartialEq)]
pub struct LoraConfig {
    /// Rank r.
    pub rank: usize,
    /// α in s = α/r; `None` means α = r (s = 1).
    #[config(default = "None")]
    pub alpha: Option<f64>,
    /// Dropout on the layer input; only active while training.
    #[config(default = 0.0)]
    pub dropout: f64,
}

impl LoraConfig {
    /// The scale s = α/r.
    pub fn scale(&self) -> f64 {
        self.alpha.map_or(1.0, |alpha| alpha / self.rank as f64)
    }
}
