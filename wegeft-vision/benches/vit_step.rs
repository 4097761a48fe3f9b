//! One ViT training step, timed as `scripts/torch_reference_bench.py vit-step` times PyTorch's:
//! forward, cross-entropy, backward and the optimizer step of `train-vit` (selective-decay AdamW),
//! on random images (a step's cost does not depend on the values). Prints one JSON line last.
//!
//! `cargo bench -p wegeft-vision --bench vit_step -- [--backend B] [--threads T] --size 112 --method wegeft`

use burn::optim::Optimizer;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use clap::Parser;
use wegeft::train::peak_memory_mib;
use wegeft::{MethodName, ParamReport};
use wegeft_backend::bench::{time_steps, StepArgs};
use wegeft_backend::{BackendArgs, BackendJob};
use wegeft_vision::data::{ImageBatch, TaskGroup, TaskInfo};
use wegeft::train::{gradients, LossScaler, SelectiveDecayAdamW};
use wegeft::Precision;
use wegeft_vision::train::{build_model, Method, TrainConfig};
use wegeft_vision::VitConfig;

#[derive(Parser, Clone)]
struct Args {
    #[command(flatten)]
    backend: BackendArgs,
    /// Square image side.
    #[arg(long, default_value_t = 112)]
    size: usize,
    /// Images per step.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// What trains besides the head.
    #[arg(long, value_enum, default_value_t = Method::Adapter(MethodName::Wegeft))]
    method: Method,
    #[command(flatten)]
    timing: StepArgs,
    /// Classes of the head.
    #[arg(long, default_value_t = 10)]
    classes: usize,
    /// Precision of the frozen backbone's linear layers, as `train-vit --precision`.
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    precision: Precision,
}

impl BackendJob for Args {
    type Output = wegeft_vision::Result<()>;

    fn run<B: AutodiffBackend>(self, device: B::Device, description: String) -> Self::Output {
        // ViT-S/16 as timm's `vit_small_patch16_224`, random weights, no stochastic depth.
        let config = TrainConfig::new("unused".into(), VitConfig::small(self.classes))
            .with_method(self.method)
            .with_image_size(self.size)
            .with_drop_path(0.0)
            .with_precision(Some(self.precision));
        let task = TaskInfo { name: "bench".into(), group: TaskGroup::Natural, classes: self.classes };
        let mut model = build_model::<B>(&config, &task, &device)?;
        model.loss_scaler = LossScaler::for_run(self.precision, 1)?;
        let mut model = Some(model);
        let params = ParamReport::of(model.as_ref().expect("built"));
        eprintln!("vit-step: ViT-S/16 {}px x {}, {}, {} blocks: {params}; backend: {description}", self.size, self.batch, self.method, self.precision);

        let images = Tensor::<B, 4>::random([self.batch, 3, self.size, self.size], Distribution::Normal(0.0, 1.0), &device);
        let labels: Vec<i64> = (0..self.batch).map(|i| (i % self.classes) as i64).collect();
        let targets = Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [self.batch]), &device);
        let mut optimizer = SelectiveDecayAdamW::new(1e-4);
        let (median, times) = time_steps(&self.timing, || {
            let current = model.take().expect("the model is put back after each step");
            let output = current.classify(ImageBatch { images: images.clone(), targets: targets.clone() });
            let grads = gradients(output.loss, &current, current.loss_scaler.as_ref());
            let next = optimizer.step(1e-3, current, grads);
            // Asynchronous backends are timed to completion.
            B::sync(&device).expect("device sync");
            model = Some(next);
        });
        let report = serde_json::json!({
            "bench": "vit-step", "framework": "burn", "backend": description, "size": self.size,
            "batch": self.batch, "method": self.method.to_string(), "precision": self.precision.to_string(), "median_s": median, "steps_s": times,
            "trainable_params": params.trainable(), "peak_rss_mb": peak_memory_mib(),
        });
        println!("{report}");
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    args.backend.clone().run("vit-step", false, args)
}
