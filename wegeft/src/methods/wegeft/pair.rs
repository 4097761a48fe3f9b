//! One (φ, ψ) generator pair: the trainable part of WeGeFT, possibly shared by many layers.

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::backend::Backend;
use burn::tensor::module::linear;
use burn::tensor::{Distribution, Tensor};

use super::config::{WegeftConfig, WegeftInit};
use crate::methods::{FrozenWeight, LayerAdapter, LayerInput, PeftMethod};
use crate::precision::autocast;

/// The generator of a weight update from the frozen weight.
///
/// Stored in the PyTorch layout of the official code so adapter files interoperate:
/// `phi` is Φ = φᵀ (`phi.weight`, r×d_in) and `psi` is Ψ = ψ (`psi.weight`, r×d_in).
/// In burn's layout the update of a weight `W` (d_in×d_out) is `s·Ψᵀ·(Φ·W)`.
#[derive(Module, Debug)]
pub struct WegeftPair<B: Backend> {
    /// Φ, r×d_in: maps every column of W (a d_in vector) to r dimensions.
    pub phi: Param<Tensor<B, 2>>,
    /// Ψ, r×d_in: projects the layer input to r dimensions.
    pub psi: Param<Tensor<B, 2>>,
    /// The scale s.
    pub scale: f64,
    /// Dropout on W before Φ.
    pub weight_dropout: Dropout,
}

impl<B: Backend> WegeftPair<B> {
    /// A fresh pair for layers with input size `d_in`, initialised so that ΔW = 0.
    pub fn init(d_in: usize, config: &WegeftConfig, device: &B::Device) -> Self {
        let shape = [config.rank, d_in];
        let bound = 1.0 / (d_in as f64).sqrt();
        let uniform = || Tensor::random(shape, Distribution::Uniform(-bound, bound), device);
        let zeros = || Tensor::zeros(shape, device);
        let (phi, psi) = match config.init {
            WegeftInit::Vision => (uniform(), zeros()),
            WegeftInit::Llm => (zeros(), uniform()),
        };
        Self {
            phi: Param::from_tensor(phi),
            psi: Param::from_tensor(psi),
            scale: config.scale(),
            weight_dropout: DropoutConfig::new(config.dropout).init(),
        }
    }

    /// d_in of the layers this pair serves.
    pub fn d_in(&self) -> usize {
        self.psi.dims()[1]
    }

    /// The rank r.
    pub fn rank(&self) -> usize {
        self.psi.dims()[0]
    }

    /// The update's contribution to a layer's output, `s·(x·Ψᵀ)·(Φ·W)`.
    ///
    /// Costs N·r·(d_in + d_out) plus a batch-independent r·d_in·d_out, and never builds the
    /// d_in×d_out update, so it is the path for training.
    pub fn delta_forward(&self, x: Tensor<B, 2>, weight: &FrozenWeight<'_, B>) -> Tensor<B, 2> {
        // In x's precision (the frozen base's): φ and ψ stay f32 parameters.
        let dtype = x.dtype();
        let generated = weight.product(autocast(self.phi.val(), dtype), self.weight_dropout.prob).mul_scalar(self.scale);
        let projected = linear(x, autocast(self.psi.val(), dtype).transpose(), None);
        linear(projected, generated, None)
    }

    /// The update `ΔW = s·Ψᵀ·Φ·W` (d_in×d_out) for weight `W`, without dropout.
    pub fn delta_weight(&self, weight: Tensor<B, 2>) -> Tensor<B, 2> {
        let generated = self.phi.val().matmul(weight).mul_scalar(self.scale);
        self.psi.val().transpose().matmul(generated)
    }
}

impl<B: Backend> LayerAdapter<B> for WegeftPair<B> {
    fn forward(&self, layer: LayerInput<'_, B>) -> Tensor<B, 2> {
        layer.base + self.delta_forward(layer.x, &layer.weight)
    }

    fn merged_weight(&self, weight: Tensor<B, 2>, _shared: &[Param<Tensor<B, 2>>]) -> Tensor<B, 2> {
        weight.clone() + self.delta_weight(weight)
    }
}
