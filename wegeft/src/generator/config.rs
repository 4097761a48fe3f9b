//! Hyper-parameters of a WeGeFT adapter.

use burn::config::Config;

/// How (φ, ψ) start out. Both presets give ΔW = 0 at step 0; they follow the two official code bases.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum WegeftInit {
    /// The official ViT code: φ gets PyTorch's default `Linear` init (U(±1/√d_in)), ψ is zero, s = 1.
    Vision,
    /// The official LLM (PEFT) code: φ is zero, ψ is Kaiming-uniform(a=√5) (U(±1/√d_in)), s = α/r.
    Llm,
}

/// Whether layers share one (φ, ψ) pair or learn their own.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// One pair per module type: every `blocks.N.attn.proj` shares one, every `blocks.N.mlp.fc1` another.
    /// The module type is the layer name with its numeric components (layer indices) wildcarded.
    PerModuleType,
    /// Every adapted layer learns its own pair.
    PerLayer,
}

/// Configuration of WeGeFT: `W' = (I + s·ψᵀφᵀ) W` in burn's `[d_in, d_out]` layout.
#[derive(Config, Debug, PartialEq)]
pub struct WegeftConfig {
    /// Rank r of the generator (φ: d_in×r, ψ: r×d_in).
    pub rank: usize,
    /// Initialisation preset.
    #[config(default = "WegeftInit::Vision")]
    pub init: WegeftInit,
    /// α in s = α/r. `None` takes the preset's default: s = 1 for `Vision`, α = 2r (s = 2) for `Llm`.
    #[config(default = "None")]
    pub alpha: Option<f64>,
    /// Dropout on the frozen weight W before φ (the LLM code uses 0.1); only active while training.
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Sharing of (φ, ψ) across layers.
    #[config(default = "Sharing::PerModuleType")]
    pub sharing: Sharing,
}

impl WegeftConfig {
    /// The scale s applied to the generated update.
    pub fn scale(&self) -> f64 {
        match (self.alpha, self.init) {
            (Some(alpha), _) => alpha / self.rank as f64,
            (None, WegeftInit::Vision) => 1.0,
            (None, WegeftInit::Llm) => 2.0,
        }
    }
}
