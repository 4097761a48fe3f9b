//! Evaluates a trained run directory (`train-vit` output) on a split of its task, with the
//! adapter applied on the fly, merged into the weights, or both (they agree).

use std::path::PathBuf;

use burn::tensor::backend::AutodiffBackend;
use clap::Parser;
use wegeft::Adapted;
use wegeft_backend::{BackendArgs, BackendJob};
use wegeft_vision::data::{ImageBatcher, Split};
use wegeft_vision::train::{evaluate, load_split, load_trained};
use wegeft_vision::Result;

/// Which form of the trained model to evaluate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    /// The adapter applied on the fly.
    Unmerged,
    /// The adapter folded into the weights.
    Merged,
    /// Both, one after the other.
    Both,
}

#[derive(Parser, Clone)]
#[command(about = "Evaluate a fine-tuned ViT run directory on its task")]
struct Args {
    /// The run directory (holds config.json, head.safetensors, adapter/).
    run: PathBuf,
    /// The split [default: the run's evaluation split, test].
    #[arg(long, value_enum)]
    split: Option<Split>,
    #[arg(long, value_enum, default_value_t = Mode::Both)]
    mode: Mode,
    #[command(flatten)]
    backend: BackendArgs,
}

impl BackendJob for Args {
    type Output = Result<()>;

    fn run<B: AutodiffBackend>(self, device: B::Device, _description: String) -> Result<()> {
        let (config, task, model) = load_trained::<B::InnerBackend>(&self.run, &device)?;
        let split = self.split.unwrap_or(config.eval_split);
        let data = load_split(&config, &task, split)?;
        let batcher = ImageBatcher::new(config.vit.normalization.clone(), config.image_size);
        let mut variants = Vec::new();
        if self.mode != Mode::Merged {
            variants.push(("unmerged", model.clone()));
        }
        if self.mode != Mode::Unmerged && model.adapters.plan().is_some() {
            variants.push(("merged", model.merged()));
        }
        for (name, model) in variants {
            let result = evaluate(&model, data.clone(), batcher.clone(), config.batch_size, &device, name)?;
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
    args.backend.clone().run("eval-vit", false, args)
}
