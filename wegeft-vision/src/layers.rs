//! Building blocks loaded from a [`WeightSource`]: linear layers, LayerNorms, adapted linears.

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, LayerNormConfig, Linear};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use wegeft::{Injector, PeftLinear};

use crate::error::Result;
use crate::weights::{Init, WeightSource};

/// A parameter holding `tensor` as a fresh leaf (slices and transposes of loaded tensors are not).
pub(crate) fn param<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Param<Tensor<B, D>> {
    Param::from_tensor(tensor.detach())
}

/// A linear layer from PyTorch-layout `{key}.weight` [d_out, d_in] and `{key}.bias` [d_out].
pub(crate) fn linear<B: Backend>(
    weights: &mut WeightSource,
    key: &str,
    d_in: usize,
    d_out: usize,
    device: &B::Device,
) -> Result<Linear<B>> {
    let weight = weights.tensor::<B, 2>(&format!("{key}.weight"), [d_out, d_in], Init::Normal(0.02), device)?;
    let bias = weights.tensor::<B, 1>(&format!("{key}.bias"), [d_out], Init::Zeros, device)?;
    Ok(Linear {
        weight: param(weight.transpose()),
        bias: Some(param(bias)),
    })
}

/// A frozen linear layer, offered to the injector (if any) under its timm name.
pub(crate) fn adapted_linear<B: Backend>(
    weights: &mut WeightSource,
    injector: Option<&mut Injector>,
    key: &str,
    d_in: usize,
    d_out: usize,
    device: &B::Device,
) -> Result<PeftLinear<B>> {
    offer(injector, key, linear(weights, key, d_in, d_out, device)?)
}

/// Wraps a frozen layer under `key`: offered to the injector if there is one, unadapted otherwise.
pub(crate) fn offer<B: Backend>(injector: Option<&mut Injector>, key: &str, base: Linear<B>) -> Result<PeftLinear<B>> {
    Ok(match injector {
        Some(injector) => injector.linear(key, base)?,
        None => PeftLinear::frozen(key, base),
    })
}

/// A frozen LayerNorm from `{key}.weight` and `{key}.bias`.
pub(crate) fn layer_norm<B: Backend>(
    weights: &mut WeightSource,
    key: &str,
    dim: usize,
    eps: f64,
    device: &B::Device,
) -> Result<LayerNorm<B>> {
    let mut norm = LayerNormConfig::new(dim).with_epsilon(eps).init(device);
    norm.gamma = Param::from_tensor(weights.tensor(&format!("{key}.weight"), [dim], Init::Ones, device)?);
    norm.beta = Some(Param::from_tensor(weights.tensor(&format!("{key}.bias"), [dim], Init::Zeros, device)?));
    Ok(norm.no_grad())
}
