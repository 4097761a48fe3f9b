//! The per-layer low-rank update of LoRA.

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::backend::Backend;
use burn::tensor::module::linear;
use burn::tensor::{Distribution, Tensor};

use crate::kernels::dropout;
use crate::methods::{LayerAdapter, LayerInput};
use crate::precision::autocast;

/// LoRA's A and B in burn's layout (`a` = A_ptᵀ, d_in×r; `b` = B_ptᵀ, r×d_out).
#[derive(Module, Debug)]
pub struct LoraAdapter<B: Backend> {
    /// A, d_in×r, Kaiming-uniform(a=√5) as in HF PEFT.
    pub a: Param<Tensor<B, 2>>,
    /// B, r×d_out, zero so that ΔW = 0 at start.
    pub b: Param<Tensor<B, 2>>,
    /// The scale s = α/r.
    pub scale: f64,
    /// Dropout on the layer input.
    pub dropout: Dropout,
}

impl<B: Backend> LoraAdapter<B> {
    /// A fresh adapter (ΔW = 0) for a d_in → d_out layer.
    pub fn init(d_in: usize, d_out: usize, rank: usize, scale: f64, dropout: f64, device: &B::Device) -> Self {
        let bound = 1.0 / (d_in as f64).sqrt();
        Self {
            a: Param::from_tensor(Tensor::random(
                [d_in, rank],
                Distribution::Uniform(-bound, bound),
                device,
            )),
            b: Param::from_tensor(Tensor::zeros([rank, d_out], device)),
            scale,
            dropout: DropoutConfig::new(dropout).init(),
        }
    }

    /// The update's contribution to a layer's output, `s·x·A·B` for the (dropped-out) input `x`.
    pub fn delta_forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        // In x's precision (the frozen base's): A and B stay f32 parameters.
        let dtype = x.dtype();
        let projected = linear(x, autocast(self.a.val(), dtype), None);
        linear(projected, autocast(self.b.val(), dtype).mul_scalar(self.scale), None)
    }

    /// The update `ΔW = s·A·B` (d_in×d_out).
    pub fn delta_weight(&self) -> Tensor<B, 2> {
        self.a.val().matmul(self.b.val()).mul_scalar(self.scale)
    }
}

impl<B: Backend> LayerAdapter<B> for LoraAdapter<B> {
    fn forward(&self, layer: LayerInput<'_, B>) -> Tensor<B, 2> {
        layer.base + self.delta_forward(dropout(layer.x, self.dropout.prob))
    }

    fn merged_weight(&self, weight: Tensor<B, 2>, _shared: &[Param<Tensor<B, 2>>]) -> Tensor<B, 2> {
        weight + self.delta_weight()
    }
}
