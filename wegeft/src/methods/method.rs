//! What a fine-tuning method implements: the config side ([`PeftMethod`]: limits, file layout,
//! init, PEFT's config fields) and the layer side ([`LayerAdapter`]: forward and merge).

use std::sync::Arc;

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorData};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use super::spec::TensorSpec;
use crate::error::{PeftError, Result};
use crate::kernels::{dropout, packed_matmul};
use crate::packed::PackedWeight;
use crate::plan::PlannedLayer;

/// A method's hyper-parameters, and everything about the method that needs no tensor.
///
/// The layer-side module is [`Self::Adapter`]; one line in `methods/mod.rs` adds the method to
/// [`crate::AdapterMethod`] and [`crate::Adapter`], which dispatch to these functions.
pub trait PeftMethod: Clone + std::fmt::Debug + PartialEq + Serialize + DeserializeOwned {
    /// One plan group's parameters.
    type Adapter<B: Backend>: LayerAdapter<B>;

    /// The method's name in run configs, on the command line and in reports.
    const NAME: &'static str;

    /// The rank r.
    fn rank(&self) -> usize;

    /// The scale s applied to the low-rank update (1 where the method has none).
    fn scale(&self) -> f64;

    /// Fails on settings no layer can use, naming the setting.
    fn validate(&self) -> Result<()>;

    /// The largest rank that still adds expressiveness to a d_in → d_out layer.
    fn rank_limit(&self, d_in: usize, d_out: usize) -> usize;

    /// The plan group `layer` joins: layers with one group name share one set of parameters.
    fn group_name(&self, layer: &str) -> String {
        layer.to_string()
    }

    /// The tensors an adapter file holds for the group that `owner` owns, in the order the
    /// adapter module declares its parameters.
    fn layer_tensors(&self, owner: &PlannedLayer) -> Vec<TensorSpec>;

    /// Frozen tensors shared by every adapted layer (VeRA's random projections), stored once.
    fn shared_tensors(&self, _layers: &[PlannedLayer]) -> Vec<TensorSpec> {
        Vec::new()
    }

    /// What the method's init needs from a layer's frozen weight (`[d_in, d_out]`, f32), read
    /// when the layer is built: DoRA's magnitudes start at the weight's column norms.
    fn weight_statistic<B: Backend>(&self, _weight: &FrozenWeight<'_, B>) -> Option<Vec<f32>> {
        None
    }

    /// A fresh adapter for the group `owner` owns (the update starts at zero); `statistic` is
    /// what [`Self::weight_statistic`] read from the owner's weight.
    fn init<B: Backend>(&self, owner: &PlannedLayer, statistic: Option<&[f32]>, device: &B::Device) -> Result<Self::Adapter<B>>;

    /// The shared frozen tensors, in [`Self::shared_tensors`]' order and burn's layout.
    fn init_shared<B: Backend>(&self, _layers: &[PlannedLayer], _device: &B::Device) -> Vec<Tensor<B, 2>> {
        Vec::new()
    }

    /// The fields HF PEFT reads from `adapter_config.json` for this method.
    fn peft_fields(&self) -> Map<String, Value>;

    /// This method's config from a PEFT `adapter_config.json`; `None` if the file is another
    /// method's, an error if it is this method's with settings we do not support.
    fn from_peft_fields(fields: &Map<String, Value>) -> Option<Result<Self>>;
}

/// The layer side of a method: one plan group's parameters, applied to a layer.
pub trait LayerAdapter<B: Backend>: Module<B> {
    /// The adapted layer's output without its bias, given the layer's input rows.
    fn forward(&self, layer: LayerInput<'_, B>) -> Tensor<B, 2>;

    /// The merged weight W' (`[d_in, d_out]`, f32) of a layer with frozen weight `weight` (f32).
    fn merged_weight(&self, weight: Tensor<B, 2>, shared: &[Param<Tensor<B, 2>>]) -> Tensor<B, 2>;
}

/// What an adapter sees of the layer it adapts, all in the frozen weight's precision.
pub struct LayerInput<'a, B: Backend> {
    /// The input rows, `[rows, d_in]`.
    pub x: Tensor<B, 2>,
    /// The frozen weight, `[d_in, d_out]`.
    pub weight: FrozenWeight<'a, B>,
    /// The frozen layer's output without bias, `x·W`.
    pub base: Tensor<B, 2>,
    /// The bank's shared frozen tensors ([`PeftMethod::shared_tensors`]).
    pub shared: &'a [Param<Tensor<B, 2>>],
}

/// A layer's frozen weight W (`[d_in, d_out]`) as the layer holds it.
#[derive(Clone, Debug)]
pub enum FrozenWeight<'a, B: Backend> {
    /// A tensor, in the base's precision.
    Dense(Tensor<B, 2>),
    /// Quantisation blocks, multiplied a tile at a time.
    Packed(&'a Arc<PackedWeight>),
}

impl<B: Backend> FrozenWeight<'_, B> {
    /// `[d_in, d_out]`.
    pub fn dims(&self) -> [usize; 2] {
        match self {
            Self::Dense(weight) => weight.dims(),
            Self::Packed(weight) => weight.dims(),
        }
    }

    /// `m·W` (`[rows, d_in]` → `[rows, d_out]`), with W dropped out at `prob` while training
    /// (WeGeFT's Φ·W).
    pub fn product(&self, m: Tensor<B, 2>, prob: f64) -> Tensor<B, 2> {
        match self {
            Self::Dense(weight) => m.matmul(dropout(weight.clone(), prob)),
            Self::Packed(weight) => packed_matmul(m, weight, prob),
        }
    }

    /// ‖W_j‖² per output j, `[1, d_out]` in f32 (a packed W decoded a tile at a time).
    pub fn column_norms_squared(&self, device: &B::Device) -> Tensor<B, 2> {
        match self {
            Self::Dense(weight) => weight.clone().cast(DType::F32).powi_scalar(2).sum_dim(0),
            Self::Packed(weight) => {
                let [_, d_out] = weight.dims();
                Tensor::from_data(TensorData::new(weight.row_sums_of_squares().to_vec(), [1, d_out]), device)
            }
        }
    }
}

/// The checks every method with a rank, a dropout and an α shares.
pub(crate) fn check_common(rank: usize, dropout: f64, alpha: Option<f64>) -> Result<()> {
    if rank == 0 {
        return Err(PeftError::InvalidConfig("rank must be at least 1".into()));
    }
    if !(0.0..1.0).contains(&dropout) {
        return Err(PeftError::InvalidConfig(format!("dropout must be in [0, 1), got {dropout}")));
    }
    if alpha.is_some_and(|alpha| !alpha.is_finite()) {
        return Err(PeftError::InvalidConfig(format!("alpha must be finite, got {alpha:?}")));
    }
    Ok(())
}
