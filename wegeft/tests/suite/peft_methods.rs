//! DoRA and VeRA against HF PEFT itself (`fixtures/make_peft_fixtures.py`): the adapter
//! directories PEFT saved load strictly; the output, the gradient of every trainable tensor and
//! the merged weights match PEFT's; and what we save holds PEFT's keys, shapes, values and
//! config fields.

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use serde_json::Value;
use wegeft::io::{read_safetensors, write_safetensors, StoredTensor, WeightStore};
use wegeft::{Adapted, AdapterBank, AdapterFile, Injector, PeftError, PeftLinear, Targets};

use crate::common::{assert_close, fixture_dir, matmul_tolerance, temp_dir};

const SIZES: [usize; 4] = [12, 9, 14, 7];

#[derive(Module, Debug)]
struct Stack<B: Backend> {
    layers: Vec<PeftLinear<B>>,
    adapters: AdapterBank<B>,
}

impl<B: Backend> Adapted<B> for Stack<B> {
    fn bank(&self) -> &AdapterBank<B> {
        &self.adapters
    }

    fn bank_mut(&mut self) -> &mut AdapterBank<B> {
        &mut self.adapters
    }
}

impl<B: Backend> Stack<B> {
    /// The fixture's base layers, offered to `injector`, with the bank it builds.
    fn new(mut injector: Injector) -> wegeft::Result<Self> {
        let device = Default::default();
        let mut store = WeightStore::safetensors(&[dir().join("base.safetensors")])?;
        let layers = (0..3)
            .map(|i| store.root().peft_linear(&mut injector, &format!("layers.{i}"), SIZES[i], SIZES[i + 1], true, &device))
            .collect::<wegeft::Result<_>>()?;
        store.finish()?;
        Ok(Self { layers, adapters: injector.finish(&device)? })
    }

    fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.layers.iter().fold(x, |h, layer| layer.forward(h, &self.adapters))
    }
}

fn dir() -> PathBuf {
    fixture_dir().join("peft_methods")
}

fn tensor<B: Backend, const D: usize>(stored: &StoredTensor) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(stored.values.clone(), stored.shape.clone()), &Default::default())
}

/// Any stored tensor as a vector.
fn flat<B: Backend>(stored: &StoredTensor) -> Tensor<B, 1> {
    Tensor::from_floats(stored.values.as_slice(), &Default::default())
}

/// The stack with PEFT's `{name}_adapter` loaded, built for the method its config names.
fn peft_stack<B: Backend>(name: &str) -> Stack<B> {
    let file = AdapterFile::read(dir().join(format!("{name}_adapter"))).unwrap();
    let injector = Injector::new(file.description.method().clone(), Targets::new().regex(r"layers\.\d+")).unwrap();
    let mut stack = Stack::<B>::new(injector).unwrap();
    stack.adapters = file.apply(std::mem::take(&mut stack.adapters)).unwrap();
    stack
}

/// Each bank parameter replaced by its gradient (zero where it has none).
struct ToGradients<'a, B: AutodiffBackend>(&'a B::Gradients);

impl<B: AutodiffBackend> ModuleMapper<B> for ToGradients<'_, B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        param.map(|tensor| match tensor.grad(self.0) {
            Some(grad) => Tensor::from_inner(grad),
            None => tensor.zeros_like(),
        })
    }
}

