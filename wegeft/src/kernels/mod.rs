//! The ops of a training step that burn's CPU backends run slowly, as threaded kernels.
//!
//! burn-flex evaluates GELU and SiLU with scalar libm calls on one thread, burn-ndarray composes
//! GELU from five tensor ops (and differentiates the tanh approximation instead), both draw
//! dropout masks one ChaCha sample at a time, and burn-autodiff differentiates attention, RoPE
//! and the norms as chains of single-threaded ops with copies between them. In a training step
//! each of these cost more than the matmuls around it. Tensors of the CPU backends (Flex and
//! NdArray, with or without autodiff; attention, RoPE and the norms on Flex only) take the kernels
//! here, each one autodiff op with its own backward; every other backend (CUDA, WGPU, fusion)
//! takes burn's own ops.
//!
//! The CPU backends are recognised by their concrete types (`cpu_op.rs`): burn can only add an op
//! to an existing backend through a backend trait that every model signature would have to carry.

mod attention;
mod capability;
#[cfg(any(feature = "flex", feature = "ndarray"))]
mod cpu_op;
mod dropout;
mod gelu;
#[cfg(any(feature = "flex", feature = "ndarray"))]
mod host;
mod mask_seeds;
mod norm;
mod packed_matmul;
#[cfg(any(feature = "flex", feature = "ndarray"))]
mod pointwise;
mod rotary;
#[cfg(feature = "flex")]
mod rows;
mod silu;

pub use attention::attention;
pub use capability::{cpu_capability, CpuCapability, CPU_CAPABILITY_VAR};
pub use dropout::dropout;
pub use gelu::gelu;
pub use mask_seeds::{record_masks, replay_masks};
pub use norm::{layer_norm, rms_norm};
pub use packed_matmul::packed_matmul;
pub use rotary::rotary;
pub use silu::silu;

#[cfg(any(feature = "flex", feature = "ndarray"))]
use std::any::TypeId;

use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};

use crate::train::SplitMix64;

/// Elements per rayon task: large enough that scheduling is noise, small enough to balance.
#[cfg(any(feature = "flex", feature = "ndarray"))]
const CHUNK: usize = 1 << 14;

/// `f()` compiled for the widest vector instructions [`cpu_capability`] allows: the release build
/// targets baseline x86-64 (SSE2), which leaves element-wise loops 3× slower than AVX-512. `f` is
/// inlined into one copy per instruction set, chosen at run time: callers mark it
/// `#[inline(always)]`, or LLVM may keep it a separate, baseline-compiled function.
#[cfg(any(feature = "flex", feature = "ndarray"))]
#[inline(always)]
fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    match cpu_capability() {
        // SAFETY: the CPU has the instructions the copy is compiled for (`cpu_capability` never
        // exceeds what it detected).
        CpuCapability::Avx512 => return unsafe { with_avx512(f) },
        // SAFETY: as above.
        CpuCapability::Avx2 => return unsafe { with_avx2(f) },
        CpuCapability::Baseline => {}
    }
    f()
}

#[cfg(all(target_arch = "x86_64", any(feature = "flex", feature = "ndarray")))]
#[target_feature(enable = "avx512f,avx512bw,avx512cd,avx512dq,avx512vl")]
unsafe fn with_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(all(target_arch = "x86_64", any(feature = "flex", feature = "ndarray")))]
#[target_feature(enable = "avx2,fma")]
unsafe fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// `eˣ` for x ≤ 0 to about 2e-7 relative: 2ⁿ from the exponent bits times a degree-6
/// polynomial of the remainder; 0 below the f32 range.
#[cfg(any(feature = "flex", feature = "ndarray"))]
#[inline]
fn exp_nonpositive(x: f32) -> f32 {
    // Adding and subtracting 1.5·2²³ rounds to the nearest integer without a (scalar) `round` call.
    const ROUND: f32 = 12_582_912.0;
    let x = x.max(-87.0);
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * std::f32::consts::LN_2;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // n as an integer is the difference of the bit patterns (both lie in [2²³, 2²⁴), where
    // the step is 1); an `as i32` cast would saturate element by element, unvectorised.
    let n_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    f32::from_bits(n_bits.wrapping_add(127) << 23) * p
}

