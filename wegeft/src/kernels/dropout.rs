//! Dropout whose mask is hashed in parallel on the CPU backends.

use burn::nn::DropoutConfig;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use super::HashedMask;

/// What burn's `Dropout::forward` computes: `x` itself outside autodiff or at `prob` 0; else each
/// element zeroed with probability `prob` and the rest scaled by 1/(1 − prob). On the CPU
/// backends the mask is [`crate::train::SplitMix64::at`] of the element's index, hashed in parallel
/// from one seed that burn's generator draws, so `B::seed` still makes runs repeatable; other
/// backends draw it with burn's Bernoulli sampler, except in a forward that will be recomputed
/// ([`super::record_masks`]), where they hash it too, so the recomputation drops the same elements.
pub fn dropout<B: Backend, const D: usize>(x: Tensor<B, D>, prob: f64) -> Tensor<B, D> {
    if !B::ad_enabled(&x.device()) || prob == 0.0 {
        return x;
    }
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    if super::on_cpu::<B>() && !x.is_require_grad() {
        // A tensor without gradient (WeGeFT's frozen W) is masked in place in one pass.
        return cpu::masked(x, prob);
    }
    if super::on_cpu::<B>() || super::mask_seeds::in_scope() {
        // One that needs its gradient is multiplied by the mask, which autodiff keeps.
        let mask = mask::<B, D>(x.dims(), prob, &x.device());
        return x * mask;
    }
    DropoutConfig::new(prob).init().forward(x)
}

/// The mask itself: 1/(1 − prob) where an element is kept, 0 where it is dropped.
fn mask<B: Backend, const D: usize>(shape: [usize; D], prob: f64, device: &B::Device) -> Tensor<B, D> {
    let mut values = vec![1f32; shape.iter().product()];
    apply(&mut values, HashedMask::draw::<B>(prob, device));
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// Each value masked by its index.
fn apply(values: &mut [f32], mask: HashedMask) {
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    {
        use rayon::prelude::*;
        values.par_chunks_mut(super::CHUNK).enumerate().for_each(|(chunk, values)| {
            let start = (chunk * super::CHUNK) as u64;
            values.iter_mut().enumerate().for_each(|(offset, value)| *value = mask.apply(start + offset as u64, *value));
        });
    }
    #[cfg(not(any(feature = "flex", feature = "ndarray")))]
    values.iter_mut().enumerate().for_each(|(index, value)| *value = mask.apply(index as u64, *value));
}

#[cfg(any(feature = "flex", feature = "ndarray"))]
mod cpu {
    use burn::tensor::backend::Backend;
    use burn::tensor::{FloatDType, Tensor};

    use crate::kernels::HashedMask;

    /// `x` with each element zeroed with probability `prob` and the rest scaled by 1/(1 − prob),
    /// computed on its host data (`x` is not tracked).
    pub(super) fn masked<B: Backend, const D: usize>(x: Tensor<B, D>, prob: f64) -> Tensor<B, D> {
        let (device, dtype) = (x.device(), FloatDType::from(x.dtype()));
        let mask = HashedMask::draw::<B>(prob, &device);
        let mut data = x.into_data().convert::<f32>();
        super::apply(data.as_mut_slice::<f32>().expect("converted to f32"), mask);
        Tensor::<B, D>::from_data(data, &device).cast(dtype)
    }
}
