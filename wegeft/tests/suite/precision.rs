//! Mixed precision: a half-precision frozen base under an f32 adapter tracks the all-f32 model,
//! the adapter's parameters and gradients stay f32, loss scaling returns the true gradients and
//! skips overflowing steps, and a cast base loads back from an f32 record in its precision.

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{DType, Tensor};
use wegeft::precision::CastParams;
use wegeft::train::LossScaler;
use wegeft::{Precision, WegeftConfig};

use crate::common::{assert_close, random, random_linear, Tiny, TINY_WIDTH};
use crate::properties::methods;

/// The gradient of every adapter parameter (f32), in bank order.
fn adapter_grads<B: AutodiffBackend>(model: &Tiny<B>, grads: &GradientsParams) -> Vec<Tensor<B::InnerBackend, 1>> {
    crate::common::adapter_grads(&model.adapters, grads)
}

fn a_half_precision_base_under_an_f32_adapter_tracks_f32<B: AutodiffBackend>() {
    let device = Default::default();
    // Half precision keeps 11 (f16) or 8 (bf16) significant bits: errors of a few 1e-3 and 1e-2.
    for (precision, tolerance) in [(Precision::F16, 1e-2), (Precision::Bf16, 6e-2)] {
        if let Err(error) = precision.check::<B>(&device) {
            assert!(!B::supports_dtype(&device, precision.float_dtype().into()));
            assert!(error.to_string().contains(&format!("no {precision} tensors")), "{error}");
            println!("{precision} on {}: refused ({error})", B::name(&device));
            continue;
        }
        for method in methods() {
            let model = Tiny::<B>::new(method.clone()).randomize_adapters();
            let x = random::<B, 2>([6, TINY_WIDTH]);
            let g = random::<B, 2>([6, crate::common::TINY_CLASSES]);
            let y = model.forward(x.clone());
            let expected = adapter_grads(&model, &GradientsParams::from_grads((y.clone() * g.clone()).sum().backward(), &model));

            let mut cast = CastParams(precision.float_dtype());
            let half = Tiny { blocks: model.blocks.iter().map(|block| block.clone().map(&mut cast)).collect(), ..model.clone() };
            assert_eq!(half.blocks[0].base.weight.val().dtype(), precision.float_dtype().into());
            let y_half = half.forward(x);
            assert_eq!(y_half.dtype(), DType::F32, "an f32 model gets f32 activations back");
            assert_close(&format!("{precision} {method:?} output"), y_half.clone(), y, tolerance);
            let grads = GradientsParams::from_grads((y_half * g).sum().backward(), &half);
            for (index, (grad, expected)) in adapter_grads(&half, &grads).into_iter().zip(expected).enumerate() {
                assert_eq!(grad.dtype(), DType::F32, "the adapter's gradients are f32");
                assert_close(&format!("{precision} {method:?} gradient {index}"), grad, expected, 2.0 * tolerance);
            }
            println!("{precision} {method:?} on {}: within {tolerance:e} of f32", B::name(&device));
        }
    }
}

fn loss_scaling_returns_the_true_gradients_and_skips_overflowing_steps<B: AutodiffBackend>() {
    let model = Tiny::<B>::new(WegeftConfig::new(3)).randomize_adapters();
    let x = random::<B, 2>([4, TINY_WIDTH]);
    let plain = GradientsParams::from_grads(model.forward(x.clone()).sum().backward(), &model);
    let scaler = LossScaler::with_scale(1024.0);
    let scaled = scaler.backward(model.forward(x.clone()).sum(), &model);
    for (grad, expected) in adapter_grads(&model, &scaled).into_iter().zip(adapter_grads(&model, &plain)) {
        assert_close("unscaled gradient", grad, expected, crate::common::matmul_tolerance::<B>());
    }
    assert_eq!((scaler.scale(), scaler.skipped_steps()), (1024.0, 0));

    // A loss whose scaled gradients overflow f32: no gradients (the optimizer skips the step) and
    // half the scale.
    let overflowing = scaler.backward(model.forward(x).sum().mul_scalar(f32::MAX as f64), &model);
    assert!(overflowing.is_empty(), "an overflowing step hands the optimizer nothing");
    assert_eq!((scaler.scale(), scaler.skipped_steps()), (512.0, 1));

    assert!(LossScaler::for_run(Precision::F16, 1).unwrap().is_some());
    assert!(LossScaler::for_run(Precision::Bf16, 4).unwrap().is_none(), "bf16 needs no scaling");
    let error = LossScaler::for_run(Precision::F16, 2).unwrap_err();
    assert!(error.to_string().contains("f16 training runs on one device"), "{error}");
}

fn a_cast_base_loads_back_from_an_f32_record_in_its_precision<B: AutodiffBackend>() {
    let device = Default::default();
    if Precision::F16.check::<B>(&device).is_err() {
        return;
    }
    let linear = random_linear::<B>(5, 3).no_grad();
    let record = linear.clone().into_record();
    let half = linear.map(&mut CastParams(Precision::F16.float_dtype()));
    let loaded = half.load_record(record);
    assert_eq!(loaded.weight.val().dtype(), DType::F16, "a resumed checkpoint keeps the base in f16");
    assert!(!loaded.weight.val().is_require_grad(), "and frozen");
}

backend_tests!(
    a_half_precision_base_under_an_f32_adapter_tracks_f32,
    loss_scaling_returns_the_true_gradients_and_skips_overflowing_steps,
    a_cast_base_loads_back_from_an_f32_record_in_its_precision,
);
