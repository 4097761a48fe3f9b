//! The fused rotary embedding on Flex against the composition of burn's ops it replaces, forward
//! and the gradient of x, with tables whose two halves differ (so a swapped half would show) and
//! an input read through the strides of a transposed view.

use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor, TensorData};

type A = Autodiff<Flex>;

fn composed<B: Backend>(x: Tensor<B, 4>, cos: Tensor<B, 2>, sin: Tensor<B, 2>) -> Tensor<B, 4> {
    let [batch, len, heads, dim] = x.dims();
    let (cos, sin) = (cos.reshape([1, len, 1, dim]), sin.reshape([1, len, 1, dim]));
    let first = x.clone().slice([0..batch, 0..len, 0..heads, 0..dim / 2]);
    let second = x.clone().slice([0..batch, 0..len, 0..heads, dim / 2..dim]);
    x * cos + Tensor::cat(vec![second.neg(), first], 3) * sin
}

fn run(rotary: fn(Tensor<A, 4>, Tensor<A, 2>, Tensor<A, 2>) -> Tensor<A, 4>, inputs: &[TensorData; 4]) -> [Vec<f32>; 2] {
    let device = Default::default();
    let x = Tensor::<A, 4>::from_data(inputs[0].clone(), &device).require_grad();
    let [cos, sin, weights] = [1, 2, 3].map(|i| Tensor::<A, 2>::from_data(inputs[i].clone(), &device));
    let weights = weights.reshape([3, 7, 5, 6]);
    // x arrives as a transposed view ([B, heads, T, d] → [B, T, heads, d]).
    let y = rotary(x.clone().swap_dims(1, 2), cos, sin);
    let grads = (y.clone() * weights).sum().backward();
    [y.into_data().to_vec().unwrap(), x.grad(&grads).expect("tracked").into_data().to_vec().unwrap()]
}

#[test]
fn rotary_matches_the_composition_forward_and_backward() {
    let normal = |shape: Vec<usize>| {
        let values = Tensor::<Flex, 1>::random([shape.iter().product::<usize>()], Distribution::Normal(0.0, 1.0), &Default::default());
        TensorData::new(values.into_data().to_vec::<f32>().unwrap(), shape)
    };
    // B 3, heads 5, T 7, d 6.
    let inputs = [normal(vec![3, 5, 7, 6]), normal(vec![7, 6]), normal(vec![7, 6]), normal(vec![3 * 7, 5 * 6])];
    let [ours, our_grad] = run(wegeft::kernels::rotary, &inputs);
    let [theirs, their_grad] = run(composed, &inputs);
    let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(a, b)| (a - b).abs() <= 1e-6 * b.abs().max(1.0));
    assert!(close(&ours, &theirs), "forward differs");
    assert!(close(&our_grad, &their_grad), "gradient differs");
}
