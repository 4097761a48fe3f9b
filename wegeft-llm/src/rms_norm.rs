//! The decoder's RMSNorms: loaded frozen, and computed in f32 whatever the weights' precision.

use burn::module::Module;
use burn::nn::{RmsNorm, RmsNormConfig};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use wegeft::io::{Init, Scope};
use wegeft::kernels;
use wegeft::precision::in_f32;

use crate::config::DecoderConfig;
use crate::error::Result;

/// A frozen RMSNorm over `width` from `{name}.weight`. burn's norm multiplies by its weight, so a
/// family whose norms multiply by `offset + w` (Gemma) gets the sum, computed once in f32 as
/// transformers does it.
pub(crate) fn rms_norm<B: Backend>(weights: &mut Scope, name: &str, width: usize, config: &DecoderConfig, device: &B::Device) -> Result<RmsNorm<B>> {
    let mut norm = RmsNormConfig::new(width).with_epsilon(config.rms_norm_eps).init(device);
    let offset = config.family().norm_offset();
    let init = if offset == 0.0 { Init::Ones } else { Init::Zeros };
    norm.gamma = weights.param(&format!("{name}.weight"), [width], init, device)?;
    if offset != 0.0 {
        norm.gamma = norm.gamma.map(|w| w + offset);
    }
    Ok(norm.no_grad())
}

/// RMSNorm in f32 (its weights stay f32 under half precision), returned in `x`'s precision.
/// Computed by [`kernels::rms_norm`], one threaded pass each way on the CPU backends.
pub fn norm_f32<B: Backend, const D: usize>(norm: &RmsNorm<B>, x: Tensor<B, D>) -> Tensor<B, D> {
    in_f32(x, |x| kernels::rms_norm(x, norm.gamma.val(), norm.epsilon))
}
