//! The LayerNorm and RMSNorm kernels on Flex against burn's own modules: forward and the
//! gradients of x, γ and β, for rows narrower and wider than a vector lane, more rows than one
//! thread's block (so the column sums of γ's and β's gradients combine several blocks), and an
//! input read through a transposed view.

use burn::backend::{Autodiff, Flex};
use burn::nn::{LayerNormConfig, RmsNormConfig};
use burn::module::Param;
use burn::tensor::{Distribution, Tensor, TensorData};

type A = Autodiff<Flex>;

const EPSILON: f64 = 1e-6;

/// Which norm, and whether LayerNorm has its β.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Layer { bias: bool },
    Rms,
}

fn normal(shape: Vec<usize>, mean: f64) -> TensorData {
    let values = Tensor::<Flex, 1>::random([shape.iter().product::<usize>()], Distribution::Normal(mean, 1.0), &Default::default());
    TensorData::new(values.into_data().to_vec::<f32>().unwrap(), shape)
}

/// Output, then the gradients of x, γ and β (empty without β) of `Σ y ⊙ weights`.
fn run(kind: Kind, ours: bool, [x, gamma, beta, weights]: &[TensorData; 4]) -> [Vec<f32>; 4] {
    let device = Default::default();
    let [rows, width] = weights.shape[..] else { unreachable!() };
    // x arrives as a transposed view of a [width, rows] tensor.
    let x_param = Tensor::<A, 2>::from_data(x.clone(), &device).require_grad();
    let x = x_param.clone().transpose();
    let gamma = Tensor::<A, 1>::from_data(gamma.clone(), &device).require_grad();
    let beta = Tensor::<A, 1>::from_data(beta.clone(), &device).require_grad();
    let y = match (kind, ours) {
        (Kind::Layer { bias }, true) => wegeft::kernels::layer_norm(x, gamma.clone(), bias.then(|| beta.clone()), EPSILON),
        (Kind::Layer { bias }, false) => {
            let mut norm = LayerNormConfig::new(width).with_epsilon(EPSILON).with_bias(bias).init::<A>(&device);
            norm.gamma = Param::from_tensor(gamma.clone());
            norm.beta = bias.then(|| Param::from_tensor(beta.clone()));
            norm.forward(x)
        }
        (Kind::Rms, true) => wegeft::kernels::rms_norm(x, gamma.clone(), EPSILON),
        (Kind::Rms, false) => {
            let mut norm = RmsNormConfig::new(width).with_epsilon(EPSILON).init::<A>(&device);
            norm.gamma = Param::from_tensor(gamma.clone());
            norm.forward(x)
        }
    };
    assert_eq!(y.dims(), [rows, width]);
    let grads = (y.clone() * Tensor::from_data(weights.clone(), &device)).sum().backward();
    let grad = |t: &Tensor<A, 1>| t.grad(&grads).map(|g| g.into_data().to_vec().unwrap()).unwrap_or_default();
    let x_grad = x_param.grad(&grads).expect("x is tracked").transpose().into_data().to_vec().unwrap();
    [y.into_data().to_vec().unwrap(), x_grad, grad(&gamma), grad(&beta)]
}

fn check(kind: Kind, rows: usize, width: usize) {
    // Rows off centre, so LayerNorm's mean matters.
    let inputs = [normal(vec![width, rows], 0.5), normal(vec![width], 1.0), normal(vec![width], 0.0), normal(vec![rows, width], 0.0)];
    let ours = run(kind, true, &inputs);
    let theirs = run(kind, false, &inputs);
    for (name, (ours, theirs)) in ["output", "x's gradient", "γ's gradient", "β's gradient"].iter().zip(ours.iter().zip(&theirs)) {
        assert_eq!(ours.len(), theirs.len(), "{kind:?} {rows}×{width}: {name} has another size");
        let scale = theirs.iter().fold(1f32, |m, v| m.max(v.abs()));
        let worst = ours.iter().zip(theirs).map(|(a, b)| (a - b).abs() / scale).fold(0f32, f32::max);
        assert!(worst <= 1e-5, "{kind:?} {rows}×{width}: {name} differs by {worst:e} of its largest value");
    }
    // Without autodiff, the same values.
    let device = Default::default();
    let x = Tensor::<Flex, 2>::from_data(inputs[0].clone(), &device).transpose();
    let [gamma, beta] = [1, 2].map(|i| Tensor::<Flex, 1>::from_data(inputs[i].clone(), &device));
    let plain = match kind {
        Kind::Layer { bias } => wegeft::kernels::layer_norm(x, gamma, bias.then_some(beta), EPSILON),
        Kind::Rms => wegeft::kernels::rms_norm(x, gamma, EPSILON),
    };
    assert_eq!(plain.into_data().to_vec::<f32>().unwrap(), ours[0], "{kind:?}: the untracked pass differs from the tracked one");
}

#[test]
fn layer_norm_matches_burns_forward_and_backward() {
    for (rows, width) in [(21, 40), (600, 67)] {
        check(Kind::Layer { bias: true }, rows, width);
    }
    check(Kind::Layer { bias: false }, 35, 9);
}

#[test]
fn rms_norm_matches_burns_forward_and_backward() {
    for (rows, width) in [(21, 40), (600, 67), (35, 9)] {
        check(Kind::Rms, rows, width);
    }
}
