//! Shared helpers of the integration tests.

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, ElementConversion, Tensor};
use wegeft::io::{read_safetensors, StoredTensor};


/// A fresh directory under the system temp dir, unique within and across test processes.
pub fn temp_dir(name: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("wegeft-test-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The golden fixtures; `WEGEFT_FIXTURES` points prebuilt test binaries elsewhere.
pub fn fixture_dir() -> PathBuf {
    std::env::var_os("WEGEFT_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"))
}

/// The golden tensors of one case of `reference.safetensors`.
pub struct Case(BTreeMap<String, StoredTensor>);

impl Case {
    pub fn load(case: &str) -> Self {
        let all = read_safetensors(&fixture_dir().join("reference.safetensors")).unwrap();
        let prefix = format!("{case}.");
        Self(
            all.into_iter()
                .filter_map(|(key, tensor)| key.strip_prefix(&prefix).map(|k| (k.to_string(), tensor)))
                .collect(),
        )
    }

    pub fn scalar(&self, name: &str) -> f64 {
        self.0[name].values[0] as f64
    }

    pub fn tensor<B: Backend, const D: usize>(&self, name: &str) -> Tensor<B, D> {
        let stored = &self.0[name];
        Tensor::<B, 1>::from_floats(stored.values.as_slice(), &Default::default())
            .reshape::<D, _>(<[usize; D]>::try_from(stored.shape.clone()).expect("rank"))
    }

    /// A burn `Linear` from the PyTorch-layout `weight{i}` / `bias{i}` (transposed to [d_in, d_out]).
    pub fn linear<B: Backend>(&self, i: usize) -> Linear<B> {
        Linear {
            weight: Param::from_tensor(self.tensor::<B, 2>(&format!("weight{i}")).transpose()),
            bias: Some(Param::from_tensor(self.tensor(&format!("bias{i}")))),
        }
    }
}

/// max|actual − expected| / max|expected| (absolute where `expected` is all zero).
pub fn relative_error<B: Backend, const D: usize>(actual: Tensor<B, D>, expected: Tensor<B, D>) -> f64 {
    assert_eq!(actual.dims(), expected.dims(), "shapes differ");
    let scale: f64 = expected.clone().abs().max().into_scalar().elem();
    let diff: f64 = (actual - expected).abs().max().into_scalar().elem();
    if scale > 0.0 { diff / scale } else { diff }
}

/// The relative error a result that goes through f32 matmuls may carry: 1e-5 where they run in
/// full fp32 (CPUs, WGPU), and TF32's 3e-3 on CUDA. burn 0.21's CUDA backend picks tensor-core
/// kernels that round f32 inputs to TF32 (10-bit mantissa) on sm80 and newer, with no setting to
/// keep fp32 (cubek-matmul's `adjust_dtypes`); an H200 gave 3.7e-4 to 9.8e-4 here.
pub fn matmul_tolerance<B: Backend>() -> f64 {
    match B::name(&Default::default()).contains("cuda") {
        true => 3e-3,
        false => 1e-5,
    }
}

pub fn assert_close<B: Backend, const D: usize>(what: &str, actual: Tensor<B, D>, expected: Tensor<B, D>, tolerance: f64) {
    let error = relative_error(actual, expected);
    assert!(error <= tolerance, "{what}: relative error {error:e} > {tolerance:e}");
}

pub fn random<B: Backend, const D: usize>(shape: [usize; D]) -> Tensor<B, D> {
    Tensor::random(shape, Distribution::Uniform(-1.0, 1.0), &Default::default())
}

/// A random pretrained-looking linear layer.
pub fn random_linear<B: Backend>(d_in: usize, d_out: usize) -> Linear<B> {
    Linear {
        weight: Param::from_tensor(random([d_in, d_out])),
        bias: Some(Param::from_tensor(random([d_out]))),
    }
}

use burn::module::{Module, ModuleMapper, ModuleVisitor};
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use wegeft::{Adapted, Adapter, AdapterBank, AdapterMethod, Injector, LoraAdapter, PeftLinear, Targets, WegeftPair};

/// A user's small model (not ours): three adapted blocks and a trainable head.
#[derive(Module, Debug)]
pub struct Tiny<B: Backend> {
    pub blocks: Vec<PeftLinear<B>>,
    pub head: Linear<B>,
    pub adapters: AdapterBank<B>,
}

impl<B: Backend> Adapted<B> for Tiny<B> {
    fn bank(&self) -> &AdapterBank<B> {
        &self.adapters
    }

    fn bank_mut(&mut self) -> &mut AdapterBank<B> {
        &mut self.adapters
    }
}

pub const TINY_WIDTH: usize = 12;
pub const TINY_CLASSES: usize = 5;

impl<B: Backend> Tiny<B> {
    /// Random blocks named `blocks.{i}.fc` (12 → 12), all targeted.
    pub fn new(method: impl Into<AdapterMethod>) -> Self {
        let blocks = (0..3).map(|_| random_linear(TINY_WIDTH, TINY_WIDTH)).collect();
        Self::with_layers(method, blocks, random_linear(TINY_WIDTH, TINY_CLASSES))
    }

    /// The model around given pretrained layers.
    pub fn with_layers(method: impl Into<AdapterMethod>, blocks: Vec<Linear<B>>, head: Linear<B>) -> Self {
        let mut injector = Injector::new(method, Targets::new().suffix("fc")).unwrap();
        let blocks = blocks
            .into_iter()
            .enumerate()
            .map(|(i, linear)| injector.linear(&format!("blocks.{i}.fc"), linear).unwrap())
            .collect();
        Self {
            blocks,
            head,
            adapters: injector.finish(&Default::default()).unwrap(),
        }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let hidden = self.blocks.iter().fold(x, |h, block| {
            burn::tensor::activation::gelu(block.forward(h, &self.adapters))
        });
        self.head.forward(hidden)
    }

    /// The same model with every adapted layer merged into a plain linear layer.
    pub fn merged_forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        self.clone().merged().forward(x)
    }

    /// Gives every adapter tensor random values, as if trained: matrices within ±0.3, vectors
    /// (DoRA's magnitudes, VeRA's scales) within ±3, so every method visibly changes the output.
    pub fn randomize_adapters(mut self) -> Self {
        struct Randomize;
        impl<B: Backend> ModuleMapper<B> for Randomize {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
                let scale = if D == 1 { 3.0 } else { 0.3 };
                param.map(|t| random(t.dims()).mul_scalar(scale).set_require_grad(t.is_require_grad()))
            }
        }
        self.adapters.adapters = std::mem::take(&mut self.adapters.adapters).map(&mut Randomize);
        self
    }
}

