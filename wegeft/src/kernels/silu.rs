//! SiLU (`x·σ(x)`, the LLaMA-family MLP's gate) and its derivative in one threaded pass each.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// `x·σ(x)`: on the CPU backends' f32 tensors one threaded pass forward and one backward (burn's
/// composes it from a sigmoid evaluated with scalar libm `expf` on one thread); elsewhere burn's
/// `silu`.
pub fn silu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    let x = match super::pointwise::apply::<cpu::Silu, B, D>(x) {
        Ok(y) => return y,
        Err(x) => x,
    };
    burn::tensor::activation::silu(x)
}

#[cfg(any(feature = "flex", feature = "ndarray"))]
mod cpu {
    use crate::kernels::exp_nonpositive;
    use crate::kernels::pointwise::Pointwise;

    #[derive(Clone, Copy, Debug)]
    pub(super) struct Silu;

    impl Pointwise for Silu {
        #[inline]
        fn value(x: f32) -> f32 {
            x * sigmoid(x)
        }

        /// `σ(x)·(1 + x·(1 − σ(x)))`.
        #[inline]
        fn derivative(x: f32) -> f32 {
            let s = sigmoid(x);
            s * (1.0 + x * (1.0 - s))
        }
    }

    /// `σ(x)` from `e = exp(−|x|)` (never overflows): `1/(1 + e)` for x ≥ 0, `e/(1 + e)` below.
    #[inline]
    fn sigmoid(x: f32) -> f32 {
        let e = exp_nonpositive(-x.abs());
        let numerator = if x >= 0.0 { 1.0 } else { e };
        numerator / (1.0 + e)
    }
}
