//! LLaMA's RMSNorms: loaded frozen, and computed in f32 whatever the weights' precision.

use burn::module::Module;
use burn::nn::{RmsNorm, RmsNormConfig};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use wegeft::precision::in_f32;
use wegeft::io::{Init, Scope};

use crate::config::LlamaConfig;
use crate::error::Result;

/// A frozen RMSNorm from `{name}.weight`.
pub(crate) fn rms_norm<B: Backend>(weights: &mut Scope, name: &str, config: &LlamaConfig, device: &B::Device) -> Result<RmsNorm<B>> {
    let mut norm = RmsNormConfig::new(config.hidden_size).with_epsilon(config.rms_norm_eps).init(device);
    norm.gamma = weights.param(&format!("{name}.weight"), [config.hidden_size], Init::Ones, device)?;
    Ok(norm.no_grad())
}

/// RMSNorm in f32 (its weights stay f32 under half precision), returned in `x`'s precision.
pub fn norm_f32<B: Backend>(norm: &RmsNorm<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    in_f32(x, |x| norm.forward(x))
}
