//! Element-wise activations as one threaded, vectorised pass forward and one backward on the CPU
//! backends, with or without autodiff (and its gradient checkpointing).

use std::fmt::Debug;
use std::marker::PhantomData;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorPrimitive};

use super::cpu_op::{self, CpuOp};
use super::host;

/// An activation `f` and its derivative, element by element (inlined into the passes).
pub(crate) trait Pointwise: Copy + Debug + Send + Sync + 'static {
    fn value(x: f32) -> f32;
    fn derivative(x: f32) -> f32;
}

/// `P::value` of each element when `x` is an f32 tensor of a CPU backend; else `x` back.
pub(crate) fn apply<P: Pointwise, B: Backend, const D: usize>(x: Tensor<B, D>) -> Result<Tensor<B, D>, Tensor<B, D>> {
    if x.dtype() != DType::F32 || !super::on_cpu::<B>() {
        return Err(x);
    }
    let activation = Activation::<P, D>(PhantomData);
    #[cfg(feature = "flex")]
    let x = match cpu_op::run::<_, burn::backend::Flex, B>(&activation, x) {
        Ok(y) => return Ok(y),
        Err(x) => x,
    };
    #[cfg(feature = "ndarray")]
    let x = match cpu_op::run::<_, burn::backend::NdArray, B>(&activation, x) {
        Ok(y) => return Ok(y),
        Err(x) => x,
    };
    Err(x)
}

/// `P` over a `D`-dimensional tensor, as a kernel of any CPU backend.
struct Activation<P, const D: usize>(PhantomData<P>);

impl<P: Pointwise, C: Backend, const D: usize> CpuOp<C> for Activation<P, D> {
    type Inputs<B: Backend> = Tensor<B, D>;
    type Output<B: Backend> = Tensor<B, D>;

    fn plain(&self, x: Tensor<C, D>) -> Tensor<C, D> {
        host::map(x, P::value)
    }

    /// The same pass forward, and `grad·f'(x)` in one pass backward.
    fn tracked<S: CheckpointStrategy>(&self, x: Tensor<Autodiff<C, S>, D>) -> Tensor<Autodiff<C, S>, D> {
        let inner = |p| Tensor::<C, D>::from_primitive(TensorPrimitive::Float(p));
        let x = x.into_primitive().tensor();
        let output = match PointwiseBackward::<P, D>(PhantomData).prepare::<S>([x.node.clone()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let y = self.plain(inner(x.primitive.clone())).into_primitive().tensor();
                prep.finish(x.primitive, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(self.plain(inner(x.primitive)).into_primitive().tensor()),
        };
        Tensor::from_primitive(TensorPrimitive::Float(output))
    }
}

/// The backward step of [`Activation`]; its state is the input.
#[derive(Debug)]
struct PointwiseBackward<P, const D: usize>(PhantomData<P>);

impl<P: Pointwise, C: Backend, const D: usize> Backward<C, 1> for PointwiseBackward<P, D> {
    type State = C::FloatTensorPrimitive;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let x = Tensor::<C, D>::from_primitive(TensorPrimitive::Float(ops.state));
        unary::<C, _>(ops.parents, ops.node, grads, |grad| {
            let grad = Tensor::<C, D>::from_primitive(TensorPrimitive::Float(grad));
            host::zip_map(grad, &x, |g, x| g * P::derivative(x)).into_primitive().tensor()
        });
    }
}
