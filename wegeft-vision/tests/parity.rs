//! The ViT against timm's own outputs (fixtures from `fixtures/make_vit_fixtures.py`), adapter
//! placement, and checkpoint errors.

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::backend::{Autodiff, NdArray};
use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor, TensorData};
use wegeft::io::{read_safetensors, StoredTensor, WeightStore};
use wegeft::{Adapted, Injector, LoraConfig, ParamReport, PeftError, Targets, WegeftConfig, WegeftInit};
use wegeft_vision::{VisionError, VisionTransformer, VitConfig};

#[macro_use]
extern crate wegeft_backend;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn plain_config() -> VitConfig {
    VitConfig::new(32, 8, 24, 2, 3, 5).with_mlp_ratio(2.0)
}

fn dinov2_config() -> VitConfig {
    VitConfig::new(28, 7, 24, 2, 2, 0).with_layer_scale(Some(0.1))
}

fn tensor<B: AutodiffBackend, const D: usize>(tensors: &BTreeMap<String, StoredTensor>, key: &str) -> Tensor<B, D> {
    let stored = &tensors[key];
    let shape: [usize; D] = stored.shape.clone().try_into().expect("rank");
    Tensor::from_data(TensorData::new(stored.values.clone(), shape), &Default::default())
}

fn relative_error<B: AutodiffBackend, const D: usize>(actual: Tensor<B, D>, expected: Tensor<B, D>) -> f64 {
    assert_eq!(actual.dims(), expected.dims());
    let scale: f64 = expected.clone().abs().max().into_scalar().elem();
    let diff: f64 = (actual - expected).abs().max().into_scalar().elem();
    diff / scale
}

fn checkpoint(name: &str) -> WeightStore {
    WeightStore::safetensors(&[fixture(&format!("{name}.safetensors"))]).unwrap()
}

fn load<B: AutodiffBackend>(config: &VitConfig, name: &str, injector: Injector) -> VisionTransformer<B> {
    let weights = checkpoint(name);
    VisionTransformer::load(config, weights, injector, &Default::default()).unwrap()
}

fn plain_vit_matches_timm<B: AutodiffBackend>() {
    let model = load::<B>(&plain_config(), "vit_plain", Injector::none());
    let io = read_safetensors(&fixture("vit_plain_io.safetensors")).unwrap();
    let x = tensor::<B, 4>(&io, "square.input");
    let features = relative_error(model.forward_features(x.clone()), tensor(&io, "square.features"));
    let logits = relative_error(model.forward(x), tensor(&io, "square.output"));
    assert!(features <= 1e-4 && logits <= 1e-4, "features {features:e}, logits {logits:e}");
}

fn dinov2_style_vit_matches_timm_on_its_grid_and_a_resampled_one<B: AutodiffBackend>() {
    let model = load::<B>(&dinov2_config(), "vit_dinov2", Injector::none());
    let io = read_safetensors(&fixture("vit_dinov2_io.safetensors")).unwrap();
    for case in ["pretrained_grid", "resampled_grid"] {
        let x = tensor::<B, 4>(&io, &format!("{case}.input"));
        let error = relative_error(model.forward_features(x), tensor(&io, &format!("{case}.features")));
        assert!(error <= 1e-4, "{case}: {error:e}");
    }
}

fn paper_targets() -> Targets {
    Targets::new().suffix("attn.proj").suffix("attn.qkv.q").suffix("attn.qkv.v").suffix("mlp.fc1").suffix("mlp.fc2")
}

/// Replaces every parameter it maps with Normal(0, 0.2) values.
struct Randomize;

impl<B: burn::tensor::backend::Backend> ModuleMapper<B> for Randomize {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        param.map(|t| t.random_like(burn::tensor::Distribution::Normal(0.0, 0.2)))
    }
}

fn fresh_adapters_leave_outputs_identical_and_merging_reproduces_trained_ones<B: AutodiffBackend>() {
    let io = read_safetensors(&fixture("vit_plain_io.safetensors")).unwrap();
    let x = tensor::<B, 4>(&io, "square.input");
    let frozen = load::<B>(&plain_config(), "vit_plain", Injector::none()).forward(x.clone());
    for method in [
        wegeft::AdapterMethod::from(WegeftConfig::new(4)),
        WegeftConfig::new(4).with_init(WegeftInit::Llm).into(),
        LoraConfig::new(4).into(),
    ] {
        let injector = Injector::new(method.clone(), paper_targets()).unwrap();
        let mut model = load::<B>(&plain_config(), "vit_plain", injector);
        model.forward(x.clone()).into_data().assert_eq(&frozen.clone().into_data(), true);

        // A trained adapter, in effect: every adapter tensor random.
        model.adapters = std::mem::take(&mut model.adapters).map(&mut Randomize);
        let adapted = model.forward(x.clone());
        assert!(relative_error(adapted.clone(), frozen.clone()) > 1e-2, "{method:?} changed nothing");
        let merged = relative_error(model.clone().merged().forward(x.clone()), adapted);
        assert!(merged <= 1e-4, "{method:?}: merged differs by {merged:e}");
    }
}

fn qkv_slices_and_modules_form_their_own_groups<B: AutodiffBackend>() {
    let injector = Injector::new(WegeftConfig::new(4), paper_targets()).unwrap();
    let model = load::<B>(&plain_config(), "vit_plain", injector);
    let plan = model.adapters.plan().unwrap();
    let groups: Vec<&str> = plan.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(groups, ["blocks.*.attn.qkv.q", "blocks.*.attn.qkv.v", "blocks.*.attn.proj", "blocks.*.mlp.fc1", "blocks.*.mlp.fc2"]);
    assert_eq!(plan.layers.len(), 10);
    let report = ParamReport::of(&model);
    assert_eq!(report.adapter, 2 * 4 * (24 + 24 + 24 + 24 + 48));
    assert_eq!(report.head, 24 * 5 + 5, "only the head trains besides the adapter");
}