fn matches_peft<B: AutodiffBackend>(name: &str) {
    let reference = read_safetensors(&dir().join(format!("{name}.safetensors"))).unwrap();
    let stack = peft_stack::<B>(name);
    let tolerance = matmul_tolerance::<B>();

    let x = tensor::<B, 2>(&reference["x"]).require_grad();
    let y = stack.forward(x.clone());
    assert_close("output", y.clone(), tensor(&reference["y"]), tolerance);
    let grads = (y * tensor::<B, 2>(&reference["g"])).sum().backward();
    assert_close("grad x", x.grad(&grads).unwrap(), tensor(&reference["grad.x"]), tolerance);

    // Saving a bank of gradients names each one as the adapter file names its tensor.
    let gradients = stack.adapters.clone().map(&mut ToGradients::<B>(&grads));
    let out = temp_dir(&format!("{name}-grads"));
    wegeft::save_adapter(&gradients, &out).unwrap();
    let ours = read_safetensors(&out.join(wegeft::io::WEIGHTS_FILE)).unwrap();
    let expected: Vec<_> = reference.iter().filter_map(|(key, grad)| Some((key.strip_prefix("grad.base_model")?, grad))).collect();
    assert!(!expected.is_empty());
    for (key, grad) in expected {
        let key = format!("base_model{key}");
        assert_eq!(ours[&key].shape, grad.shape, "{key}");
        assert_close(&format!("grad {key}"), flat::<B>(&ours[&key]), flat(grad), tolerance);
    }

    let merged = stack.merged();
    for (i, layer) in merged.layers.iter().enumerate() {
        let expected = tensor::<B, 2>(&reference[&format!("merged.layers.{i}.weight")]).transpose();
        assert_close(&format!("merged layers.{i}"), layer.base.weight.val(), expected, tolerance);
    }
    std::fs::remove_dir_all(out).unwrap();
}

fn dora_matches_peft<B: AutodiffBackend>() {
    matches_peft::<B>("dora");
}

fn vera_matches_peft<B: AutodiffBackend>() {
    matches_peft::<B>("vera");
}

