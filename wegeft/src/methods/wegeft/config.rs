//! Hyper-parameters of a WeGeFT adapter.

use burn::config::Config;
use burn::tensor::backend::Backend;
use serde_json::{json, Map, Value};

use super::pair::WegeftPair;
use crate::io::keys;
use crate::methods::{check_common, PeftMethod, TensorSpec};
use crate::plan::PlannedLayer;
use crate::targets::module_type;

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

impl PeftMethod for WegeftConfig {
    type Adapter<B: Backend> = WegeftPair<B>;
    const NAME: &'static str = "wegeft";

    fn rank(&self) -> usize {
        self.rank
    }

    fn scale(&self) -> f64 {
        match (self.alpha, self.init) {
            (Some(alpha), _) => alpha / self.rank as f64,
            (None, WegeftInit::Vision) => 1.0,
            (None, WegeftInit::Llm) => 2.0,
        }
    }

    fn validate(&self) -> crate::Result<()> {
        check_common(self.rank, self.dropout, self.alpha)
    }

    /// Φ maps W's columns (d_in vectors) to r dimensions: beyond d_in it adds nothing.
    fn rank_limit(&self, d_in: usize, _d_out: usize) -> usize {
        d_in
    }

    fn group_name(&self, layer: &str) -> String {
        match self.sharing {
            Sharing::PerModuleType => module_type(layer),
            Sharing::PerLayer => layer.to_string(),
        }
    }

    /// Φ = φᵀ and Ψ = ψ, both r×d_in, as the official code's `wegeft_phi`/`wegeft_psi` layers.
    fn layer_tensors(&self, owner: &PlannedLayer) -> Vec<TensorSpec> {
        let shape = [self.rank, owner.d_in];
        vec![
            TensorSpec::new(keys::of_layer(&owner.name, "wegeft_phi.weight"), shape),
            TensorSpec::new(keys::of_layer(&owner.name, "wegeft_psi.weight"), shape),
        ]
    }

    fn init<B: Backend>(&self, owner: &PlannedLayer, _statistic: Option<&[f32]>, device: &B::Device) -> crate::Result<WegeftPair<B>> {
        Ok(WegeftPair::init(owner.d_in, self, device))
    }

    fn peft_fields(&self) -> Map<String, Value> {
        let fields = json!({ "peft_type": "WEGEFT", "r": self.rank });
        fields.as_object().expect("an object").clone()
    }

    /// HF PEFT has no WeGeFT: its adapters are ours.
    fn from_peft_fields(_fields: &Map<String, Value>) -> Option<crate::Result<Self>> {
        None
    }
}
