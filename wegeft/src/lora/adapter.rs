//! The per-layer low-rank update of LoRA.

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::backend::Backend;
use burn::tensor::module::linear;
use burn::tensor::{Distribution, Tensor};

use std::collections::BTreeMap;

use super::config::LoraConfig;
use crate::io::{keys, load_param, StoredTensor};
use crate::kernels::dropout;
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
    /// A fresh adapter for a d_in → d_out layer.
    pub fn init(d_in: usize, d_out: usize, config: &LoraConfig, device: &B::Device) -> Self {
        let bound = 1.0 / (d_in as f64).sqrt();
        Self {
            a: Param::from_tensor(Tensor::random(
                [d_in, config.rank],
                Distribution::Uniform(-bound, bound),
                device,
            )),
            b: Param::from_tensor(Tensor::zeros([config.rank, d_out], device)),
            scale: config.scale(),
            dropout: DropoutConfig::new(config.dropout).init(),
        }
    }

    /// The update's contribution to a layer's output, `s·dropout(x)·A·B`.
    pub fn delta_forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        // In x's precision (the frozen base's): A and B stay f32 parameters.
        let dtype = x.dtype();
        let projected = linear(dropout(x, self.dropout.prob), autocast(self.a.val(), dtype), None);
        linear(projected, autocast(self.b.val(), dtype).mul_scalar(self.scale), None)
    }

    /// The update `ΔW = s·A·B` (d_in×d_out): the merge path.
    pub fn delta_weight(&self) -> Tensor<B, 2> {
        self.a.val().matmul(self.b.val()).mul_scalar(self.scale)
    }

    /// A and B in PEFT's layout (A: r×d_in, B: d_out×r), under the layer's name.
    pub(crate) fn file_tensors(&self, layer: &str) -> Vec<(String, StoredTensor)> {
        vec![
            (keys::lora_a(layer), StoredTensor::from_tensor(self.a.val().transpose())),
            (keys::lora_b(layer), StoredTensor::from_tensor(self.b.val().transpose())),
        ]
    }

    /// The adapter with A and B read from checked adapter-file tensors.
    pub(crate) fn with_file_tensors(mut self, layer: &str, tensors: &BTreeMap<String, StoredTensor>) -> Self {
        self.a = load_param(self.a, &tensors[&keys::lora_a(layer)], true);
        self.b = load_param(self.b, &tensors[&keys::lora_b(layer)], true);
        self
    }
}
