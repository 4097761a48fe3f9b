//! Hyper-parameters of the LoRA baseline.

use burn::config::Config;
use burn::tensor::backend::Backend;
use serde_json::{json, Map, Value};

use super::adapter::LoraAdapter;
use crate::io::keys;
use crate::methods::{check_common, PeftMethod, TensorSpec};
use crate::plan::PlannedLayer;

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

impl PeftMethod for LoraConfig {
    type Adapter<B: Backend> = LoraAdapter<B>;
    const NAME: &'static str = "lora";

    fn rank(&self) -> usize {
        self.rank
    }

    fn scale(&self) -> f64 {
        self.alpha.map_or(1.0, |alpha| alpha / self.rank as f64)
    }

    fn validate(&self) -> crate::Result<()> {
        check_common(self.rank, self.dropout, self.alpha)
    }

    /// A·B has rank at most min(d_in, d_out).
    fn rank_limit(&self, d_in: usize, d_out: usize) -> usize {
        d_in.min(d_out)
    }

    fn layer_tensors(&self, owner: &PlannedLayer) -> Vec<TensorSpec> {
        lora_tensors(self.rank, owner)
    }

    fn init<B: Backend>(&self, owner: &PlannedLayer, _statistic: Option<&[f32]>, device: &B::Device) -> crate::Result<LoraAdapter<B>> {
        Ok(LoraAdapter::init(owner.d_in, owner.d_out, self.rank, self.scale(), self.dropout, device))
    }

    fn peft_fields(&self) -> Map<String, Value> {
        lora_peft_fields(self.rank, self.scale(), self.dropout, false)
    }

    fn from_peft_fields(fields: &Map<String, Value>) -> Option<crate::Result<Self>> {
        let (rank, alpha, dropout) = read_lora_fields(fields, false)?;
        Some(Ok(Self::new(rank).with_alpha(Some(alpha)).with_dropout(dropout)))
    }
}

/// LoRA's A (r×d_in) and B (d_out×r) in PEFT's layout, the transposes of burn's parameters.
pub(crate) fn lora_tensors(rank: usize, owner: &PlannedLayer) -> Vec<TensorSpec> {
    vec![
        TensorSpec::new(keys::of_layer(&owner.name, "lora_A.weight"), [rank, owner.d_in]).transposed(),
        TensorSpec::new(keys::of_layer(&owner.name, "lora_B.weight"), [owner.d_out, rank]).transposed(),
    ]
}

/// The fields PEFT's `LoraConfig` reads (DoRA is a LoRA config with `use_dora`).
pub(crate) fn lora_peft_fields(rank: usize, scale: f64, dropout: f64, use_dora: bool) -> Map<String, Value> {
    let fields = json!({
        "peft_type": "LORA",
        "r": rank,
        "lora_alpha": scale * rank as f64,
        "lora_dropout": dropout,
        "use_dora": use_dora,
        "bias": "none",
        "fan_in_fan_out": false,
        "task_type": null,
        "base_model_name_or_path": null,
        "modules_to_save": null,
        "init_lora_weights": true,
    });
    fields.as_object().expect("an object").clone()
}

/// Rank, α and dropout of a PEFT LoRA config whose `use_dora` is `use_dora`; `None` for other
/// methods' configs and for LoRA configs with a rank or α that is missing or not a number.
pub(crate) fn read_lora_fields(fields: &Map<String, Value>, use_dora: bool) -> Option<(usize, f64, f64)> {
    if fields.get("peft_type")?.as_str()? != "LORA" || fields.get("use_dora").and_then(Value::as_bool).unwrap_or(false) != use_dora {
        return None;
    }
    let rank = fields.get("r")?.as_u64()? as usize;
    let alpha = fields.get("lora_alpha")?.as_f64()?;
    let dropout = fields.get("lora_dropout").and_then(Value::as_f64).unwrap_or(0.0);
    Some((rank, alpha, dropout))
}

