//! Hyper-parameters of DoRA: LoRA's, in PEFT's `LoraConfig` with `use_dora`.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::adapter::DoraAdapter;
use crate::error::{PeftError, Result};
use crate::io::keys;
use crate::methods::lora::{lora_peft_fields, lora_tensors, read_lora_fields, LoraConfig};
use crate::methods::{FrozenWeight, PeftMethod, TensorSpec};
use crate::plan::PlannedLayer;

/// Configuration of DoRA: LoRA's rank, α and dropout; the magnitudes start at the frozen
/// weight's column norms, so the layer starts unchanged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DoraConfig(pub LoraConfig);

impl DoraConfig {
    /// Rank r, α = r, no dropout.
    pub fn new(rank: usize) -> Self {
        Self(LoraConfig::new(rank))
    }

    /// With α in s = α/r (`None`: α = r).
    pub fn with_alpha(self, alpha: Option<f64>) -> Self {
        Self(self.0.with_alpha(alpha))
    }

    /// With dropout on the layer input.
    pub fn with_dropout(self, dropout: f64) -> Self {
        Self(self.0.with_dropout(dropout))
    }
}

impl PeftMethod for DoraConfig {
    type Adapter<B: Backend> = DoraAdapter<B>;
    const NAME: &'static str = "dora";

    fn rank(&self) -> usize {
        self.0.rank
    }

    fn scale(&self) -> f64 {
        self.0.scale()
    }

    fn validate(&self) -> Result<()> {
        self.0.validate()
    }

    fn rank_limit(&self, d_in: usize, d_out: usize) -> usize {
        self.0.rank_limit(d_in, d_out)
    }

    /// LoRA's A and B, then the magnitude m (d_out).
    fn layer_tensors(&self, owner: &PlannedLayer) -> Vec<TensorSpec> {
        let mut tensors = lora_tensors(self.0.rank, owner);
        tensors.push(TensorSpec::new(keys::of_layer(&owner.name, "lora_magnitude_vector"), [owner.d_out]));
        tensors
    }

    /// The column norms of W (one per output), where the magnitudes start.
    fn weight_statistic<B: Backend>(&self, weight: &FrozenWeight<'_, B>) -> Option<Vec<f32>> {
        // Read back to the host at once, so any device of B serves.
        let norms = weight.column_norms_squared(&Default::default()).sqrt();
        Some(norms.into_data().convert::<f32>().to_vec().expect("f32 values"))
    }

    fn init<B: Backend>(&self, owner: &PlannedLayer, statistic: Option<&[f32]>, device: &B::Device) -> Result<DoraAdapter<B>> {
        let norms = statistic.ok_or_else(|| {
            PeftError::InvalidConfig(format!(
                "DoRA's magnitudes start at the weight norms of `{}`: build the layer with `Injector::linear`, not `Injector::offer`",
                owner.name
            ))
        })?;
        let lora = self.0.init(owner, None, device)?;
        Ok(DoraAdapter::new(lora, Tensor::from_floats(norms, device)))
    }

    fn peft_fields(&self) -> Map<String, Value> {
        lora_peft_fields(self.0.rank, self.scale(), self.0.dropout, true)
    }

    fn from_peft_fields(fields: &Map<String, Value>) -> Option<Result<Self>> {
        let (rank, alpha, dropout) = read_lora_fields(fields, true)?;
        Some(Ok(Self::new(rank).with_alpha(Some(alpha)).with_dropout(dropout)))
    }
}
