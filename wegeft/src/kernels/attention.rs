//! Scaled dot-product attention, `softmax(scale·QKᵀ + bias)·V`, as one threaded op forward and
//! backward on Flex.
//!
//! burn-autodiff 0.21 differentiates attention as its composition: a batched matmul, a
//! transposed copy of K, the softmax and its backward as separate single-threaded ops, the
//! heads' transposes made contiguous. At ViT-S's shapes that took 20 ms of a 60 ms block, four
//! times PyTorch's (BENCHMARKS.md). Here each (batch, key/value head) pair is one rayon task that
//! reads Q, K, V and the output gradient through their strides (no copies), keeps only each
//! row's maximum and sum for the backward pass (the probabilities are recomputed, as flash
//! attention does), and writes outputs in `[batch, tokens, heads, dim]` order, so the heads' merge that
//! follows is free. Grouped-query attention (fewer K/V heads than query heads) needs no repeat.
//! Other backends and dtypes take burn's ops.

use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::module::attention as burn_attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{FloatDType, Tensor};

/// `softmax(scale·QKᵀ + bias)·V` for `q` `[B, H, N, d]`, `k` `[B, Hkv, M, d]`, `v`
/// `[B, Hkv, M, dv]` (H a multiple of Hkv; query head h reads K/V head h / (H / Hkv)) and an
/// additive `bias` `[B or 1, H or 1, N, M]` (a mask: large negative values); `[B, H, N, dv]`.
/// Scores are computed in f32 whatever the inputs' precision.
pub fn attention<B: Backend>(q: Tensor<B, 4>, k: Tensor<B, 4>, v: Tensor<B, 4>, bias: Option<Tensor<B, 4>>, scale: f64) -> Tensor<B, 4> {
    let shapes = Shapes::of(&q, &k, &v, bias.as_ref());
    #[cfg(feature = "flex")]
    let (q, k, v, bias) = match flex::attention(q, k, v, bias, scale as f32, shapes) {
        Ok(out) => return out,
        Err(inputs) => inputs,
    };
    composed(q, k, v, bias, scale, shapes)
}

/// The dimensions of one attention call, checked once.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(feature = "flex"), allow(dead_code))]
struct Shapes {
    batch: usize,
    heads: usize,
    kv_heads: usize,
    queries: usize,
    keys: usize,
    dim: usize,
    value_dim: usize,
}

impl Shapes {
    fn of<B: Backend>(q: &Tensor<B, 4>, k: &Tensor<B, 4>, v: &Tensor<B, 4>, bias: Option<&Tensor<B, 4>>) -> Self {
        let ([batch, heads, queries, dim], [kb, kv_heads, keys, kd], [vb, vh, vk, value_dim]) = (q.dims(), k.dims(), v.dims());
        assert!(
            kb == batch && vb == batch && kd == dim && vh == kv_heads && vk == keys && kv_heads > 0 && heads % kv_heads == 0,
            "attention: q {:?}, k {:?}, v {:?} do not fit together",
            q.dims(),
            k.dims(),
            v.dims()
        );
        if let Some(bias) = bias {
            let [bb, bh, bn, bm] = bias.dims();
            assert!(
                (bb == batch || bb == 1) && (bh == heads || bh == 1) && bn == queries && bm == keys,
                "attention: bias {:?} does not broadcast to [{batch}, {heads}, {queries}, {keys}]",
                bias.dims()
            );
        }
        Self { batch, heads, kv_heads, queries, keys, dim, value_dim }
    }
}

