//! Half-precision weights: on a backend with f16/bf16 the logits stay within half-precision
//! rounding of `transformers`' f32 logits (adapters included); a backend without them (ndarray,
//! bf16 on WGPU) gets a typed error. `--features wgpu` runs the same tests on WGPU.

use std::path::PathBuf;

use burn::module::Param;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{DType, Int, Tensor, TensorData};
use safetensors::SafeTensors;
use wegeft::{Injector, PeftError, Targets, WegeftConfig};
use wegeft_backend::backend_tests;
use wegeft_llm::{load, Decoder, LlmError, Precision};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn logits<B: Backend>(model: &Decoder<B>, ids: &[i64], device: &B::Device) -> Vec<f32> {
    let tokens = Tensor::<B, 2, Int>::from_data(TensorData::new(ids.to_vec(), [1, ids.len()]), device);
    let logits = model.forward(tokens, None, None);
    assert_eq!(logits.dtype(), DType::F32, "logits come back in f32");
    logits.into_data().convert::<f32>().to_vec().unwrap()
}

fn relative_error(actual: &[f32], expected: &[f32]) -> f32 {
    let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
    actual.iter().zip(expected).fold(0f32, |m, (a, e)| m.max((a - e).abs())) / scale
}

/// `transformers`' f32 logits of the untied fixture and the ids they were computed for.
fn reference() -> (Vec<i64>, Vec<f32>) {
    let bytes = std::fs::read(fixture("tiny_llama_untied/logits.safetensors")).unwrap();
    let tensors = SafeTensors::deserialize(&bytes).unwrap();
    let ids = tensors.tensor("ids").unwrap().data().chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect();
    let logits = tensors.tensor("logits").unwrap().data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    (ids, logits)
}

fn half_precision_follows_the_backends_dtype_support<A: AutodiffBackend>() {
    type B<A> = <A as AutodiffBackend>::InnerBackend;
    let device = Default::default();
    let (ids, expected) = reference();
    let injector = Injector::new(WegeftConfig::new(4).with_alpha(Some(8.0)), Targets::new().suffix("q_proj").suffix("down_proj")).unwrap();
    let mut adapted = load::<B<A>>(&fixture("tiny_llama_untied"), injector, &device).unwrap().model;
    // A trained-looking adapter: ψ set so that the update is not zero.
    let pairs = adapted.adapters.adapters.iter_mut().filter_map(|adapter| match adapter {
        wegeft::Adapter::Wegeft(pair) => Some(pair),
        _ => None,
    });
    for (index, pair) in pairs.enumerate() {
        let [r, d] = pair.psi.dims();
        let values: Vec<f32> = (0..r * d).map(|i| ((i * 7 + index * 3) % 11) as f32 / 11.0 - 0.5).collect();
        pair.psi = Param::from_tensor(Tensor::from_data(TensorData::new(values, [r, d]), &device));
    }
    let adapted_f32 = logits(&adapted, &ids, &device);
    assert!(relative_error(&adapted_f32, &expected) > 1e-3, "the adapter changes the logits");
    let base = load::<B<A>>(&fixture("tiny_llama_untied"), Injector::none(), &device).unwrap().model;
    for (precision, dtype, tolerance) in [(Precision::F16, DType::F16, 5e-3), (Precision::Bf16, DType::BF16, 4e-2)] {
        let supported = B::<A>::supports_dtype(&device, dtype);
        match base.clone().with_precision(precision, &device) {
            Ok(half) => {
                assert!(supported);
                assert_eq!(half.layers[0].self_attn.q_proj.base.weight.val().dtype(), dtype);
                assert_eq!(half.layers[0].input_layernorm.gamma.val().dtype(), DType::F32, "norms stay f32");
                let error = relative_error(&logits(&half, &ids, &device), &expected);
                println!("{precision:?} on {}: relative error {error:.2e} against transformers' f32 logits", B::<A>::name(&device));
                assert!(error < tolerance, "{precision:?}: relative error {error}");
                let half = adapted.clone().with_precision(precision, &device).unwrap();
                let error = relative_error(&logits(&half, &ids, &device), &adapted_f32);
                assert!(error < tolerance, "{precision:?} with an adapter: relative error {error}");
            }
            Err(error) => {
                assert!(!supported, "{precision:?} refused although supported: {error}");
                assert!(matches!(error, LlmError::Peft(PeftError::Precision { .. })), "{error}");
                println!("{precision:?} on {}: refused ({error})", B::<A>::name(&device));
            }
        }
    }
}

#[test]
fn ndarray_refuses_half_precision_with_a_typed_error() {
    let model = load::<burn::backend::NdArray>(&fixture("tiny_llama_untied"), Injector::none(), &Default::default()).unwrap().model;
    let error = model.with_precision(Precision::F16, &Default::default()).unwrap_err();
    assert!(error.to_string().contains("no f16 tensors"), "{error}");
}

backend_tests!(half_precision_follows_the_backends_dtype_support);
