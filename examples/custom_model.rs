//! A burn user's own model gets WeGeFT on two of its linear layers, trains a few steps,
//! saves the adapter, merges it, and reloads it.
//!
//! `cargo run -p wegeft-examples --bin custom-model [-- --backend wgpu]` (WGPU and CUDA need
//! `--features wgpu` / `--features cuda`).

use burn::module::{AutodiffModule, Module};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{activation, Distribution, ElementConversion, Int, Tensor};
use clap::Parser;
use wegeft::{Adapted, AdapterBank, Injector, ParamReport, PeftLinear, Targets, WegeftConfig};
use wegeft_backend::{BackendArgs, BackendJob};

/// The user's model: an MLP encoder (to be adapted) and a classifier head (trained in full).
#[derive(Module, Debug)]
struct Classifier<B: Backend> {
    fc1: PeftLinear<B>,
    fc2: PeftLinear<B>,
    head: Linear<B>,
    adapters: AdapterBank<B>,
}

/// What merging, exporting and parameter counts need to know: where the bank is.
impl<B: Backend> Adapted<B> for Classifier<B> {
    fn bank(&self) -> &AdapterBank<B> {
        &self.adapters
    }

    fn bank_mut(&mut self) -> &mut AdapterBank<B> {
        &mut self.adapters
    }
}

impl<B: Backend> Classifier<B> {
    /// Wraps "pretrained" layers; the injector decides which of them get an adapter.
    fn new(fc1: Linear<B>, fc2: Linear<B>, head: Linear<B>, device: &B::Device) -> wegeft::Result<Self> {
        let mut injector = Injector::new(WegeftConfig::new(4), Targets::new().suffix("fc1").suffix("fc2"))?;
        let fc1 = injector.linear("encoder.fc1", fc1)?;
        let fc2 = injector.linear("encoder.fc2", fc2)?;
        Ok(Self { fc1, fc2, head, adapters: injector.finish(device)? })
    }

    fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let h = activation::gelu(self.fc1.forward(x, &self.adapters));
        let h = activation::gelu(self.fc2.forward(h, &self.adapters));
        self.head.forward(h)
    }
}

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    backend: BackendArgs,
    /// Optimizer steps.
    #[arg(long, default_value_t = 30)]
    steps: usize,
}

impl BackendJob for Args {
    type Output = wegeft::Result<()>;

    fn run<Train: AutodiffBackend>(self, device: Train::Device, _description: String) -> wegeft::Result<()> {
        Train::seed(&device, 7);
        let pretrained = |d_in, d_out| LinearConfig::new(d_in, d_out).init::<Train>(&device);
        let mut model = Classifier::new(pretrained(16, 32), pretrained(32, 32), pretrained(32, 3), &device)?;
        print!("{}", model.adapters.plan().expect("two layers are targeted"));
        println!("parameters: {}", ParamReport::of(&model));

        // A toy task: the class is the argmax of three fixed projections of the input.
        let x = Tensor::<Train, 2>::random([256, 16], Distribution::Normal(0.0, 1.0), &device);
        let labels: Tensor<Train, 1, Int> = x.clone().slice([0..256, 0..3]).argmax(1).squeeze_dim(1);
        let loss_fn = CrossEntropyLossConfig::new().init(&device);
        let mut optimizer = AdamWConfig::new().init();
        for step in 1..=self.steps {
            let loss = loss_fn.forward(model.forward(x.clone()), labels.clone());
            if step == 1 || step % 10 == 0 || step == self.steps {
                println!("step {step:>2}: loss {:.4}", loss.clone().into_scalar().elem::<f32>());
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(1e-2, model, grads);
        }

        let dir = std::env::temp_dir().join("wegeft-custom-model-adapter");
        wegeft::save_adapter(&model.adapters, &dir)?;
        println!("adapter saved to {}", dir.display());

        let model = model.valid();
        let probe = x.inner().slice([0..8, 0..16]);
        let gap = |a: Tensor<Train::InnerBackend, 2>, b: Tensor<Train::InnerBackend, 2>| (a - b).abs().max().into_scalar().elem::<f32>();
        // Inference without adapter overhead: every adapted layer folded into its frozen weight.
        let merged = model.clone().merged();
        println!("merged vs unmerged: max |difference| = {:e}", gap(merged.forward(probe.clone()), model.forward(probe.clone())));

        // A fresh adapter (new random init) on the same frozen layers, filled from the saved files.
        let fresh = Classifier::new(model.fc1.base.clone(), model.fc2.base.clone(), model.head.clone(), &device)?;
        let reloaded = Classifier { adapters: wegeft::load_adapter(fresh.adapters, &dir)?, ..fresh };
        println!("reloaded vs trained: max |difference| = {:e}", gap(reloaded.forward(probe.clone()), model.forward(probe)));
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    args.backend.clone().run("custom-model", false, args)
}
