//! The fused CPU attention (forward, and the gradients of Q, K and V) against the composition of
//! burn's own ops: `softmax(scale·QKᵀ + bias)·V` with K/V heads repeated, on non-square shapes
//! (N queries ≠ M keys, d ≠ dv), heads read through the strides of `[B, tokens, heads, d]`
//! projections, grouped K/V heads, and a bias that broadcasts over heads or over the batch.

use burn::backend::{Autodiff, Flex, NdArray};
use burn::tensor::activation::softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, ElementConversion, Tensor, TensorData};

/// One attention call: its dimensions and where its bias broadcasts.
#[derive(Clone, Copy, Debug)]
struct Case {
    batch: usize,
    heads: usize,
    kv_heads: usize,
    queries: usize,
    keys: usize,
    dim: usize,
    value_dim: usize,
    /// `None`: no bias; `Some(per_batch)`: a causal mask plus padding, `[B or 1, 1, N, M]`.
    bias: Option<bool>,
}

const CASES: [Case; 4] = [
    // ViT-like: one K/V head per query head, no bias.
    Case { batch: 3, heads: 4, kv_heads: 4, queries: 11, keys: 11, dim: 8, value_dim: 8, bias: None },
    // Decoder-like: grouped K/V heads, a causal mask with per-sequence padding.
    Case { batch: 2, heads: 6, kv_heads: 2, queries: 9, keys: 9, dim: 5, value_dim: 5, bias: Some(true) },
    // Queries after cached keys (N < M), d ≠ dv, one mask for the batch.
    Case { batch: 2, heads: 3, kv_heads: 1, queries: 4, keys: 13, dim: 6, value_dim: 10, bias: Some(false) },
    // Rows and columns of one size only in one dimension each.
    Case { batch: 1, heads: 2, kv_heads: 2, queries: 7, keys: 3, dim: 12, value_dim: 2, bias: None },
];

struct Inputs {
    q: TensorData,
    k: TensorData,
    v: TensorData,
    bias: Option<TensorData>,
    weights: TensorData,
}

impl Case {
    fn inputs(&self) -> Inputs {
        let device = Default::default();
        // Seeded, and scores of a few units: a saturated softmax would make every gradient a
        // difference of near-equal terms, and the comparison one of rounding.
        Flex::seed(&device, 7);
        let normal = |shape: [usize; 4]| Tensor::<Flex, 4>::random(shape, Distribution::Normal(0.0, 1.0), &device).into_data();
        let bias = self.bias.map(|per_batch| {
            let rows = if per_batch { self.batch } else { 1 };
            let past = self.keys - self.queries;
            let mut values = vec![0f32; rows * self.queries * self.keys];
            for b in 0..rows {
                for i in 0..self.queries {
                    for j in 0..self.keys {
                        // Causal, and the first `b` keys of sequence b are padding.
                        if j > past + i || (j < b && j < past + i) {
                            values[(b * self.queries + i) * self.keys + j] = -1e9;
                        }
                    }
                }
            }
            TensorData::new(values, [rows, 1, self.queries, self.keys])
        });
        Inputs {
            // Q as the model makes it: `[B, N, H, d]` with heads swapped to dim 1 later.
            q: normal([self.batch, self.queries, self.heads, self.dim]),
            k: normal([self.batch, self.keys, self.kv_heads, self.dim]),
            v: normal([self.batch, self.keys, self.kv_heads, self.value_dim]),
            bias,
            weights: normal([self.batch, self.heads, self.queries, self.value_dim]),
        }
    }

    fn scale(&self) -> f64 {
        1.0 / (self.dim as f64).sqrt()
    }
}

/// The composition of burn's ops, K/V heads repeated.
fn composed<B: Backend>(case: &Case, q: Tensor<B, 4>, k: Tensor<B, 4>, v: Tensor<B, 4>, bias: Option<Tensor<B, 4>>) -> Tensor<B, 4> {
    let group = case.heads / case.kv_heads;
    let repeat = |t: Tensor<B, 4>| {
        let [b, kv, s, d] = t.dims();
        t.unsqueeze_dim::<5>(2).expand([b, kv, group, s, d]).reshape([b, kv * group, s, d])
    };
    let scores = q.matmul(repeat(k).swap_dims(2, 3)) * case.scale();
    let scores = match bias {
        Some(bias) => scores + bias,
        None => scores,
    };
    softmax(scores, 3).matmul(repeat(v))
}

