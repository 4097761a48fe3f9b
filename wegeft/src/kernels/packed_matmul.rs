//! `x·W` for a weight kept in quantisation blocks, decoded a tile of rows at a time so W never
//! exists whole in f32, forward and backward (the input's gradient; W is frozen).

use std::sync::Arc;

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorData};

use super::HashedMask;
use crate::packed::PackedWeight;

/// `x·W` (`[n, d_in]` → `[n, d_out]`) with W dropped out at `prob` under autodiff (WeGeFT's
/// dropout on W: the same elements and scale [`super::dropout`] would drop of the dense weight
/// drawn with the same seed). The CPU backends decode tiles of W into a small buffer and multiply
/// each with threaded gemm; the backward does the same against the output's gradient. Other
/// backends (and f16 inputs) get W decoded whole onto the device each call: correct, but with
/// the f32 matrix's memory for the moment.
pub fn packed_matmul<B: Backend>(x: Tensor<B, 2>, weight: &Arc<PackedWeight>, prob: f64) -> Tensor<B, 2> {
    let device = x.device();
    let mask = (B::ad_enabled(&device) && prob > 0.0).then(|| HashedMask::draw::<B>(prob, &device));
    if x.dtype() == DType::F32 && super::on_cpu::<B>() {
        #[cfg(feature = "flex")]
        let x = match cpu::on::<B, burn::backend::Flex>(x, weight, mask) {
            Ok(y) => return y,
            Err(x) => x,
        };
        #[cfg(feature = "ndarray")]
        let x = match cpu::on::<B, burn::backend::NdArray>(x, weight, mask) {
            Ok(y) => return y,
            Err(x) => x,
        };
        return dense_matmul(x, weight, mask);
    }
    dense_matmul(x, weight, mask)
}

/// `x·W` with W decoded whole (and masked) on `x`'s device.
fn dense_matmul<B: Backend>(x: Tensor<B, 2>, weight: &PackedWeight, mask: Option<HashedMask>) -> Tensor<B, 2> {
    let mut dense = weight.to_dense();
    if let Some(mask) = mask {
        dense.iter_mut().enumerate().for_each(|(index, value)| *value = mask.apply(index as u64, *value));
    }
    let w = Tensor::<B, 2>::from_data(TensorData::new(dense, weight.dims()), &x.device()).cast(x.dtype());
    x.matmul(w)
}

#[cfg(any(feature = "flex", feature = "ndarray"))]
mod cpu {
    use std::sync::Arc;

    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::{BalancedCheckpointing, CheckpointStrategy, NoCheckpointing};
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{unary, Backward, Ops};
    use burn::backend::Autodiff;
    use burn::tensor::backend::Backend;
    use burn::tensor::{Tensor, TensorData, TensorPrimitive};
    use gemm::{gemm, Parallelism};
    use rayon::prelude::*;

    use crate::kernels::{cast, HashedMask};
    use crate::packed::{PackedWeight, TILE_VALUES};

    /// [`super::packed_matmul`] when `B` is the CPU backend `C`, with or without autodiff; else `x` back.
    pub(super) fn on<B: Backend, C: Backend>(x: Tensor<B, 2>, weight: &Arc<PackedWeight>, mask: Option<HashedMask>) -> Result<Tensor<B, 2>, Tensor<B, 2>> {
        let x = match cast::<Tensor<B, 2>, Tensor<C, 2>>(x) {
            Ok(x) => return Ok(cast(untracked(x, weight, mask)).unwrap_or_else(|_| unreachable!("B is C"))),
            Err(x) => x,
        };
        let x = match on_autodiff::<B, C, NoCheckpointing>(x, weight, mask) {
            Ok(y) => return Ok(y),
            Err(x) => x,
        };
        on_autodiff::<B, C, BalancedCheckpointing>(x, weight, mask)
    }

    fn on_autodiff<B: Backend, C: Backend, S: CheckpointStrategy>(x: Tensor<B, 2>, weight: &Arc<PackedWeight>, mask: Option<HashedMask>) -> Result<Tensor<B, 2>, Tensor<B, 2>> {
        let x = cast::<Tensor<B, 2>, Tensor<Autodiff<C, S>, 2>>(x)?;
        Ok(cast(tracked(x, weight, mask)).unwrap_or_else(|_| unreachable!("B is Autodiff<C, S>")))
    }

    /// Under autodiff: the forward untracked, and a backward that multiplies the output's
    /// gradient by the same tiles, transposed.
    fn tracked<C: Backend, S: CheckpointStrategy>(x: Tensor<Autodiff<C, S>, 2>, weight: &Arc<PackedWeight>, mask: Option<HashedMask>) -> Tensor<Autodiff<C, S>, 2> {
        let x = x.into_primitive().tensor();
        let inner = Tensor::<C, 2>::from_primitive(TensorPrimitive::Float(x.primitive.clone()));
        let y = untracked(inner, weight, mask).into_primitive().tensor();
        let backward = PackedMatmulBackward { weight: weight.clone(), mask };
        let output = backward.prepare::<S>([x.node.clone()]).compute_bound().stateless(y);
        Tensor::from_primitive(TensorPrimitive::Float(output))
    }