/// burn's ops: its attention op where it applies (one K/V head per query head, no bias), which
/// GPU backends fuse; else the composition, with K/V heads repeated and scores in f32.
fn composed<B: Backend>(q: Tensor<B, 4>, k: Tensor<B, 4>, v: Tensor<B, 4>, bias: Option<Tensor<B, 4>>, scale: f64, shapes: Shapes) -> Tensor<B, 4> {
    let dtype = q.dtype();
    if shapes.heads == shapes.kv_heads && bias.is_none() {
        let f32s = |t: Tensor<B, 4>| t.cast(FloatDType::F32);
        let options = AttentionModuleOptions { scale: Some(scale), ..Default::default() };
        return burn_attention(f32s(q), f32s(k), f32s(v), None, None, options).cast(FloatDType::from(dtype));
    }
    let group = shapes.heads / shapes.kv_heads;
    let repeat = |t: Tensor<B, 4>| {
        let [b, kv, s, d] = t.dims();
        t.unsqueeze_dim::<5>(2).expand([b, kv, group, s, d]).reshape([b, kv * group, s, d])
    };
    let scores = q.matmul(repeat(k).swap_dims(2, 3)).cast(FloatDType::F32) * scale;
    let scores = match bias {
        Some(bias) => scores + bias.cast(FloatDType::F32),
        None => scores,
    };
    softmax(scores, 3).cast(FloatDType::from(dtype)).matmul(repeat(v))
}

#[cfg(feature = "flex")]
mod flex {
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::backend::Backend;
    use burn::tensor::{Bytes, DType, Shape, Tensor, TensorPrimitive};
    use burn_flex::{FlexTensor, Layout};
    use gemm::{gemm, Parallelism};
    use rayon::prelude::*;

    use super::Shapes;
    use crate::kernels::host::flex::contiguous;
    use crate::kernels::cpu_op::{self, CpuOp};
    use crate::kernels::{exp_nonpositive, vectorized};

    type Inputs<B> = (Tensor<B, 4>, Tensor<B, 4>, Tensor<B, 4>, Option<Tensor<B, 4>>);

    /// [`super::attention`] when `B` is Flex, with or without autodiff, and every input is f32;
    /// else the inputs back.
    pub(super) fn attention<B: Backend>(q: Tensor<B, 4>, k: Tensor<B, 4>, v: Tensor<B, 4>, bias: Option<Tensor<B, 4>>, scale: f32, shapes: Shapes) -> Result<Tensor<B, 4>, Inputs<B>> {
        let all_f32 = [&q, &k, &v].into_iter().chain(bias.as_ref()).all(|t| t.dtype() == DType::F32);
        if !all_f32 {
            return Err((q, k, v, bias));
        }
        cpu_op::run::<_, Flex, B>(&FlexAttention { scale, shapes }, (q, k, v, bias))
    }

    fn flex(t: Tensor<Flex, 4>) -> FlexTensor {
        t.into_primitive().tensor()
    }

    fn tensor<B: Backend>(t: B::FloatTensorPrimitive) -> Tensor<B, 4> {
        Tensor::from_primitive(TensorPrimitive::Float(t))
    }

    /// The kernel with one call's scale and shapes.
    struct FlexAttention {
        scale: f32,
        shapes: Shapes,
    }

    impl CpuOp<Flex> for FlexAttention {
        type Inputs<B: Backend> = Inputs<B>;
        type Output<B: Backend> = Tensor<B, 4>;

        fn plain(&self, (q, k, v, bias): Inputs<Flex>) -> Tensor<Flex, 4> {
            tensor::<Flex>(forward(&flex(q), &flex(k), &flex(v), bias.map(flex).as_ref(), self.scale, self.shapes).0)
        }

        fn tracked<S: CheckpointStrategy>(&self, (q, k, v, bias): Inputs<Autodiff<Flex, S>>) -> Tensor<Autodiff<Flex, S>, 4> {
            let Self { scale, shapes } = *self;
            let [q, k, v] = [q, k, v].map(|t| t.into_primitive().tensor());
            // The bias is a constant (a mask): its gradient is never asked for.
            let bias = bias.map(|bias| bias.into_primitive().tensor().primitive);
            let out = match AttentionBackward.prepare::<S>([q.node.clone(), k.node.clone(), v.node.clone()]).compute_bound().stateful() {
                OpsKind::Tracked(prep) => {
                    let (out, row_stats) = forward(&q.primitive, &k.primitive, &v.primitive, bias.as_ref(), scale, shapes);
                    let state = Saved { q: q.primitive, k: k.primitive, v: v.primitive, bias, row_stats, scale, shapes };
                    prep.finish(state, out)
                }
                OpsKind::UnTracked(prep) => prep.finish(forward(&q.primitive, &k.primitive, &v.primitive, bias.as_ref(), scale, shapes).0),
            };
            tensor::<Autodiff<Flex, S>>(out)
        }
    }

