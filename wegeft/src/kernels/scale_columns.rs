//! `x·diag(v)`, each column of a matrix scaled by a vector, as one threaded pass forward and one
//! per gradient on Flex.
//!
//! VeRA scales its rank dimensions and its outputs by trained vectors, DoRA its outputs by the
//! trained magnitudes. As burn ops the product, and backward the broadcast product and the column
//! sum of `grad ⊙ x`, each run on one thread: at ViT-S's shapes they cost VeRA more than its two
//! matmuls.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// Column j of `x` `[N, C]` times `v[j]` (`v` `[C]`).
pub fn scale_columns<B: Backend>(x: Tensor<B, 2>, v: Tensor<B, 1>) -> Tensor<B, 2> {
    #[cfg(feature = "flex")]
    let (x, v) = match flex::scale_columns(x, v) {
        Ok(y) => return y,
        Err(inputs) => inputs,
    };
    x * v.unsqueeze()
}

#[cfg(feature = "flex")]
mod flex {
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{binary, Backward, Ops, OpsKind};
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::backend::Backend;
    use burn::tensor::{Bytes, DType, Shape, Tensor, TensorPrimitive};
    use burn_flex::{FlexTensor, Layout};
    use rayon::prelude::*;

    use crate::kernels::cpu_op::{self, CpuOp};
    use crate::kernels::host::flex::contiguous;
    use crate::kernels::{rows, vectorized};

    type Inputs<B> = (Tensor<B, 2>, Tensor<B, 1>);

    /// [`super::scale_columns`] when `B` is Flex, with or without autodiff, both are f32 and
    /// neither is empty; else the inputs back.
    pub(super) fn scale_columns<B: Backend>(x: Tensor<B, 2>, v: Tensor<B, 1>) -> Result<Tensor<B, 2>, Inputs<B>> {
        let [rows, columns] = x.dims();
        if x.dtype() != DType::F32 || v.dtype() != DType::F32 || v.dims() != [columns] || rows * columns == 0 {
            return Err((x, v));
        }
        cpu_op::run::<_, Flex, B>(&ScaleColumns, (x, v))
    }

    struct ScaleColumns;

    impl CpuOp<Flex> for ScaleColumns {
        type Inputs<B: Backend> = Inputs<B>;
        type Output<B: Backend> = Tensor<B, 2>;

        fn plain(&self, (x, v): Inputs<Flex>) -> Tensor<Flex, 2> {
            Tensor::from_primitive(TensorPrimitive::Float(scale(&x.into_primitive().tensor(), &v.into_primitive().tensor())))
        }

        fn tracked<S: CheckpointStrategy>(&self, (x, v): Inputs<Autodiff<Flex, S>>) -> Tensor<Autodiff<Flex, S>, 2> {
            let (x, v) = (x.into_primitive().tensor(), v.into_primitive().tensor());
            let y = scale(&x.primitive, &v.primitive);
            let y = match ScaleColumnsBackward.prepare::<S>([x.node.clone(), v.node.clone()]).compute_bound().stateful() {
                OpsKind::Tracked(prep) => prep.finish((x.primitive, v.primitive), y),
                OpsKind::UnTracked(prep) => prep.finish(y),
            };
            Tensor::from_primitive(TensorPrimitive::Float(y))
        }
    }

    /// `x·diag(v)`, a block of rows per task.
    fn scale(x: &FlexTensor, v: &FlexTensor) -> FlexTensor {
        let (x, v) = (contiguous(x.clone()), contiguous(v.clone()));
        let (values, v) = (x.as_slice::<f32>().expect("made contiguous"), v.as_slice::<f32>().expect("made contiguous"));
        let span = rows::per_task(v.len()) * v.len();
        let mut out = vec![0f32; values.len()];
        out.par_chunks_mut(span).zip(values.par_chunks(span)).for_each(|(out, x)| {
            vectorized(#[inline(always)] || {
                out.chunks_exact_mut(v.len()).zip(x.chunks_exact(v.len())).for_each(|(out, x)| {
                    out.iter_mut().zip(x.iter().zip(v)).for_each(|(out, (x, v))| *out = x * v);
                })
            })
        });
        FlexTensor::new(Bytes::from_elems(out), Layout::contiguous(x.layout().shape().clone()), DType::F32)
    }

    /// `Σ_i grad[i, j]·x[i, j]`, the gradient of `v`.
    fn column_dots(grad: &FlexTensor, x: &FlexTensor) -> FlexTensor {
        let (grad, x) = (contiguous(grad.clone()), contiguous(x.clone()));
        let columns = x.layout().shape()[1];
        let (grad, values) = (grad.as_slice::<f32>().expect("made contiguous"), x.as_slice::<f32>().expect("made contiguous"));
        let sums = rows::column_sums(values.len() / columns, columns, |rows, sums| {
            let span = rows.start * columns..rows.end * columns;
            vectorized(#[inline(always)] || {
                grad[span.clone()].chunks_exact(columns).zip(values[span.clone()].chunks_exact(columns)).for_each(|(grad, x)| {
                    sums.iter_mut().zip(grad.iter().zip(x)).for_each(|(sum, (grad, x))| *sum += grad * x);
                })
            })
        });
        FlexTensor::new(Bytes::from_elems(sums), Layout::contiguous(Shape::new([columns])), DType::F32)
    }

    /// The backward step; its state is `(x, v)`.
    #[derive(Debug)]
    struct ScaleColumnsBackward;

    impl Backward<Flex, 2> for ScaleColumnsBackward {
        type State = (FlexTensor, FlexTensor);

        fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
            let (x, v) = ops.state;
            binary::<Flex, _, _>(ops.parents, ops.node, grads, |grad| scale(&grad, &v), |grad| column_dots(&grad, &x));
        }
    }
}
