//! timm's LayerNorms, loaded frozen.

use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig};
use burn::tensor::backend::Backend;
use wegeft::io::{Init, Scope};

use crate::error::Result;

/// A frozen LayerNorm from `{name}.weight` and `{name}.bias`.
pub(crate) fn layer_norm<B: Backend>(weights: &mut Scope, name: &str, dim: usize, eps: f64, device: &B::Device) -> Result<LayerNorm<B>> {
    let mut norm = LayerNormConfig::new(dim).with_epsilon(eps).init(device);
    norm.gamma = weights.param(&format!("{name}.weight"), [dim], Init::Ones, device)?;
    norm.beta = Some(weights.param(&format!("{name}.bias"), [dim], Init::Zeros, device)?);
    Ok(norm.no_grad())
}