/// Whether `B` is one of the CPU backends compiled in (its tensors live in host memory), with
/// or without autodiff, and with or without gradient checkpointing.
fn on_cpu<B: Backend>() -> bool {
    #[cfg(feature = "flex")]
    if is_cpu_backend::<B, burn::backend::Flex>() {
        return true;
    }
    #[cfg(feature = "ndarray")]
    if is_cpu_backend::<B, burn::backend::NdArray>() {
        return true;
    }
    false
}

/// Whether `B` is `C`, or `C` under either of burn's autodiff checkpointing strategies.
#[cfg(any(feature = "flex", feature = "ndarray"))]
fn is_cpu_backend<B: Backend, C: Backend>() -> bool {
    use burn::backend::autodiff::checkpoint::strategy::{BalancedCheckpointing, NoCheckpointing};
    use burn::backend::Autodiff;
    let id = TypeId::of::<B>();
    id == TypeId::of::<C>() || id == TypeId::of::<Autodiff<C, NoCheckpointing>>() || id == TypeId::of::<Autodiff<C, BalancedCheckpointing>>()
}

/// `value` as a `To` when `From` and `To` are the same type, else `value` back.
#[cfg(any(feature = "flex", feature = "ndarray"))]
fn cast<From: 'static, To: 'static>(value: From) -> Result<To, From> {
    let mut slot = Some(value);
    match (&mut slot as &mut dyn std::any::Any).downcast_mut::<Option<To>>() {
        Some(to) => Ok(to.take().expect("just filled")),
        None => Err(slot.expect("not taken")),
    }
}

/// A dropout mask hashed from one seed: element `index` is kept, and scaled by 1/(1 − prob), when
/// the top 32 bits of [`SplitMix64::at`] of its index fall below (1 − prob)·2³². Any pass (a tile
/// of a packed weight, the backward) rebuilds the same mask from the seed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HashedMask {
    seed: u64,
    threshold: u64,
    scale: f32,
}

impl HashedMask {
    /// A mask of drop probability `prob` whose seed is two 24-bit draws of burn's generator, so
    /// `B::seed` decides it (or the seed [`replay_masks`] replays).
    pub(crate) fn draw<B: Backend>(prob: f64, device: &B::Device) -> Self {
        let seed = mask_seeds::next_seed(|| {
            let draws = Tensor::<B, 1>::random([2], Distribution::Default, device).into_data();
            draws.iter::<f32>().fold(0u64, |seed, u| (seed << 24) | (u * (1 << 24) as f32) as u64)
        });
        let keep = 1.0 - prob;
        Self { seed, threshold: (keep * (1u64 << 32) as f64) as u64, scale: (1.0 / keep) as f32 }
    }

    /// `value` at element `index`, kept and scaled or zeroed.
    #[inline(always)]
    pub(crate) fn apply(&self, index: u64, value: f32) -> f32 {
        if SplitMix64::at(self.seed, index) >> 32 < self.threshold { value * self.scale } else { 0.0 }
    }

    /// [`Self::apply`] to `values`, the elements `first`, `first + stride`, …: vectorised, as
    /// the hash's 64-bit products otherwise run one at a time (8× slower than AVX-512's).
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    pub(crate) fn apply_strided(&self, values: &mut [f32], first: u64, stride: u64) {
        vectorized(#[inline(always)] || {
            values.iter_mut().enumerate().for_each(|(k, value)| *value = self.apply(first + k as u64 * stride, *value));
        })
    }
}

#[cfg(all(test, any(feature = "flex", feature = "ndarray")))]
mod tests {
    use super::HashedMask;

    #[test]
    fn the_vectorised_strided_mask_is_the_element_by_element_one() {
        let mask = HashedMask { seed: 0x5EED, threshold: 3 << 30, scale: 4.0 / 3.0 };
        let values: Vec<f32> = (0..1000).map(|i| i as f32 - 500.0).collect();
        for (first, stride) in [(0, 1), (7, 1), (3, 577)] {
            let mut masked = values.clone();
            mask.apply_strided(&mut masked, first, stride);
            let expected: Vec<f32> = values.iter().enumerate().map(|(k, &v)| mask.apply(first + k as u64 * stride, v)).collect();
            assert_eq!(masked, expected);
            let dropped = masked.iter().zip(&values).filter(|(m, v)| **m == 0.0 && **v != 0.0).count();
            assert!((200..300).contains(&dropped), "{dropped} of 1000 dropped at p = 0.25");
        }
    }
}