fn vit_b_attn_proj_shared_r16_has_24576_parameters_at_any_depth<B: AutodiffBackend>() {
    // A shared pair's size does not depend on depth, so two ViT-B blocks say what twelve would.
    let mut config = VitConfig::base(10);
    config.depth = 2;
    let injector = Injector::new(WegeftConfig::new(16), Targets::new().suffix("attn.proj")).unwrap();
    let model: VisionTransformer<B> =
        VisionTransformer::load(&config, WeightStore::random(), injector, &Default::default()).unwrap();
    assert_eq!(model.adapters.plan().unwrap().layers.len(), 2);
    let report = ParamReport::of(&model);
    assert_eq!(report.adapter, 24_576);
    assert_eq!(report.head, 768 * 10 + 10);
}

fn checkpoint_problems_name_the_key<B: AutodiffBackend>() {
    let config = plain_config();
    let edit = |change: &dyn Fn(&mut BTreeMap<String, StoredTensor>)| {
        let path = fixture("vit_plain.safetensors");
        let mut tensors = read_safetensors(&path).unwrap();
        change(&mut tensors);
        let weights = WeightStore::from_tensors(path, tensors);
        VisionTransformer::<B>::load(&config, weights, Injector::none(), &Default::default()).unwrap_err()
    };
    let missing = edit(&|t| {
        t.remove("blocks.1.mlp.fc2.weight");
    });
    assert!(matches!(&missing, VisionError::Peft(PeftError::MissingTensor { key, expected, .. }) if key == "blocks.1.mlp.fc2.weight" && expected == &[24, 48]), "{missing}");
    let shape = edit(&|t| t.get_mut("blocks.0.attn.qkv.weight").unwrap().shape = vec![24, 72]);
    assert!(matches!(&shape, VisionError::Peft(PeftError::ShapeMismatch { found, .. }) if found == &[24, 72]), "{shape}");
    let extra = edit(&|t| {
        let token = t["cls_token"].clone();
        t.insert("reg_token".into(), token);
    });
    assert!(matches!(&extra, VisionError::Peft(PeftError::UnexpectedTensor { key, .. }) if key == "reg_token"), "{extra}");
    let mut other = config.clone();
    other.embed_dim = 30;
    let error = VisionTransformer::<B>::load(&other, checkpoint("vit_plain"), Injector::none(), &Default::default()).unwrap_err();
    assert!(error.to_string().contains("patch_embed.proj.weight"), "{error}");
    let with = |change: &dyn Fn(&mut VitConfig)| {
        let mut broken = config.clone();
        change(&mut broken);
        broken
    };
    for broken in [with(&|c| c.patch_size = 0), with(&|c| c.num_heads = 5), with(&|c| c.drop_path = 1.0)] {
        let error = VisionTransformer::<B>::load(&broken, checkpoint("vit_plain"), Injector::none(), &Default::default()).unwrap_err();
        assert!(matches!(error, VisionError::InvalidConfig(_)), "{error}");
    }
}

fn a_head_for_another_class_count_is_reinitialised<B: AutodiffBackend>() {
    let mut config = plain_config();
    config.num_classes = 7;
    let model = load::<B>(&config, "vit_plain", Injector::none());
    assert_eq!(model.forward(Tensor::zeros([1, 3, 32, 32], &Default::default())).dims(), [1, 7]);
}

fn drop_path_acts_only_while_training<B: AutodiffBackend>() {
    use burn::module::AutodiffModule;
    let config = plain_config().with_drop_path(0.5);
    let model = load::<B>(&config, "vit_plain", Injector::none());
    let x = Tensor::<B, 4>::random([4, 3, 32, 32], burn::tensor::Distribution::Normal(0.0, 1.0), &Default::default());
    let runs: Vec<_> = (0..4).map(|_| model.forward(x.clone()).into_data()).collect();
    assert!(runs.windows(2).any(|pair| pair[0] != pair[1]), "stochastic depth never dropped a branch");
    let inference = model.valid();
    let x = x.inner();
    inference.forward(x.clone()).into_data().assert_eq(&inference.forward(x).into_data(), true);
}

backend_tests!(
    drop_path_acts_only_while_training,
    plain_vit_matches_timm,
    dinov2_style_vit_matches_timm_on_its_grid_and_a_resampled_one,
    fresh_adapters_leave_outputs_identical_and_merging_reproduces_trained_ones,
    qkv_slices_and_modules_form_their_own_groups,
    vit_b_attn_proj_shared_r16_has_24576_parameters_at_any_depth,
    checkpoint_problems_name_the_key,
    a_head_for_another_class_count_is_reinitialised,
);

#[test]
#[ignore = "needs the DINOv2 asset: run `cargo xtask assets vit` first"]
fn converted_dinov2_vits14_matches_onnxruntime() {
    type B = Autodiff<NdArray>;
    let path = wegeft_backend::asset_dir().join(wegeft_vision::assets::DINOV2_VITS14);
    let weights = WeightStore::safetensors(&[path]).expect("run `cargo xtask assets vit`");
    let model = VisionTransformer::<B>::load(&VitConfig::dinov2_small(0), weights, Injector::none(), &Default::default()).unwrap();
    let io = read_safetensors(&fixture("dinov2_onnx_io.safetensors")).unwrap();
    let features = model.forward_features(tensor::<B, 4>(&io, "input"));
    let error = relative_error(features, tensor(&io, "features"));
    println!("DINOv2 ViT-S/14 final LayerNorm output vs onnxruntime: relative error {error:e}");
    assert!(error <= 1e-3, "{error:e}");
}
