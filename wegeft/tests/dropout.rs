//! The hashed dropout of the CPU backends: burn's semantics (rate, scale, identity outside
//! training), repeatable under `B::seed`, and the same mask whether or not the input is tracked.

use burn::backend::{Autodiff, Flex, NdArray};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor};
use wegeft::kernels::dropout;

const SHAPE: [usize; 2] = [200, 500];

/// `B::seed` sets a generator the tests of a backend share: they take turns.
static SEEDED: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn seeded() -> std::sync::MutexGuard<'static, ()> {
    SEEDED.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
const PROB: f64 = 0.1;

fn values<B: Backend>(t: Tensor<B, 2>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().unwrap()
}

/// Dropout of ones after `B::seed(seed)`, tracked or not.
fn dropped_ones<B: AutodiffBackend>(seed: u64, tracked: bool) -> Vec<f32> {
    let device = Default::default();
    B::seed(&device, seed);
    let x = Tensor::<B, 2>::ones(SHAPE, &device);
    values(dropout(if tracked { x.require_grad() } else { x }, PROB))
}

fn drops_at_the_rate_and_scales_the_rest<B: AutodiffBackend>() {
    let y = dropped_ones::<B>(7, false);
    let dropped = y.iter().filter(|&&v| v == 0.0).count() as f64 / y.len() as f64;
    // 100,000 draws: the standard deviation of the rate is 0.00095.
    assert!((dropped - PROB).abs() < 0.005, "dropped {dropped}");
    let scale = (1.0 / (1.0 - PROB)) as f32;
    assert!(y.iter().all(|&v| v == 0.0 || v == scale));
    assert_eq!(y, dropped_ones::<B>(7, false), "the seed decides the mask");
    assert_ne!(y, dropped_ones::<B>(8, false));
    assert_eq!(y, dropped_ones::<B>(7, true), "a tracked input gets the same mask");
}

fn the_gradient_is_the_mask<B: AutodiffBackend>() {
    let device = Default::default();
    B::seed(&device, 3);
    let x = Tensor::<B, 2>::random(SHAPE, burn::tensor::Distribution::Normal(0.0, 1.0), &device).require_grad();
    let y = dropout(x.clone(), PROB);
    let grad = x.grad(&y.clone().sum().backward()).unwrap();
    let error: f32 = (y.inner() - x.inner() * grad).abs().max().into_scalar().elem();
    assert_eq!(error, 0.0);
}

fn identity_outside_training_and_at_zero<B: AutodiffBackend>() {
    let device = Default::default();
    let x = Tensor::<B::InnerBackend, 2>::ones(SHAPE, &device);
    assert_eq!(values(dropout(x.clone(), PROB)), values(x));
    let x = Tensor::<B, 2>::ones(SHAPE, &device);
    assert_eq!(values(dropout(x.clone(), 0.0)), values(x));
}

#[test]
fn flex() {
    let _seeded = seeded();
    drops_at_the_rate_and_scales_the_rest::<Autodiff<Flex>>();
    the_gradient_is_the_mask::<Autodiff<Flex>>();
    identity_outside_training_and_at_zero::<Autodiff<Flex>>();
}

#[test]
fn ndarray() {
    let _seeded = seeded();
    drops_at_the_rate_and_scales_the_rest::<Autodiff<NdArray>>();
    the_gradient_is_the_mask::<Autodiff<NdArray>>();
    identity_outside_training_and_at_zero::<Autodiff<NdArray>>();
}

/// `--checkpointing` trains on `Autodiff<_, BalancedCheckpointing>`: it takes the hashed kernel
/// too, so the same seed draws the same mask as without checkpointing (burn's sampler would not).
#[test]
fn gradient_checkpointing_takes_the_same_kernel() {
    use burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing;
    type Checkpointed = Autodiff<Flex, BalancedCheckpointing>;
    let _seeded = seeded();
    drops_at_the_rate_and_scales_the_rest::<Checkpointed>();
    the_gradient_is_the_mask::<Checkpointed>();
    assert_eq!(dropped_ones::<Checkpointed>(7, true), dropped_ones::<Autodiff<Flex>>(7, true));
    assert_eq!(dropped_ones::<Checkpointed>(7, false), dropped_ones::<Autodiff<Flex>>(7, false));
}
