//! Hyper-parameters of VeRA, and its shared projections.

use burn::config::Config;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use serde_json::{json, Map, Value};

use super::adapter::VeraAdapter;
use crate::error::PeftError;
use crate::io::{keys, StoredTensor};
use crate::methods::{check_common, stored_param, PeftMethod, TensorSpec};
use crate::plan::PlannedLayer;
use crate::train::SplitMix64;

/// Configuration of VeRA: `y = xW + b + ((x·Aᵀ)⊙d)·Bᵀ⊙b`, with A (r×d_in) and B (d_out×r) sliced
/// from one frozen random pair sized for the largest adapted layer.
#[derive(Config, Debug, PartialEq)]
pub struct VeraConfig {
    /// Rank r: the width of the shared projections.
    pub rank: usize,
    /// Dropout on the layer input; only active while training.
    #[config(default = 0.0)]
    pub dropout: f64,
    /// The value every element of d starts at (PEFT's `d_initial`); b starts at zero.
    #[config(default = 0.1)]
    pub d_initial: f64,
    /// Seed of the shared projections (PEFT's `projection_prng_key`). Adapter files store the
    /// projections themselves, so a file never depends on a generator.
    #[config(default = 0)]
    pub projection_seed: u64,
}

impl PeftMethod for VeraConfig {
    type Adapter<B: Backend> = VeraAdapter<B>;
    const NAME: &'static str = "vera";

    fn rank(&self) -> usize {
        self.rank
    }

    /// VeRA has no α: d and b carry the scale.
    fn scale(&self) -> f64 {
        1.0
    }

    fn validate(&self) -> crate::Result<()> {
        check_common(self.rank, self.dropout, None)?;
        match self.d_initial.is_finite() {
            true => Ok(()),
            false => Err(PeftError::InvalidConfig(format!("d_initial must be finite, got {}", self.d_initial))),
        }
    }

    /// r is the width of projections shared by every layer; as in PEFT, no layer caps it.
    fn rank_limit(&self, _d_in: usize, _d_out: usize) -> usize {
        usize::MAX
    }

    /// b (d_out), then d (r).
    fn layer_tensors(&self, owner: &PlannedLayer) -> Vec<TensorSpec> {
        vec![
            TensorSpec::new(keys::of_layer(&owner.name, "vera_lambda_b"), [owner.d_out]),
            TensorSpec::new(keys::of_layer(&owner.name, "vera_lambda_d"), [self.rank]),
        ]
    }

    /// A (r × the largest d_in) and B (the largest d_out × r), frozen; PEFT saves them as
    /// `base_model.vera_A` and `base_model.vera_B` (`save_projection`).
    fn shared_tensors(&self, layers: &[PlannedLayer]) -> Vec<TensorSpec> {
        let d_in = layers.iter().map(|layer| layer.d_in).max().unwrap_or(0);
        let d_out = layers.iter().map(|layer| layer.d_out).max().unwrap_or(0);
        vec![
            TensorSpec::new(keys::of_adapter("vera_A"), [self.rank, d_in]).transposed().frozen(),
            TensorSpec::new(keys::of_adapter("vera_B"), [d_out, self.rank]).transposed().frozen(),
        ]
    }

    fn init<B: Backend>(&self, owner: &PlannedLayer, _statistic: Option<&[f32]>, device: &B::Device) -> crate::Result<VeraAdapter<B>> {
        Ok(VeraAdapter::init(owner.d_out, self.rank, self.d_initial, self.dropout, device))
    }

    /// Kaiming-uniform (a = √5) as PEFT draws them, U(±1/√fan_in), from `projection_seed` by our
    /// own generator: the same on every backend.
    fn init_shared<B: Backend>(&self, layers: &[PlannedLayer], device: &B::Device) -> Vec<Tensor<B, 2>> {
        let mut rng = SplitMix64::new(self.projection_seed);
        self.shared_tensors(layers)
            .iter()
            .map(|spec| {
                let bound = 1.0 / (spec.shape[1] as f64).sqrt();
                let values = (0..spec.len()).map(|_| ((2.0 * rng.next_f64() - 1.0) * bound) as f32).collect();
                stored_param(&StoredTensor { shape: spec.shape.clone(), values }, spec, device)
            })
            .collect()
    }

    fn peft_fields(&self) -> Map<String, Value> {
        let fields = json!({
            "peft_type": "VERA",
            "r": self.rank,
            "vera_dropout": self.dropout,
            "d_initial": self.d_initial,
            "projection_prng_key": self.projection_seed,
            "save_projection": true,
            "fan_in_fan_out": false,
            "bias": "none",
            "init_weights": true,
            "task_type": null,
            "base_model_name_or_path": null,
            "modules_to_save": null,
        });
        fields.as_object().expect("an object").clone()
    }

    fn from_peft_fields(fields: &Map<String, Value>) -> Option<crate::Result<Self>> {
        if fields.get("peft_type")?.as_str()? != "VERA" {
            return None;
        }
        let number = |key: &str| fields.get(key).and_then(Value::as_f64);
        let Some(rank) = fields.get("r").and_then(Value::as_u64) else {
            return Some(Err(PeftError::InvalidConfig("a VeRA config needs its rank `r`".into())));
        };
        if fields.get("save_projection").and_then(Value::as_bool) == Some(false) {
            return Some(Err(PeftError::InvalidConfig(
                "this VeRA adapter was saved without its projections (`save_projection`: false); PyTorch's generator drew them, \
                 which cannot be reproduced here: save it again with save_projection=True"
                    .into(),
            )));
        }
        let config = Self::new(rank as usize)
            .with_dropout(number("vera_dropout").unwrap_or(0.0))
            .with_d_initial(number("d_initial").unwrap_or(0.1))
            .with_projection_seed(fields.get("projection_prng_key").and_then(Value::as_u64).unwrap_or(0));
        Some(Ok(config))
    }
}
