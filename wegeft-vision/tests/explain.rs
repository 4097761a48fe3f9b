//! WeGeFT's token-cluster maps against the official formula (fixture from
//! `fixtures/make_cluster_map_fixture.py`, on timm's ViT with the update in its proj weights).

use std::path::PathBuf;

use burn::module::Param;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor, TensorData};
use wegeft::io::{read_safetensors, StoredTensor, WeightStore};
use wegeft::{Adapter, Injector, LoraConfig, Targets, WegeftConfig};
use wegeft_vision::explain::{cluster_maps, normalised};
use wegeft_vision::{VisionError, VisionTransformer, VitConfig};

#[macro_use]
extern crate wegeft_backend;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn tensor<B: AutodiffBackend, const D: usize>(stored: &StoredTensor) -> Tensor<B::InnerBackend, D> {
    let shape: [usize; D] = stored.shape.clone().try_into().expect("rank");
    Tensor::from_data(TensorData::new(stored.values.clone(), shape), &Default::default())
}

/// `vit_plain` with WeGeFT r = 3 on every `attn.proj`, one shared pair.
fn model<B: AutodiffBackend>(method: wegeft::AdapterMethod, targets: Targets) -> VisionTransformer<B::InnerBackend> {
    let config = VitConfig::new(32, 8, 24, 2, 3, 5).with_mlp_ratio(2.0);
    let weights = WeightStore::safetensors(&[fixture("vit_plain.safetensors")]).unwrap();
    VisionTransformer::load(&config, weights, Injector::new(method, targets).unwrap(), &Default::default()).unwrap()
}

fn max_difference<B: AutodiffBackend>(actual: Tensor<B::InnerBackend, 4>, expected: Tensor<B::InnerBackend, 4>) -> f32 {
    assert_eq!(actual.dims(), expected.dims());
    (actual - expected).abs().max().into_scalar().elem()
}

fn maps_follow_the_official_formula<B: AutodiffBackend>() {
    let golden = read_safetensors(&fixture("cluster_maps.safetensors")).unwrap();
    let mut model = model::<B>(WegeftConfig::new(3).into(), Targets::new().suffix("attn.proj"));
    let Adapter::Wegeft(pair) = &mut model.adapters.adapters[0] else { panic!("a WeGeFT pair") };
    pair.phi = Param::from_tensor(tensor::<B, 2>(&golden["phi"]));
    pair.psi = Param::from_tensor(tensor::<B, 2>(&golden["psi"]));
    let images = tensor::<B, 4>(&golden["input"]);
    let found = cluster_maps(&model, images, &[1, 0]).unwrap();
    assert_eq!(found.iter().map(|m| m.layer).collect::<Vec<_>>(), [1, 0], "in the order asked for");
    for maps in found {
        let expected = tensor::<B, 4>(&golden[&format!("maps.{}", maps.layer)]);
        let scale: f32 = expected.clone().abs().max().into_scalar().elem();
        let error = max_difference::<B>(maps.maps.clone(), expected) / scale;
        assert!(error <= 1e-5, "block {}: maps differ by {error:e} (relative)", maps.layer);
        let upsampled = max_difference::<B>(normalised(maps.maps, 32, 32), tensor::<B, 4>(&golden[&format!("upsampled.{}", maps.layer)]));
        assert!(upsampled <= 1e-5, "block {}: normalised maps differ by {upsampled:e}", maps.layer);
    }
}

fn lora_and_unadapted_layers_have_no_clustering_head<B: AutodiffBackend>() {
    let images = Tensor::<B::InnerBackend, 4>::zeros([1, 3, 32, 32], &Default::default());
    let lora = model::<B>(LoraConfig::new(3).into(), Targets::new().suffix("attn.proj"));
    let error = cluster_maps(&lora, images.clone(), &[0]).unwrap_err();
    assert!(matches!(&error, VisionError::Explain(m) if m.contains("a lora update")), "{error}");
    let fc1_only = model::<B>(WegeftConfig::new(3).into(), Targets::new().suffix("mlp.fc1"));
    let error = cluster_maps(&fc1_only, images, &[1]).unwrap_err();
    assert!(error.to_string().contains("`blocks.1.attn.proj` is not adapted"), "{error}");
}

backend_tests!(maps_follow_the_official_formula, lora_and_unadapted_layers_have_no_clustering_head);