    /// The backward step of [`tracked`]: `dx = dy·Wᵀ`.
    #[derive(Debug)]
    struct PackedMatmulBackward {
        weight: Arc<PackedWeight>,
        mask: Option<HashedMask>,
    }

    impl<C: Backend> Backward<C, 1> for PackedMatmulBackward {
        type State = ();

        fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
            unary::<C, _>(ops.parents, ops.node, grads, |grad| {
                let grad = Tensor::<C, 2>::from_primitive(TensorPrimitive::Float(grad));
                let (device, [n, _]) = (grad.device(), grad.dims());
                let grad = grad.into_data().convert::<f32>();
                let dx = input_gradient(grad.as_slice::<f32>().expect("f32"), n, &self.weight, self.mask);
                Tensor::<C, 2>::from_data(TensorData::new(dx, [n, self.weight.dims()[0]]), &device).into_primitive().tensor()
            });
        }
    }

    /// `x·W` through the tensor's host data.
    fn untracked<C: Backend>(x: Tensor<C, 2>, weight: &PackedWeight, mask: Option<HashedMask>) -> Tensor<C, 2> {
        let (device, [n, _]) = (x.device(), x.dims());
        let x = x.into_data().convert::<f32>();
        let y = product(x.as_slice::<f32>().expect("f32"), n, weight, mask);
        Tensor::from_data(TensorData::new(y, [n, weight.dims()[1]]), &device)
    }

    /// Rows of Wᵀ per tile.
    fn tile_rows(weight: &PackedWeight) -> usize {
        let [d_in, d_out] = weight.dims();
        (TILE_VALUES / d_in).clamp(1, d_out)
    }

    /// Calls `f(first row, tile)` for each tile of Wᵀ (`rows × d_in`), decoded and masked.
    fn for_each_tile(weight: &PackedWeight, mask: Option<HashedMask>, mut f: impl FnMut(usize, &[f32])) {
        let [d_in, d_out] = weight.dims();
        let rows = tile_rows(weight);
        let mut tile = vec![0f32; rows * d_in];
        for start in (0..d_out).step_by(rows) {
            let count = rows.min(d_out - start);
            let tile = &mut tile[..count * d_in];
            weight.decode_rows(start..start + count, tile);
            if let Some(mask) = mask {
                // Element (i, j) of the dense [d_in, d_out] weight is index i·d_out + j.
                tile.par_chunks_mut(d_in).enumerate().for_each(|(r, row)| mask.apply_strided(row, (start + r) as u64, d_out as u64));
            }
            f(start, tile);
        }
    }

    fn parallelism() -> Parallelism {
        Parallelism::Rayon(rayon::current_num_threads())
    }

    /// `y = x·W`: each tile fills its columns of y.
    fn product(x: &[f32], n: usize, weight: &PackedWeight, mask: Option<HashedMask>) -> Vec<f32> {
        let [d_in, d_out] = weight.dims();
        let mut y = vec![0f32; n * d_out];
        for_each_tile(weight, mask, |start, tile| {
            let rows = tile.len() / d_in;
            // SAFETY: y is n × d_out and its columns start..start + rows exist; x is n × d_in and
            // the tile rows × d_in, read as its transpose (d_in × rows); the strides say so.
            unsafe {
                gemm(
                    n, rows, d_in,
                    y.as_mut_ptr().add(start), 1, d_out as isize,
                    false,
                    x.as_ptr(), 1, d_in as isize,
                    tile.as_ptr(), d_in as isize, 1,
                    0.0, 1.0, false, false, false,
                    parallelism(),
                );
            }
        });
        y
    }

    /// `dx = dy·Wᵀ`: the sum over tiles of dy's columns times the tile.
    fn input_gradient(dy: &[f32], n: usize, weight: &PackedWeight, mask: Option<HashedMask>) -> Vec<f32> {
        let [d_in, d_out] = weight.dims();
        let mut dx = vec![0f32; n * d_in];
        let mut first = true;
        for_each_tile(weight, mask, |start, tile| {
            let rows = tile.len() / d_in;
            // SAFETY: dx is n × d_in; dy is n × d_out and its columns start..start + rows exist;
            // the tile is rows × d_in; the strides say so.
            unsafe {
                gemm(
                    n, d_in, rows,
                    dx.as_mut_ptr(), 1, d_in as isize,
                    !first,
                    dy.as_ptr().add(start), 1, d_out as isize,
                    tile.as_ptr(), 1, d_in as isize,
                    1.0, 1.0, false, false, false,
                    parallelism(),
                );
            }
            first = false;
        });
        dx
    }
}
