//! DoRA's layer: LoRA's A and B plus a magnitude per output.

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};

use crate::kernels::dropout;
use crate::methods::lora::LoraAdapter;
use crate::methods::{FrozenWeight, LayerAdapter, LayerInput};
use crate::precision::autocast;

/// DoRA's parameters: `W' = m · (W + s·A·B) / ‖W + s·A·B‖`, the norm taken per output column
/// (burn's `[d_in, d_out]` layout) and, as in the paper and PEFT, detached from the graph.
#[derive(Module, Debug)]
pub struct DoraAdapter<B: Backend> {
    /// LoRA's A, B, scale and input dropout: the update of the direction.
    pub lora: LoraAdapter<B>,
    /// m, one length per output (d_out), starting at the frozen weight's column norms.
    pub magnitude: Param<Tensor<B, 1>>,
}

impl<B: Backend> DoraAdapter<B> {
    /// DoRA around a fresh LoRA adapter, with magnitudes `magnitude`.
    pub fn new(lora: LoraAdapter<B>, magnitude: Tensor<B, 1>) -> Self {
        Self { lora, magnitude: Param::from_tensor(magnitude) }
    }

    /// `m / ‖W + s·A·B‖` per output, `[1, d_out]` in f32, without gradient through the norm.
    fn column_scale(&self, weight: &FrozenWeight<'_, B>) -> Tensor<B, 2> {
        let norms = match weight {
            FrozenWeight::Dense(weight) => (weight.clone().cast(DType::F32) + self.lora.delta_weight().detach()).powi_scalar(2).sum_dim(0).sqrt(),
            FrozenWeight::Packed(_) => self.packed_norms(weight),
        };
        self.magnitude.val().unsqueeze::<2>() / norms
    }

    /// `‖W_j + s·(A·B)_j‖` from W's blocks without W in f32:
    /// `‖W_j‖² + 2s·Σ_k B_kj (AᵀW)_kj + s²·B_jᵀ (AᵀA) B_j`.
    fn packed_norms(&self, weight: &FrozenWeight<'_, B>) -> Tensor<B, 2> {
        let (a, b, s) = (self.lora.a.val().detach(), self.lora.b.val().detach(), self.lora.scale);
        let device = a.device();
        let cross = (weight.product(a.clone().transpose(), 0.0) * b.clone()).sum_dim(0).mul_scalar(2.0 * s);
        let update = (a.clone().transpose().matmul(a).matmul(b.clone()) * b).sum_dim(0).mul_scalar(s * s);
        (weight.column_norms_squared(&device) + cross + update).clamp_min(0.0).sqrt()
    }
}

impl<B: Backend> LayerAdapter<B> for DoraAdapter<B> {
    /// PEFT's `DoraLinearLayer`: `x·W + (m/‖·‖)·(x̃·W + s·x̃·A·B) − x̃·W`, where x̃ is the
    /// dropped-out input (x itself when no dropout is in effect, so x̃·W is the base output).
    fn forward(&self, layer: LayerInput<'_, B>) -> Tensor<B, 2> {
        let LayerInput { x, weight, base, .. } = layer;
        let dtype = x.dtype();
        let scale = autocast(self.column_scale(&weight), dtype);
        let dropping = self.lora.dropout.prob > 0.0 && B::ad_enabled(&x.device());
        if !dropping {
            let update = self.lora.delta_forward(x);
            return (base + update) * scale;
        }
        let dropped = dropout(x, self.lora.dropout.prob);
        let dropped_base = weight.product(dropped.clone(), 0.0);
        let update = self.lora.delta_forward(dropped);
        base - dropped_base.clone() + (dropped_base + update) * scale
    }

    fn merged_weight(&self, weight: Tensor<B, 2>, _shared: &[Param<Tensor<B, 2>>]) -> Tensor<B, 2> {
        let scale = self.column_scale(&FrozenWeight::Dense(weight.clone()));
        (weight + self.lora.delta_weight()) * scale
    }
}
