//! The tiled product of a packed weight against the dense product of the same weight: forward,
//! the input's gradient, and dropout on W, on both CPU backends, with several tiles.

use std::sync::Arc;

use burn::backend::{Autodiff, Flex, NdArray};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Tensor, TensorData};
use wegeft::kernels::{dropout, packed_matmul};
use wegeft::PackedWeight;

/// 4096 inputs make tiles of 64 rows: 150 outputs take three, the last partial.
const D_IN: usize = 4096;
const D_OUT: usize = 150;
const N: usize = 5;

/// A toy block format: each row is an f32 scale then one i8 per value.
fn packed() -> Arc<PackedWeight> {
    let mut bytes = Vec::new();
    for row in 0..D_OUT {
        bytes.extend((0.01 + row as f32 * 1e-4).to_le_bytes());
        bytes.extend((0..D_IN).map(|i| ((i * 7 + row * 13) % 255) as u8));
    }
    let decode = Arc::new(|row: &[u8], out: &mut [f32]| {
        let scale = f32::from_le_bytes(row[..4].try_into().unwrap());
        out.iter_mut().zip(&row[4..]).for_each(|(o, &q)| *o = scale * (q as i8) as f32);
    });
    Arc::new(PackedWeight::new("toy", D_IN, D_OUT, bytes, decode).unwrap())
}

fn dense<B: Backend>(weight: &PackedWeight, device: &B::Device) -> Tensor<B, 2> {
    Tensor::from_data(TensorData::new(weight.to_dense(), [D_IN, D_OUT]), device)
}

fn max_relative(a: Tensor<impl Backend, 2>, b: Tensor<impl Backend, 2>) -> f32 {
    let (a, b): (Vec<f32>, Vec<f32>) = (a.into_data().to_vec().unwrap(), b.into_data().to_vec().unwrap());
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    a.iter().zip(&b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

fn forward_and_gradient_match_the_dense_product<B: AutodiffBackend>() {
    let device = Default::default();
    let weight = packed();
    let x = Tensor::<B, 2>::random([N, D_IN], Distribution::Normal(0.0, 1.0), &device).require_grad();
    let y = packed_matmul(x.clone(), &weight, 0.0);
    let expected = x.clone().matmul(dense::<B>(&weight, &device));
    assert!(max_relative(y.clone().inner(), expected.clone().inner()) < 1e-5);
    // The input's gradient of Σ y·c for a fixed random c.
    let c = Tensor::<B, 2>::random([N, D_OUT], Distribution::Normal(0.0, 1.0), &device);
    let (grads, expected_grads) = ((y * c.clone()).sum().backward(), (expected * c).sum().backward());
    let error = max_relative(x.grad(&grads).unwrap(), x.grad(&expected_grads).unwrap());
    assert!(error < 1e-5, "input gradient: {error}");
    // Outside autodiff the same kernel answers without a graph.
    let plain = packed_matmul(x.clone().inner(), &weight, 0.3);
    assert!(max_relative(plain, x.inner().matmul(dense::<B::InnerBackend>(&weight, &device))) < 1e-5, "no dropout outside training");
}

fn dropout_on_w_drops_what_dense_dropout_drops<B: AutodiffBackend>() {
    let device = Default::default();
    let weight = packed();
    let x = Tensor::<B, 2>::random([N, D_IN], Distribution::Normal(0.0, 1.0), &device);
    B::seed(&device, 11);
    let y = packed_matmul(x.clone(), &weight, 0.25);
    B::seed(&device, 11);
    let expected = x.clone().matmul(dropout(dense::<B>(&weight, &device), 0.25));
    assert!(max_relative(y.clone().inner(), expected.inner()) < 1e-5);
    // A dense weight held as a loaded one is, a transposed view of PyTorch's [d_out, d_in]
    // storage, masked in that order: the same elements dropped.
    let stored = Tensor::<B, 2>::from_data(dense::<B>(&weight, &device).transpose().into_data(), &device).transpose();
    B::seed(&device, 11);
    let expected = x.matmul(dropout(stored, 0.25));
    assert!(max_relative(y.inner(), expected.inner()) < 1e-5, "transposed view");
}

#[test]
fn flex() {
    forward_and_gradient_match_the_dense_product::<Autodiff<Flex>>();
    dropout_on_w_drops_what_dense_dropout_drops::<Autodiff<Flex>>();
}

#[test]
fn ndarray() {
    forward_and_gradient_match_the_dense_product::<Autodiff<NdArray>>();
    dropout_on_w_drops_what_dense_dropout_drops::<Autodiff<NdArray>>();
}

/// DoRA on a packed weight takes its column norms from the blocks (‖W‖² + 2s·Bᵀ(AᵀW) + s²·BᵀAᵀAB):
/// one layer's output and A, B and m gradients agree with the dense layer's.
fn dora_on_packed_blocks_matches_dora_on_the_dense_weight<B: AutodiffBackend>() {
    use burn::module::Param;
    use wegeft::{DoraAdapter, FrozenWeight, LayerAdapter, LayerInput, LoraAdapter};
    let device = Default::default();
    let weight = packed();
    let dense_weight = dense::<B>(&weight, &device);
    let mut lora = LoraAdapter::<B>::init(D_IN, D_OUT, 4, 2.0, 0.0, &device);
    lora.b = Param::from_tensor(Tensor::random([4, D_OUT], Distribution::Normal(0.0, 0.05), &device));
    let magnitude = dense_weight.clone().powi_scalar(2).sum_dim(0).sqrt().reshape([D_OUT]) * 1.1;
    let adapter = DoraAdapter::new(lora, magnitude);
    let x = Tensor::<B, 2>::random([N, D_IN], Distribution::Normal(0.0, 1.0), &device);
    let run = |frozen: FrozenWeight<'_, B>| {
        let base = frozen.product(x.clone(), 0.0);
        adapter.forward(LayerInput { x: x.clone(), weight: frozen, base, shared: &[] })
    };
    let (on_blocks, on_dense) = (run(FrozenWeight::Packed(&weight)), run(FrozenWeight::Dense(dense_weight.clone())));
    assert!(max_relative(on_blocks.clone().inner(), on_dense.clone().inner()) < 1e-5);
    let (blocks_grads, dense_grads) = (on_blocks.powi_scalar(2).sum().backward(), on_dense.powi_scalar(2).sum().backward());
    for (name, blocks, dense) in [
        ("A", adapter.lora.a.grad(&blocks_grads), adapter.lora.a.grad(&dense_grads)),
        ("B", adapter.lora.b.grad(&blocks_grads), adapter.lora.b.grad(&dense_grads)),
        ("m", adapter.magnitude.grad(&blocks_grads).map(|g| g.unsqueeze()), adapter.magnitude.grad(&dense_grads).map(|g| g.unsqueeze())),
    ] {
        let error = max_relative(blocks.unwrap(), dense.unwrap());
        assert!(error < 1e-4, "{name}: {error}");
    }
}

#[test]
fn dora_on_blocks() {
    dora_on_packed_blocks_matches_dora_on_the_dense_weight::<Autodiff<Flex>>();
}