type Attention<A> = fn(&Case, Tensor<A, 4>, Tensor<A, 4>, Tensor<A, 4>, Option<Tensor<A, 4>>) -> Tensor<A, 4>;

/// The output and the gradients of Q, K and V of `Σ w·attention(..)`, as flat values.
fn run<A: AutodiffBackend>(case: &Case, inputs: &Inputs, attention: Attention<A>) -> [Vec<f32>; 4] {
    let device = Default::default();
    let tensor = |data: &TensorData| Tensor::<A, 4>::from_data(data.clone(), &device);
    let (q, k, v) = (tensor(&inputs.q).require_grad(), tensor(&inputs.k).require_grad(), tensor(&inputs.v).require_grad());
    let out = attention(case, q.clone().swap_dims(1, 2), k.clone().swap_dims(1, 2), v.clone().swap_dims(1, 2), inputs.bias.as_ref().map(tensor));
    let grads = (out.clone() * tensor(&inputs.weights)).sum().backward();
    let grad = |t: &Tensor<A, 4>| t.grad(&grads).expect("tracked").into_data().to_vec::<f32>().unwrap();
    [out.into_data().to_vec::<f32>().unwrap(), grad(&q), grad(&k), grad(&v)]
}

fn fused<B: Backend>(case: &Case, q: Tensor<B, 4>, k: Tensor<B, 4>, v: Tensor<B, 4>, bias: Option<Tensor<B, 4>>) -> Tensor<B, 4> {
    wegeft::kernels::attention(q, k, v, bias, case.scale())
}

/// max |a − b| / max |b|.
fn relative(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let top = b.iter().fold(0f32, |m, x| m.max(x.abs()));
    a.iter().zip(b).fold(0f32, |m, (a, b)| m.max((a - b).abs())) / top
}

fn matches_the_composition<A: AutodiffBackend>(backend: &str, tolerance: f32) {
    for case in CASES {
        let inputs = case.inputs();
        let ours = run::<A>(&case, &inputs, fused);
        let reference = run::<A>(&case, &inputs, composed);
        for (what, (ours, reference)) in ["output", "dQ", "dK", "dV"].iter().zip(ours.iter().zip(&reference)) {
            let error = relative(ours, reference);
            assert!(error <= tolerance, "{backend} {case:?}: {what} differs by {error:e} (relative)");
        }
    }
}

#[test]
fn flex_attention_matches_the_composition_forward_and_backward() {
    matches_the_composition::<Autodiff<Flex>>("flex", 1e-5);
}

/// Elsewhere, burn's attention op (without a bias or grouped heads) or the composition; burn's op
/// orders its arithmetic differently.
#[test]
fn other_backends_take_burns_ops() {
    matches_the_composition::<Autodiff<NdArray>>("ndarray", 1e-4);
}

#[test]
fn untracked_flex_attention_matches_the_tracked_output() {
    for case in CASES {
        let inputs = case.inputs();
        let device = Default::default();
        let tensor = |data: &TensorData| Tensor::<Flex, 4>::from_data(data.clone(), &device);
        let plain = fused(&case, tensor(&inputs.q).swap_dims(1, 2), tensor(&inputs.k).swap_dims(1, 2), tensor(&inputs.v).swap_dims(1, 2), inputs.bias.as_ref().map(tensor));
        let [tracked, ..] = run::<Autodiff<Flex>>(&case, &inputs, fused);
        let difference: f32 = (plain - Tensor::from_data(TensorData::new(tracked, [case.batch, case.heads, case.queries, case.value_dim]), &device))
            .abs()
            .max()
            .into_scalar()
            .elem();
        assert_eq!(difference, 0.0, "{case:?}");
    }
}
