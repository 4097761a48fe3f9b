//! Dropout whose mask is hashed in parallel on the CPU backends.

use burn::nn::DropoutConfig;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// What burn's `Dropout::forward` computes: `x` itself outside autodiff or at `prob` 0; else each
/// element zeroed with probability `prob` and the rest scaled by 1/(1 − prob). On the CPU
/// backends the mask is [`crate::SplitMix64::at`] of the element's index, hashed in parallel
/// from one seed that burn's generator draws, so `B::seed` still makes runs repeatable; other
/// backends draw it with burn's Bernoulli sampler.
pub fn dropout<B: Backend, const D: usize>(x: Tensor<B, D>, prob: f64) -> Tensor<B, D> {
    if !B::ad_enabled(&x.device()) || prob == 0.0 {
        return x;
    }
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    if super::on_cpu::<B>() {
        let mask = cpu::mask::<B, D>(x.dims(), prob, &x.device());
        return x * mask;
    }
    DropoutConfig::new(prob).init().forward(x)
}

#[cfg(any(feature = "flex", feature = "ndarray"))]
mod cpu {
    use burn::tensor::backend::Backend;
    use burn::tensor::{Distribution, Tensor, TensorData};
    use rayon::prelude::*;

    use crate::kernels::CHUNK;
    use crate::SplitMix64;

    /// 1/(1 − prob) where an element is kept, 0 where it is dropped.
    pub(super) fn mask<B: Backend, const D: usize>(shape: [usize; D], prob: f64, device: &B::Device) -> Tensor<B, D> {
        // Two 24-bit draws of burn's generator make the seed.
        let draws = Tensor::<B, 1>::random([2], Distribution::Default, device).into_data();
        let seed = draws.iter::<f32>().fold(0u64, |seed, u| (seed << 24) | (u * (1 << 24) as f32) as u64);
        let keep = 1.0 - prob;
        // An element is kept when the top 32 bits of its hash fall below keep·2³².
        let threshold = (keep * (1u64 << 32) as f64) as u64;
        let scale = (1.0 / keep) as f32;
        let mut values = vec![0f32; shape.iter().product()];
        values.par_chunks_mut(CHUNK).enumerate().for_each(|(chunk, values)| {
            let start = (chunk * CHUNK) as u64;
            for (offset, value) in values.iter_mut().enumerate() {
                let kept = SplitMix64::at(seed, start + offset as u64) >> 32 < threshold;
                *value = if kept { scale } else { 0.0 };
            }
        });
        Tensor::from_data(TensorData::new(values, shape), device)
    }
}
