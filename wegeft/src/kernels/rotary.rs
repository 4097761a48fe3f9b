//! Rotary position embeddings (Hugging Face's rotate-half layout) as one threaded pass forward
//! and one backward on Flex.
//!
//! As burn ops, RoPE is two slices, a negation, a concatenation, two products and a sum forward,
//! each single-threaded, and as many again backward; at SmolLM2's shapes that was 15 ms of every
//! decoder layer's step, more than its attention.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// `x·cos + rotate_half(x)·sin` for `x` `[B, T, heads, d]` and tables `[T, d]`, where
/// `rotate_half([x₁, x₂]) = [−x₂, x₁]` over the halves of d.
pub fn rotary<B: Backend>(x: Tensor<B, 4>, cos: Tensor<B, 2>, sin: Tensor<B, 2>) -> Tensor<B, 4> {
    #[cfg(feature = "flex")]
    let (x, cos, sin) = match flex::rotary(x, cos, sin) {
        Ok(y) => return y,
        Err(inputs) => inputs,
    };
    let [batch, len, heads, dim] = x.dims();
    let (cos, sin) = (cos.reshape([1, len, 1, dim]), sin.reshape([1, len, 1, dim]));
    let half = dim / 2;
    let first = x.clone().slice([0..batch, 0..len, 0..heads, 0..half]);
    let second = x.clone().slice([0..batch, 0..len, 0..heads, half..dim]);
    let rotated = Tensor::cat(vec![second.neg(), first], 3);
    x * cos + rotated * sin
}

#[cfg(feature = "flex")]
mod flex {
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{unary, Backward, Ops, OpsKind};
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::backend::Backend;
    use burn::tensor::{Bytes, DType, Tensor, TensorPrimitive};
    use burn_flex::{FlexTensor, Layout};
    use rayon::prelude::*;

    use crate::kernels::host::flex::contiguous;
    use crate::kernels::cpu_op::{self, CpuOp};
    use crate::kernels::vectorized;

    type Inputs<B> = (Tensor<B, 4>, Tensor<B, 2>, Tensor<B, 2>);

    /// [`super::rotary`] when `B` is Flex, with or without autodiff, and all are f32; else the
    /// inputs back.
    pub(super) fn rotary<B: Backend>(x: Tensor<B, 4>, cos: Tensor<B, 2>, sin: Tensor<B, 2>) -> Result<Tensor<B, 4>, Inputs<B>> {
        if x.dtype() != DType::F32 || cos.dtype() != DType::F32 || sin.dtype() != DType::F32 || !x.dims()[3].is_multiple_of(2) {
            return Err((x, cos, sin));
        }
        cpu_op::run::<_, Flex, B>(&FlexRotary, (x, cos, sin))
    }

    /// The kernel, as an op of Flex.
    struct FlexRotary;

    impl CpuOp<Flex> for FlexRotary {
        type Inputs<B: Backend> = Inputs<B>;
        type Output<B: Backend> = Tensor<B, 4>;

        fn plain(&self, (x, cos, sin): Inputs<Flex>) -> Tensor<Flex, 4> {
            let tables = Tables::of(cos.into_primitive().tensor(), sin.into_primitive().tensor());
            Tensor::from_primitive(TensorPrimitive::Float(rotate(&x.into_primitive().tensor(), &tables, Direction::Forward)))
        }

        fn tracked<S: CheckpointStrategy>(&self, (x, cos, sin): Inputs<Autodiff<Flex, S>>) -> Tensor<Autodiff<Flex, S>, 4> {
            // The tables are constants.
            let tables = Tables::of(cos.into_primitive().tensor().primitive, sin.into_primitive().tensor().primitive);
            let x = x.into_primitive().tensor();
            let y = match RotaryBackward.prepare::<S>([x.node.clone()]).compute_bound().stateful() {
                OpsKind::Tracked(prep) => {
                    let y = rotate(&x.primitive, &tables, Direction::Forward);
                    prep.finish(tables, y)
                }
                OpsKind::UnTracked(prep) => prep.finish(rotate(&x.primitive, &tables, Direction::Forward)),
            };
            Tensor::from_primitive(TensorPrimitive::Float(y))
        }
    }

    /// The cos and sin tables `[T, d]`, contiguous.
    #[derive(Clone, Debug)]
    struct Tables {
        cos: FlexTensor,
        sin: FlexTensor,
    }

    impl Tables {
        fn of(cos: FlexTensor, sin: FlexTensor) -> Self {
            Self { cos: contiguous(cos), sin: contiguous(sin) }
        }
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Direction {
        /// `y₁ = x₁c₁ − x₂s₁`, `y₂ = x₂c₂ + x₁s₂`.
        Forward,
        /// Its transpose, for the gradient: `dx₁ = dy₁c₁ + dy₂s₂`, `dx₂ = dy₂c₂ − dy₁s₁`.
        Backward,
    }

    /// One pass over the `[B·T·heads, d]` rows of `x`; row r is token `(r / heads) % T`.
    fn rotate(x: &FlexTensor, tables: &Tables, direction: Direction) -> FlexTensor {
        let x = contiguous(x.clone());
        let shape = x.layout().shape().clone();
        let (len, heads, dim) = (shape[1], shape[2], shape[3]);
        let half = dim / 2;
        let values = x.as_slice::<f32>().expect("made contiguous");
        let (cos, sin) = (tables.cos.as_slice::<f32>().expect("contiguous"), tables.sin.as_slice::<f32>().expect("contiguous"));
        assert_eq!((cos.len(), sin.len()), (len * dim, len * dim), "rotary tables do not cover [{len}, {dim}]");
        let mut out = vec![0f32; values.len()];
        // Rows of heads × d values, a token at a time.
        let token = heads * dim;
        out.par_chunks_mut(token).zip(values.par_chunks(token)).enumerate().for_each(|(index, (out, x))| {
            let t = index % len;
            let (c, s) = (&cos[t * dim..(t + 1) * dim], &sin[t * dim..(t + 1) * dim]);
            vectorized(#[inline(always)] || {
                out.chunks_mut(dim).zip(x.chunks(dim)).for_each(|(y, x)| {
                    let (y1, y2) = y.split_at_mut(half);
                    let (x1, x2) = x.split_at(half);
                    let (c1, c2, s1, s2) = (&c[..half], &c[half..], &s[..half], &s[half..]);
                    for i in 0..half {
                        (y1[i], y2[i]) = match direction {
                            Direction::Forward => (x1[i] * c1[i] - x2[i] * s1[i], x2[i] * c2[i] + x1[i] * s2[i]),
                            Direction::Backward => (x1[i] * c1[i] + x2[i] * s2[i], x2[i] * c2[i] - x1[i] * s1[i]),
                        };
                    }
                })
            });
        });
        FlexTensor::new(Bytes::from_elems(out), Layout::contiguous(shape), DType::F32)
    }

    /// The backward step: the transposed rotation of the output's gradient.
    #[derive(Debug)]
    struct RotaryBackward;

    impl Backward<Flex, 1> for RotaryBackward {
        type State = Tables;

        fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
            let tables = ops.state;
            unary::<Flex, _>(ops.parents, ops.node, grads, |grad| rotate(&grad, &tables, Direction::Backward));
        }
    }
}
