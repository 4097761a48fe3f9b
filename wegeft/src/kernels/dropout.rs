//! Dropout whose mask is hashed in parallel on the CPU backends.

use burn::nn::DropoutConfig;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// What burn's `Dropout::forward` computes: `x` itself outside autodiff or at `prob` 0; else each
/// element zeroed with probability `prob` and the rest scaled by 1/(1 − prob). On the CPU
/// backends the mask is [`crate::train::SplitMix64::at`] of the element's index, hashed in parallel
/// from one seed that burn's generator draws, so `B::seed` still makes runs repeatable; other
/// backends draw it with burn's Bernoulli sampler.
pub fn dropout<B: Backend, const D: usize>(x: Tensor<B, D>, prob: f64) -> Tensor<B, D> {
    if !B::ad_enabled(&x.device()) || prob == 0.0 {
        return x;
    }
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    if super::on_cpu::<B>() {
        // A tensor without gradient (WeGeFT's frozen W) is masked in place in one pass; one that
        // needs its gradient is multiplied by the mask, which autodiff keeps for the backward.
        return match x.is_require_grad() {
            true => {
                let mask = cpu::mask::<B, D>(x.dims(), prob, &x.device());
                x * mask
            }
            false => cpu::masked(x, prob),
        };
    }
    DropoutConfig::new(prob).init().forward(x)
}

#[cfg(any(feature = "flex", feature = "ndarray"))]
mod cpu {
    use burn::tensor::backend::Backend;
    use burn::tensor::{Distribution, FloatDType, Tensor, TensorData};
    use rayon::prelude::*;

    use crate::kernels::CHUNK;
    use crate::train::SplitMix64;

    /// `x` with each element zeroed with probability `prob` and the rest scaled by 1/(1 − prob),
    /// computed on its host data (`x` is not tracked).
    pub(super) fn masked<B: Backend, const D: usize>(x: Tensor<B, D>, prob: f64) -> Tensor<B, D> {
        let (device, dtype) = (x.device(), FloatDType::from(x.dtype()));
        let seed = seed::<B>(&device);
        let mut data = x.into_data().convert::<f32>();
        apply(data.as_mut_slice::<f32>().expect("converted to f32"), seed, prob);
        Tensor::<B, D>::from_data(data, &device).cast(dtype)
    }

    /// The mask itself: 1/(1 − prob) where an element is kept, 0 where it is dropped.
    pub(super) fn mask<B: Backend, const D: usize>(shape: [usize; D], prob: f64, device: &B::Device) -> Tensor<B, D> {
        let mut values = vec![1f32; shape.iter().product()];
        apply(&mut values, seed::<B>(device), prob);
        Tensor::from_data(TensorData::new(values, shape), device)
    }

    /// Two 24-bit draws of burn's generator, so `B::seed` decides the masks.
    fn seed<B: Backend>(device: &B::Device) -> u64 {
        let draws = Tensor::<B, 1>::random([2], Distribution::Default, device).into_data();
        draws.iter::<f32>().fold(0u64, |seed, u| (seed << 24) | (u * (1 << 24) as f32) as u64)
    }

    /// Scales each value by 1/(1 − prob) or zeroes it: kept when the top 32 bits of its index's
    /// hash fall below (1 − prob)·2³².
    fn apply(values: &mut [f32], seed: u64, prob: f64) {
        let keep = 1.0 - prob;
        let threshold = (keep * (1u64 << 32) as f64) as u64;
        let scale = (1.0 / keep) as f32;
        values.par_chunks_mut(CHUNK).enumerate().for_each(|(chunk, values)| {
            let start = (chunk * CHUNK) as u64;
            for (offset, value) in values.iter_mut().enumerate() {
                let kept = SplitMix64::at(seed, start + offset as u64) >> 32 < threshold;
                *value = if kept { *value * scale } else { 0.0 };
            }
        });
    }
}
