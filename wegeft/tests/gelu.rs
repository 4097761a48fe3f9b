//! The threaded CPU GELU against erf-GELU: burn-flex's own `gelu` and `gelu_backward`, which
//! evaluate libm's `erff` (a few ulp) element by element.

use burn::backend::{Autodiff, Flex, NdArray};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, ElementConversion, Tensor, TensorData};

/// A dense sweep of [-12, 12] (both tails saturate there) and normal draws, in a [6, N/6] matrix
/// so the kernel's chunks split unevenly.
fn inputs() -> Tensor<Flex, 2> {
    let sweep: Vec<f32> = (0..120_000).map(|i| -12.0 + 24.0 * i as f32 / 119_999.0).collect();
    let sweep = Tensor::<Flex, 1>::from_data(TensorData::new(sweep, [120_000]), &Default::default());
    let normal = Tensor::<Flex, 1>::random([120_000], Distribution::Normal(0.0, 3.0), &Default::default());
    Tensor::cat(vec![sweep, normal], 0).reshape([6, 40_000])
}

/// GELU(x) and GELU'(x) on backend `A` (the gradient of the sum), as Flex tensors.
fn values_and_derivative<A: AutodiffBackend>(x: &Tensor<Flex, 2>, gelu: fn(Tensor<A, 2>) -> Tensor<A, 2>) -> [Tensor<Flex, 2>; 2] {
    let x = Tensor::<A, 2>::from_data(x.to_data(), &Default::default()).require_grad();
    let y = gelu(x.clone());
    let grads = y.clone().sum().backward();
    let derivative = x.grad(&grads).expect("x is tracked");
    [y.into_data(), derivative.into_data()].map(|data| Tensor::from_data(data, &Default::default()))
}

fn max_abs_diff<B: Backend>(a: Tensor<B, 2>, b: Tensor<B, 2>) -> f32 {
    (a - b).abs().max().into_scalar().elem()
}

#[test]
fn gelu_matches_erf_gelu_within_1e_6_forward_and_backward() {
    let x = inputs();
    let [reference, reference_derivative] = values_and_derivative::<Autodiff<Flex>>(&x, burn::tensor::activation::gelu);
    let on_flex = values_and_derivative::<Autodiff<Flex>>(&x, wegeft::kernels::gelu);
    let on_ndarray = values_and_derivative::<Autodiff<NdArray>>(&x, wegeft::kernels::gelu);
    for (backend, [values, derivative]) in [("flex", on_flex), ("ndarray", on_ndarray)] {
        let forward = max_abs_diff(values, reference.clone());
        let backward = max_abs_diff(derivative, reference_derivative.clone());
        println!("{backend}: gelu vs erf-GELU {forward:.2e}, derivative {backward:.2e}");
        assert!(forward <= 1e-6, "{backend}: forward differs by {forward}");
        assert!(backward <= 1e-6, "{backend}: derivative differs by {backward}");
    }
    // Tensors without autodiff take the same kernel.
    assert!(max_abs_diff(wegeft::kernels::gelu(x), reference) <= 1e-6);
}

/// `--checkpointing` trains on `Autodiff<_, BalancedCheckpointing>`: the same kernel runs there,
/// bit for bit forward and backward, where burn's own GELU would differ by a few ulp.
#[test]
fn gradient_checkpointing_runs_the_same_kernel() {
    use burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing;
    let x = inputs();
    let plain = values_and_derivative::<Autodiff<Flex>>(&x, wegeft::kernels::gelu);
    let checkpointed = values_and_derivative::<Autodiff<Flex, BalancedCheckpointing>>(&x, wegeft::kernels::gelu);
    let burns = values_and_derivative::<Autodiff<Flex, BalancedCheckpointing>>(&x, burn::tensor::activation::gelu);
    for (what, ours, theirs, burns) in [("forward", 0, 0, 0), ("backward", 1, 1, 1)].map(|(w, a, b, c)| (w, plain[a].clone(), checkpointed[b].clone(), burns[c].clone())) {
        assert_eq!(max_abs_diff(ours.clone(), theirs), 0.0, "{what}: the checkpointing backend took another GELU");
        assert!(max_abs_diff(ours, burns) > 0.0, "{what}: burn's GELU is not distinguishable from the kernel here");
    }
}