/// The bank's WeGeFT pairs, for tests that reach into the parameters.
pub fn pairs_mut<B: Backend>(bank: &mut AdapterBank<B>) -> Vec<&mut WegeftPair<B>> {
    bank.adapters.iter_mut().filter_map(|adapter| match adapter {
        Adapter::Wegeft(pair) => Some(pair),
        _ => None,
    }).collect()
}

/// The bank's WeGeFT pairs, read-only.
pub fn pairs<B: Backend>(bank: &AdapterBank<B>) -> Vec<&WegeftPair<B>> {
    bank.adapters.iter().filter_map(|adapter| match adapter {
        Adapter::Wegeft(pair) => Some(pair),
        _ => None,
    }).collect()
}

/// The bank's LoRA adapters, for tests that reach into the parameters.
pub fn loras_mut<B: Backend>(bank: &mut AdapterBank<B>) -> Vec<&mut LoraAdapter<B>> {
    bank.adapters.iter_mut().filter_map(|adapter| match adapter {
        Adapter::Lora(lora) => Some(lora),
        _ => None,
    }).collect()
}

/// Every adapter tensor of the bank (shared frozen tensors excluded), flattened, in group order.
pub fn adapter_tensors<B: Backend>(bank: &AdapterBank<B>) -> Vec<Tensor<B, 1>> {
    struct Collect<B: Backend>(Vec<Tensor<B, 1>>);
    impl<B: Backend> ModuleVisitor<B> for Collect<B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.push(param.val().reshape([-1]));
        }
    }
    let mut collect = Collect(Vec::new());
    bank.adapters.visit(&mut collect);
    collect.0
}

/// The gradient of every adapter tensor (shared frozen tensors excluded), flattened, in group order.
pub fn adapter_grads<B: AutodiffBackend>(bank: &AdapterBank<B>, grads: &GradientsParams) -> Vec<Tensor<B::InnerBackend, 1>> {
    struct Collect<'a, B: AutodiffBackend>(&'a GradientsParams, Vec<Tensor<B::InnerBackend, 1>>);
    impl<B: AutodiffBackend> ModuleVisitor<B> for Collect<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let grad = self.0.get::<B::InnerBackend, D>(param.id).expect("the adapter has a gradient");
            self.1.push(grad.reshape([-1]));
        }
    }
    let mut collect = Collect::<B>(grads, Vec::new());
    bank.adapters.visit(&mut collect);
    collect.1
}
