//! The exact (erf) GELU and its derivative in one threaded pass each.

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};

/// `x·Φ(x)`, within 1e-6 of the erf GELU for f32 tensors of the CPU backends (tested), which
/// take a threaded kernel forward and backward; everything else takes burn's `gelu`.
pub fn gelu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    if x.dtype() != DType::F32 || !super::on_cpu::<B>() {
        return burn::tensor::activation::gelu(x);
    }
    #[cfg(feature = "flex")]
    let x = match cpu::on::<B, burn::backend::Flex, D>(x) {
        Ok(y) => return y,
        Err(x) => x,
    };
    #[cfg(feature = "ndarray")]
    let x = match cpu::on::<B, burn::backend::NdArray, D>(x) {
        Ok(y) => return y,
        Err(x) => x,
    };
    burn::tensor::activation::gelu(x)
}

#[cfg(any(feature = "flex", feature = "ndarray"))]
mod cpu {
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::{BalancedCheckpointing, CheckpointStrategy, NoCheckpointing};
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{unary, Backward, Ops, OpsKind};
    use burn::backend::Autodiff;
    use burn::tensor::backend::Backend;
    use burn::tensor::{Tensor, TensorPrimitive};

    use crate::kernels::{cast, exp_nonpositive, host};

    /// GELU of `x` when `B` is the CPU backend `C`, with or without autodiff (and its gradient
    /// checkpointing); else `x` back.
    pub(super) fn on<B: Backend, C: Backend, const D: usize>(x: Tensor<B, D>) -> Result<Tensor<B, D>, Tensor<B, D>> {
        let x = match cast::<Tensor<B, D>, Tensor<C, D>>(x) {
            Ok(x) => return Ok(cast(untracked(x)).unwrap_or_else(|_| unreachable!("B is C"))),
            Err(x) => x,
        };
        let x = match on_autodiff::<B, C, NoCheckpointing, D>(x) {
            Ok(y) => return Ok(y),
            Err(x) => x,
        };
        on_autodiff::<B, C, BalancedCheckpointing, D>(x)
    }

    /// GELU of `x` when `B` is `Autodiff<C, S>`; else `x` back.
    fn on_autodiff<B: Backend, C: Backend, S: CheckpointStrategy, const D: usize>(x: Tensor<B, D>) -> Result<Tensor<B, D>, Tensor<B, D>> {
        let x = cast::<Tensor<B, D>, Tensor<Autodiff<C, S>, D>>(x)?;
        Ok(cast(tracked(x)).unwrap_or_else(|_| unreachable!("B is Autodiff<C, S>")))
    }

    /// GELU through the tensor's host values.
    fn untracked<C: Backend, const D: usize>(x: Tensor<C, D>) -> Tensor<C, D> {
        host::map(x, gelu_f32)
    }

    /// GELU under autodiff: the same pass forward, and `grad·GELU'(x)` in one pass backward.
    fn tracked<C: Backend, S: CheckpointStrategy, const D: usize>(x: Tensor<Autodiff<C, S>, D>) -> Tensor<Autodiff<C, S>, D> {
        let inner = |p| Tensor::<C, D>::from_primitive(TensorPrimitive::Float(p));
        let x = x.into_primitive().tensor();
        let output = match GeluBackward::<D>.prepare::<S>([x.node.clone()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let y = untracked(inner(x.primitive.clone())).into_primitive().tensor();
                prep.finish(x.primitive, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(untracked(inner(x.primitive)).into_primitive().tensor()),
        };
        Tensor::from_primitive(TensorPrimitive::Float(output))
    }

    /// The backward step of [`tracked`]; its state is the input.
    #[derive(Debug)]
    struct GeluBackward<const D: usize>;

    impl<C: Backend, const D: usize> Backward<C, 1> for GeluBackward<D> {
        type State = C::FloatTensorPrimitive;

        fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
            let x = Tensor::<C, D>::from_primitive(TensorPrimitive::Float(ops.state));
            unary::<C, _>(ops.parents, ops.node, grads, |grad| {
                let grad = Tensor::<C, D>::from_primitive(TensorPrimitive::Float(grad));
                host::zip_map(grad, &x, |g, x| g * gelu_derivative_f32(x)).into_primitive().tensor()
            });
        }
    }

    const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
    /// 1/√(2π).
    const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

    /// `x·Φ(x)` with `Φ(x) = (1 + erf(x/√2))/2`.
    #[inline]
    fn gelu_f32(x: f32) -> f32 {
        let (erf, _) = erf_and_gauss(x * FRAC_1_SQRT_2);
        0.5 * x * (1.0 + erf)
    }

    /// `d/dx x·Φ(x) = Φ(x) + x·φ(x)`, with `φ(x) = exp(-x²/2)/√(2π)`.
    #[inline]
    fn gelu_derivative_f32(x: f32) -> f32 {
        let (erf, gauss) = erf_and_gauss(x * FRAC_1_SQRT_2);
        0.5 * (1.0 + erf) + x * FRAC_1_SQRT_2PI * gauss
    }

    /// `(erf(z), exp(-z²))`: Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7, the form
    /// PyTorch vectorises too), branch-free so the compiler vectorises the loops above.
    #[inline]
    fn erf_and_gauss(z: f32) -> (f32, f32) {
        const P: f32 = 0.327_591_1;
        const A: [f32; 5] = [0.254_829_6, -0.284_496_74, 1.421_413_7, -1.453_152_1, 1.061_405_4];
        let a = z.abs();
        let t = 1.0 / (1.0 + P * a);
        let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
        let gauss = exp_nonpositive(-a * a);
        ((1.0 - poly * gauss).copysign(z), gauss)
    }
}