    /// What the backward pass recomputes the probabilities from.
    #[derive(Clone, Debug)]
    struct Saved {
        q: FlexTensor,
        k: FlexTensor,
        v: FlexTensor,
        bias: Option<FlexTensor>,
        /// `[B, H, N, 2]`: each score row's maximum and the sum of its exponentials, so the
        /// backward pass recomputes the forward's probabilities bit for bit (a log-sum-exp
        /// loses digits to cancellation when scores are large).
        row_stats: Vec<f32>,
        scale: f32,
        shapes: Shapes,
    }

    #[derive(Debug)]
    struct AttentionBackward;

    impl Backward<Flex, 3> for AttentionBackward {
        type State = Saved;

        fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
            let grad = grads.consume::<Flex>(&ops.node);
            let [dq, dk, dv] = backward(&ops.state, &grad);
            for (parent, grad) in ops.parents.into_iter().zip([dq, dk, dv]) {
                if let Some(parent) = parent {
                    grads.register::<Flex>(parent.id, grad);
                }
            }
        }
    }

    /// A 4-D f32 tensor read through its strides.
    struct View<'a> {
        values: &'a [f32],
        offset: isize,
        strides: [isize; 4],
    }

    impl<'a> View<'a> {
        fn of(t: &'a FlexTensor) -> Self {
            let layout = t.layout();
            let strides: [isize; 4] = layout.strides().try_into().expect("a 4-D tensor");
            Self { values: t.storage::<f32>(), offset: layout.start_offset() as isize, strides }
        }

        /// The `[rows, columns]` matrix of batch `b`, head `h`: its first element and strides.
        fn matrix(&self, b: usize, h: usize) -> (*const f32, isize, isize) {
            let start = self.offset + b as isize * self.strides[0] + h as isize * self.strides[1];
            // SAFETY: start is the offset of an element of the tensor (its layout says so).
            (unsafe { self.values.as_ptr().offset(start) }, self.strides[2], self.strides[3])
        }
    }

    /// The bias, contiguous, and which of its batch and head entries a (b, h) pair reads.
    struct Bias {
        values: FlexTensor,
        per_batch: bool,
        per_head: bool,
    }

    impl Bias {
        fn of(bias: &FlexTensor) -> Self {
            let dims = bias.layout().shape().clone();
            let values = contiguous(bias.clone());
            Self { values, per_batch: dims[0] > 1, per_head: dims[1] > 1 }
        }

        fn rows(&self, b: usize, h: usize, shapes: &Shapes) -> &[f32] {
            let (start, _) = self.values.layout().contiguous_offsets().expect("made contiguous");
            let heads = if self.per_head { shapes.heads } else { 1 };
            let block = shapes.queries * shapes.keys;
            let index = (if self.per_batch { b } else { 0 }) * heads + if self.per_head { h } else { 0 };
            &self.values.storage::<f32>()[start + index * block..start + (index + 1) * block]
        }
    }

    /// An output buffer that the tasks fill in disjoint parts.
    #[derive(Clone, Copy)]
    struct Shared(*mut f32);
    // SAFETY: every task writes only the rows of its own (batch, head) pairs.
    unsafe impl Send for Shared {}
    unsafe impl Sync for Shared {}

    impl Shared {
        /// The element at `offset` (a method, so closures capture the whole `Shared`).
        ///
        /// # Safety
        /// `offset` lies inside the buffer.
        unsafe fn at(&self, offset: usize) -> *mut f32 {
            self.0.add(offset)
        }
    }

    /// `lhs·rhs` (`m × k` by `k × n`, any strides) written into `dst` (row stride `dst_rs`),
    /// `beta` times the product, added to what is there when `accumulate`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn product(m: usize, n: usize, k: usize, dst: *mut f32, dst_rs: isize, accumulate: bool, lhs: (*const f32, isize, isize), rhs: (*const f32, isize, isize), beta: f32) {
        gemm(m, n, k, dst, 1, dst_rs, accumulate, lhs.0, lhs.2, lhs.1, rhs.0, rhs.2, rhs.1, 1.0, beta, false, false, false, Parallelism::None);
    }

    /// Transposed strides of a matrix view.
    fn transposed((ptr, rs, cs): (*const f32, isize, isize)) -> (*const f32, isize, isize) {
        (ptr, cs, rs)
    }

    /// `scale·Q_h·K_gᵀ + bias` into `scores` (`N × M`).
    fn scores(scores: &mut [f32], q: &View, k: &View, bias: Option<&Bias>, (b, h, g): (usize, usize, usize), scale: f32, shapes: &Shapes) {
        let (n, m, d) = (shapes.queries, shapes.keys, shapes.dim);
        // SAFETY: scores is N × M; Q_h is N × d and K_gᵀ d × M through their strides.
        unsafe { product(n, m, d, scores.as_mut_ptr(), m as isize, false, q.matrix(b, h), transposed(k.matrix(b, g)), scale) };
        if let Some(bias) = bias {
            scores.iter_mut().zip(bias.rows(b, h, shapes)).for_each(|(s, &bias)| *s += bias);
        }
    }

    fn output(shape: [usize; 4], values: Vec<f32>, strides: [usize; 4]) -> FlexTensor {
        let layout = Layout::new(Shape::from(shape.to_vec()), strides.iter().map(|&s| s as isize).collect(), 0);
        FlexTensor::new(Bytes::from_elems(values), layout, DType::F32)
    }

    /// The output, `[B, H, N, dv]` stored as `[B, N, H, dv]`, and each row's maximum and sum.
    fn forward(q: &FlexTensor, k: &FlexTensor, v: &FlexTensor, bias: Option<&FlexTensor>, scale: f32, shapes: Shapes) -> (FlexTensor, Vec<f32>) {
        let Shapes { batch, heads, kv_heads, queries: n, keys: m, value_dim: dv, .. } = shapes;
        let group = heads / kv_heads;
        let (q, k, v, bias) = (View::of(q), View::of(k), View::of(v), bias.map(Bias::of));
        let mut out = vec![0f32; batch * n * heads * dv];
        let mut row_stats = vec![0f32; batch * heads * n * 2];
        let (out_ptr, stats_ptr) = (Shared(out.as_mut_ptr()), Shared(row_stats.as_mut_ptr()));
        (0..batch * kv_heads).into_par_iter().for_each(|task| {
            let (b, g) = (task / kv_heads, task % kv_heads);
            let mut s = vec![0f32; n * m];
            for h in g * group..(g + 1) * group {
                scores(&mut s, &q, &k, bias.as_ref(), (b, h, g), scale, &shapes);
                // SAFETY: rows (b, h, ·) of the statistics belong to this task alone.
                let stats = unsafe { std::slice::from_raw_parts_mut(stats_ptr.at((b * heads + h) * n * 2), n * 2) };
                vectorized(#[inline(always)] || {
                    s.chunks_mut(m).zip(stats.chunks_mut(2)).for_each(|(row, stats)| {
                        let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
                        row.iter_mut().for_each(|s| *s = exp_nonpositive(*s - max));
                        let sum: f32 = row.iter().sum();
                        row.iter_mut().for_each(|p| *p /= sum);
                        stats.copy_from_slice(&[max, sum]);
                    })
                });
                // SAFETY: out holds [B, N, H, dv]; rows (b, ·, h) belong to this task; P is N × M.
                unsafe {
                    let dst = out_ptr.at((b * n * heads + h) * dv);
                    product(n, dv, m, dst, (heads * dv) as isize, false, (s.as_ptr(), m as isize, 1), v.matrix(b, g), 1.0);
                }
            }
        });
        (output([batch, heads, n, dv], out, [n * heads * dv, dv, heads * dv, 1]), row_stats)
    }

    /// The gradients of Q, K and V, each stored `[B, tokens, heads, dim]`.
    fn backward(saved: &Saved, grad: &FlexTensor) -> [FlexTensor; 3] {
        let shapes = saved.shapes;
        let Shapes { batch, heads, kv_heads, queries: n, keys: m, dim: d, value_dim: dv } = shapes;
        let group = heads / kv_heads;
        let (q, k, v, dout) = (View::of(&saved.q), View::of(&saved.k), View::of(&saved.v), View::of(grad));
        let bias = saved.bias.as_ref().map(Bias::of);
        let mut dq = vec![0f32; batch * n * heads * d];
        let mut dk = vec![0f32; batch * m * kv_heads * d];
        let mut dv_values = vec![0f32; batch * m * kv_heads * dv];
        let (dq_ptr, dk_ptr, dv_ptr) = (Shared(dq.as_mut_ptr()), Shared(dk.as_mut_ptr()), Shared(dv_values.as_mut_ptr()));
        (0..batch * kv_heads).into_par_iter().for_each(|task| {
            let (b, g) = (task / kv_heads, task % kv_heads);
            let (mut p, mut ds) = (vec![0f32; n * m], vec![0f32; n * m]);
            for (i, h) in (g * group..(g + 1) * group).enumerate() {
                scores(&mut p, &q, &k, bias.as_ref(), (b, h, g), saved.scale, &shapes);
                let stats = &saved.row_stats[(b * heads + h) * n * 2..(b * heads + h + 1) * n * 2];
                let first = i == 0;
                // SAFETY: the [B, M, Hkv, ·] rows (b, ·, g) of dK and dV and the [B, N, H, d] rows
                // (b, ·, h) of dQ belong to this task; P and dS are N × M; dO_h is N × dv.
                unsafe {
                    vectorized(#[inline(always)] || {
                        p.chunks_mut(m).zip(stats.chunks(2)).for_each(|(row, stats)| {
                            row.iter_mut().for_each(|s| *s = exp_nonpositive(*s - stats[0]) / stats[1]);
                        });
                    });
                    let dv_g = dv_ptr.at((b * m * kv_heads + g) * dv);
                    product(m, dv, n, dv_g, (kv_heads * dv) as isize, !first, (p.as_ptr(), 1, m as isize), dout.matrix(b, h), 1.0);
                    product(n, m, dv, ds.as_mut_ptr(), m as isize, false, dout.matrix(b, h), transposed(v.matrix(b, g)), 1.0);
                    let scale = saved.scale;
                    vectorized(#[inline(always)] || {
                        ds.chunks_mut(m).zip(p.chunks(m)).for_each(|(ds, p)| {
                            let dot: f32 = ds.iter().zip(p).map(|(ds, p)| ds * p).sum();
                            ds.iter_mut().zip(p).for_each(|(ds, &p)| *ds = p * (*ds - dot) * scale);
                        })
                    });
                    let dq_h = dq_ptr.at((b * n * heads + h) * d);
                    product(n, d, m, dq_h, (heads * d) as isize, false, (ds.as_ptr(), m as isize, 1), k.matrix(b, g), 1.0);
                    let dk_g = dk_ptr.at((b * m * kv_heads + g) * d);
                    product(m, d, n, dk_g, (kv_heads * d) as isize, !first, (ds.as_ptr(), 1, m as isize), q.matrix(b, h), 1.0);
                }
            }
        });
        [
            output([batch, heads, n, d], dq, [n * heads * d, d, heads * d, 1]),
            output([batch, kv_heads, m, d], dk, [m * kv_heads * d, d, kv_heads * d, 1]),
            output([batch, kv_heads, m, dv], dv_values, [m * kv_heads * dv, dv, kv_heads * dv, 1]),
        ]
    }
}