/// Saving a PEFT-loaded adapter writes PEFT's tensors back unchanged, and the config fields PEFT
/// reads with PEFT's values.
fn saved_adapters_are_what_peft_saved<B: Backend>(name: &str) {
    let stack = peft_stack::<B>(name);
    let out = temp_dir(&format!("{name}-saved"));
    wegeft::save_adapter(&stack.adapters, &out).unwrap();
    let peft_dir = dir().join(format!("{name}_adapter"));
    let theirs = read_safetensors(&peft_dir.join(wegeft::io::WEIGHTS_FILE)).unwrap();
    let ours = read_safetensors(&out.join(wegeft::io::WEIGHTS_FILE)).unwrap();
    assert_eq!(ours.keys().collect::<Vec<_>>(), theirs.keys().collect::<Vec<_>>());
    for (key, tensor) in &theirs {
        assert_eq!(ours[key].shape, tensor.shape, "{key}");
        assert_eq!(ours[key].values, tensor.values, "{key}");
    }
    let config = |path: PathBuf| -> serde_json::Map<String, Value> { serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap() };
    let (ours, theirs) = (config(out.join(wegeft::io::CONFIG_FILE)), config(peft_dir.join(wegeft::io::CONFIG_FILE)));
    let shared: Vec<_> = theirs.keys().filter(|key| ours.contains_key(*key) && *key != "target_modules").collect();
    assert!(shared.len() >= 6, "too few PEFT fields written: {shared:?}");
    for key in shared {
        let same = match (&ours[key], &theirs[key]) {
            (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
            (a, b) => a == b,
        };
        assert!(same, "`{key}`: we write {}, PEFT wrote {}", ours[key], theirs[key]);
    }
    std::fs::remove_dir_all(out).unwrap();
}

#[test]
fn saved_dora_and_vera_adapters_are_what_peft_saved() {
    saved_adapters_are_what_peft_saved::<burn::backend::NdArray>("dora");
    saved_adapters_are_what_peft_saved::<burn::backend::NdArray>("vera");
}

/// Fresh DoRA and VeRA adapters leave the layers as they were.
fn fresh_dora_and_vera_start_at_the_base_model<B: AutodiffBackend>() {
    let targets = || Targets::new().regex(r"layers\.\d+");
    let plain = Stack::<B>::new(Injector::none()).unwrap();
    let x = tensor::<B, 2>(&read_safetensors(&dir().join("dora.safetensors")).unwrap()["x"]);
    for method in [wegeft::DoraConfig::new(3).with_alpha(Some(7.0)).into(), wegeft::AdapterMethod::from(wegeft::VeraConfig::new(4))] {
        let stack = Stack::<B>::new(Injector::new(method, targets()).unwrap()).unwrap();
        assert_close("fresh adapter", stack.forward(x.clone()), plain.forward(x.clone()), matmul_tolerance::<B>());
    }
}

/// An adapter file with a tensor missing, misshapen or unknown is refused, naming the key; so is
/// a PEFT VeRA adapter saved without its projections, and DoRA offered by shape alone.
#[test]
fn broken_dora_and_vera_files_are_refused_naming_the_key() {
    type B = burn::backend::NdArray;
    let copy = |name: &str, edit: &dyn Fn(&mut BTreeMap<String, StoredTensor>, &mut serde_json::Map<String, Value>)| {
        let from = dir().join(format!("{name}_adapter"));
        let to = temp_dir(&format!("{name}-broken"));
        std::fs::create_dir_all(&to).unwrap();
        let mut tensors = read_safetensors(&from.join(wegeft::io::WEIGHTS_FILE)).unwrap();
        let mut config = serde_json::from_str(&std::fs::read_to_string(from.join(wegeft::io::CONFIG_FILE)).unwrap()).unwrap();
        edit(&mut tensors, &mut config);
        write_safetensors(&to.join(wegeft::io::WEIGHTS_FILE), &tensors).unwrap();
        std::fs::write(to.join(wegeft::io::CONFIG_FILE), serde_json::to_string(&config).unwrap()).unwrap();
        let result = AdapterFile::read(&to).and_then(|file| {
            let injector = Injector::new(file.description.method().clone(), Targets::new().regex(r"layers\.\d+"))?;
            let mut stack = Stack::<B>::new(injector)?;
            file.apply(std::mem::take(&mut stack.adapters))
        });
        std::fs::remove_dir_all(&to).unwrap();
        result.unwrap_err()
    };
    let magnitude = "base_model.model.layers.1.lora_magnitude_vector";
    match copy("dora", &|tensors, _| drop(tensors.remove(magnitude))) {
        PeftError::MissingTensor { key, .. } => assert_eq!(key, magnitude),
        other => panic!("unexpected error: {other}"),
    }
    match copy("dora", &|tensors, _| tensors.get_mut(magnitude).unwrap().shape = vec![2, 7]) {
        PeftError::ShapeMismatch { key, expected, .. } => assert_eq!((key.as_str(), expected), (magnitude, vec![14])),
        other => panic!("unexpected error: {other}"),
    }
    match copy("vera", &|tensors, _| drop(tensors.remove("base_model.vera_A"))) {
        PeftError::MissingTensor { key, .. } => assert_eq!(key, "base_model.vera_A"),
        other => panic!("unexpected error: {other}"),
    }
    match copy("vera", &|tensors, _| drop(tensors.insert("base_model.vera_C".into(), tensors["base_model.vera_A"].clone()))) {
        PeftError::UnexpectedTensor { key, .. } => assert_eq!(key, "base_model.vera_C"),
        other => panic!("unexpected error: {other}"),
    }
    let error = copy("vera", &|_, config| drop(config.insert("save_projection".into(), Value::Bool(false))));
    assert!(error.to_string().contains("save_projection"), "{error}");
    let error = copy("dora", &|_, config| drop(config.insert("use_rslora".into(), Value::Bool(true))));
    assert!(error.to_string().contains("use_rslora"), "{error}");

    let mut injector = Injector::new(wegeft::DoraConfig::new(2), Targets::new().suffix("fc")).unwrap();
    injector.offer("fc", 8, 4).unwrap();
    let error = injector.finish::<B>(&Default::default()).unwrap_err();
    assert!(error.to_string().contains("Injector::linear"), "{error}");
}

backend_tests!(dora_matches_peft, vera_matches_peft, fresh_dora_and_vera_start_at_the_base_model);
