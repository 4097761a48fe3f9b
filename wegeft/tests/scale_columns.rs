//! The column-scaling kernel on Flex (VeRA's and DoRA's `x·diag(v)`) against burn's broadcast
//! product: output and both gradients, with more rows than one thread's block (so `v`'s gradient
//! sums several blocks) and `x` read through a transposed view.

use burn::backend::{Autodiff, Flex};
use burn::tensor::{Distribution, Tensor, TensorData};

type A = Autodiff<Flex>;

fn normal(shape: Vec<usize>) -> TensorData {
    let values = Tensor::<Flex, 1>::random([shape.iter().product::<usize>()], Distribution::Normal(0.0, 1.0), &Default::default());
    TensorData::new(values.into_data().to_vec::<f32>().unwrap(), shape)
}

/// Output, then the gradients of x and v of `Σ y ⊙ weights`.
fn run(ours: bool, [x, v, weights]: &[TensorData; 3]) -> [Vec<f32>; 3] {
    let device = Default::default();
    let x_param = Tensor::<A, 2>::from_data(x.clone(), &device).require_grad();
    let v = Tensor::<A, 1>::from_data(v.clone(), &device).require_grad();
    let x = x_param.clone().transpose();
    let y = match ours {
        true => wegeft::kernels::scale_columns(x, v.clone()),
        false => x * v.clone().unsqueeze(),
    };
    let grads = (y.clone() * Tensor::from_data(weights.clone(), &device)).sum().backward();
    let x_grad = x_param.grad(&grads).expect("tracked").transpose().into_data().to_vec().unwrap();
    [y.into_data().to_vec().unwrap(), x_grad, v.grad(&grads).expect("tracked").into_data().to_vec().unwrap()]
}

#[test]
fn scale_columns_matches_the_broadcast_product_forward_and_backward() {
    let (rows, columns) = (700, 67);
    let inputs = [normal(vec![columns, rows]), normal(vec![columns]), normal(vec![rows, columns])];
    let ours = run(true, &inputs);
    let theirs = run(false, &inputs);
    assert_eq!(ours[0], theirs[0], "forward differs");
    assert_eq!(ours[1], theirs[1], "x's gradient differs");
    let scale = theirs[2].iter().fold(1f32, |m, v| m.max(v.abs()));
    assert!(ours[2].iter().zip(&theirs[2]).all(|(a, b)| (a - b).abs() <= 1e-5 * scale), "v's gradient differs");
}
