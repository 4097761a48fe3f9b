//! Evaluates a trained run directory (`train-vit` output) on a split of its task, with the
//! adapter applied on the fly, merged into the weights, or both (they agree).

use std::path::PathBuf;

use clap::Parser;
use wegeft_backend::{BackendArgs, BackendJob};
use wegeft_vision::data::{ImageBatcher, Split};
use wegeft_vision::train::{evaluate, load_split, load_trained};
use wegeft_vision::Result;

#[derive(Parser, Clone)]
#[command(about = "Evaluate a fine-tuned ViT run directory on its task")]
struct Args {
    /// The run directory (holds config.json, head.safetensors, adapter/).
    run: PathBuf,
    /// The split [default: the run's evaluation split, test].
    #[arg(long)]
    split: Option<Split>,
    /// unmerged, merged or both.
    #[arg(long, default_value = "both", value_parser = ["unmerged", "merged", "both"])]
    mode: String,
    #[command(flatten)]
    backend: BackendArgs,
}

struct Job(Args);

impl BackendJob for Job {
    type Output = Result<()>;

    fn run<B: burn::tensor::backend::AutodiffBackend>(self, device: B::Device, description: String) -> Result<()> {
        let args = self.0;
        println!("backend: {description}");
        let (config, task, model) = load_trained::<B::InnerBackend>(&args.run, &device)?;
        let split = args.split.unwrap_or(config.eval_split);
        let data = load_split(&config, &task, split)?;
        let batcher = ImageBatcher::new(config.vit.normalization.clone(), config.image_size);
        let mut variants = Vec::new();
        if args.mode != "merged" {
            variants.push(("unmerged", model.clone()));
        }
        if args.mode != "unmerged" && model.adapters.is_some() {
            variants.push(("merged", model.merged()));
        }
        for (name, model) in variants {
            let result = evaluate(&model, data.clone(), batcher.clone(), config.batch_size, &device, name);
            println!(
                "{} {} {split} ({name}): accuracy {:.2}% on {} images, {:.1} img/s",
                task.name, config.method, result.accuracy, result.images, result.images_per_second
            );
        }
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    args.backend.clone().run("eval-vit", Job(args))
}
