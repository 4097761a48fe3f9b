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
        values.par_chunks_mut(super::CHUNK).enumerate().for_each(|(chunk, values)| mask.apply_strided(values, (chunk * super::CHUNK) as u64, 1));
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
        #[cfg(feature = "flex")]
        let x = match flex::masked(x, mask) {
            Ok(y) => return y,
            Err(x) => x,
        };
        let mut data = x.into_data().convert::<f32>();
        super::apply(data.as_mut_slice::<f32>().expect("converted to f32"), mask);
        Tensor::<B, D>::from_data(data, &device).cast(dtype)
    }

    /// A frozen f32 matrix on Flex masked in one pass into a buffer of its own layout: a weight
    /// is usually a transposed view of PyTorch's `[d_out, d_in]`, which `into_data` would first
    /// copy into row-major order.
    #[cfg(feature = "flex")]
    mod flex {
        use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
        use burn::backend::{Autodiff, Flex};
        use burn::tensor::backend::Backend;
        use burn::tensor::{Bytes, DType, Tensor, TensorPrimitive};
        use burn_flex::{FlexTensor, Layout};
        use rayon::prelude::*;

        use crate::kernels::cpu_op::{self, CpuOp};
        use crate::kernels::{cast, HashedMask};

        /// [`super::masked`] of a 2-D f32 tensor on Flex (with or without autodiff); else `x` back.
        pub(super) fn masked<B: Backend, const D: usize>(x: Tensor<B, D>, mask: HashedMask) -> Result<Tensor<B, D>, Tensor<B, D>> {
            if x.dtype() != DType::F32 {
                return Err(x);
            }
            let x = cast::<Tensor<B, D>, Tensor<B, 2>>(x)?;
            let back = |x: Tensor<B, 2>| cast::<Tensor<B, 2>, Tensor<B, D>>(x).unwrap_or_else(|_| unreachable!("D is 2"));
            cpu_op::run::<_, Flex, B>(&MaskFrozen(mask), x).map(back).map_err(back)
        }

        struct MaskFrozen(HashedMask);

        impl CpuOp<Flex> for MaskFrozen {
            type Inputs<B: Backend> = Tensor<B, 2>;
            type Output<B: Backend> = Tensor<B, 2>;

            fn plain(&self, x: Tensor<Flex, 2>) -> Tensor<Flex, 2> {
                Tensor::from_primitive(TensorPrimitive::Float(in_layout(x.into_primitive().tensor(), self.0)))
            }

            /// `x` needs no gradient: the masked copy is a new leaf, as a frozen weight is.
            fn tracked<S: CheckpointStrategy>(&self, x: Tensor<Autodiff<Flex, S>, 2>) -> Tensor<Autodiff<Flex, S>, 2> {
                Tensor::from_inner(self.plain(x.inner()))
            }
        }

        /// `x` masked by dense (row-major) index, written in `x`'s own order when that is
        /// row-major or column-major, else from a row-major copy.
        fn in_layout(x: FlexTensor, mask: HashedMask) -> FlexTensor {
            let (rows, columns, row_stride, column_stride) = x.layout().as_2d_strides().expect("a matrix");
            // A run of the storage: its values' dense indices start at run·`first` and step by `step`.
            let (run, first, step, layout) = match (row_stride, column_stride) {
                (r, 1) if r == columns as isize => (columns, columns, 1, Layout::contiguous([rows, columns].into())),
                (1, c) if c == rows as isize => (rows, 1, columns, Layout::new([rows, columns].into(), vec![1, rows as isize], 0)),
                _ => return in_layout(x.to_contiguous(), mask),
            };
            let start = x.layout().start_offset();
            let values = &x.storage::<f32>()[start..start + rows * columns];
            let mut out = vec![0f32; rows * columns];
            out.par_chunks_mut(run.max(1)).zip(values.par_chunks(run.max(1))).enumerate().for_each(|(index, (out, values))| {
                out.copy_from_slice(values);
                mask.apply_strided(out, (index * first) as u64, step as u64);
            });
            FlexTensor::new(Bytes::from_elems(out), layout, DType::F32)
        }
    }
}
