//! timm's LayerNorms: loaded frozen, computed in f32 by wegeft's norm kernel.

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use wegeft::io::{Init, Scope};
use wegeft::kernels;
use wegeft::precision::in_f32;

use crate::error::Result;

/// A LayerNorm over the last dimension, holding what burn's `LayerNorm` holds (its saved records
/// load here), computed by [`kernels::layer_norm`]: burn's module keeps its ε private, so it
/// cannot hand the kernel its arguments.
#[derive(Module, Debug)]
pub struct LayerNorm<B: Backend> {
    /// γ, `{name}.weight`.
    pub gamma: Param<Tensor<B, 1>>,
    /// β, `{name}.bias`.
    pub beta: Option<Param<Tensor<B, 1>>>,
    /// Added to the variance (timm and DINOv2: 1e-6).
    pub epsilon: f64,
}

impl<B: Backend> LayerNorm<B> {
    /// A frozen LayerNorm from `{name}.weight` and `{name}.bias`.
    pub(crate) fn load(weights: &mut Scope, name: &str, dim: usize, epsilon: f64, device: &B::Device) -> Result<Self> {
        let gamma = weights.param(&format!("{name}.weight"), [dim], Init::Ones, device)?;
        let beta = Some(weights.param(&format!("{name}.bias"), [dim], Init::Zeros, device)?);
        Ok(Self { gamma, beta, epsilon }.no_grad())
    }

    /// The norm in f32, returned in `x`'s precision.
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        in_f32(x, |x| kernels::layer_norm(x, self.gamma.val(), self.beta.as_ref().map(|beta| beta.val()), self.epsilon))
    }
}
