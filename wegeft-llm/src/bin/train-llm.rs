//! Fine-tunes a LLaMA-family model on instruction JSONL with WeGeFT or LoRA and reports
//! exact-match accuracy on held-out data before and after. Without arguments: SmolLM2-135M on
//! BIG-bench 2-digit arithmetic (`cargo xtask assets llm llm-data`).

use std::path::PathBuf;

use clap::Parser;
use wegeft_backend::{BackendArgs, BackendJob};
use wegeft_llm::assets::{asset_dir, smollm2_gguf};
use wegeft_llm::train::eval::Extract;
use wegeft_llm::train::{train_llm, LlmMethod, LlmTrainConfig};
use wegeft::train::Session;
use wegeft_llm::PromptStyle;
use wegeft_llm::Result;

#[derive(Parser, Clone)]
#[command(about = "Fine-tune a LLaMA-family decoder with WeGeFT or LoRA")]
struct Args {
    /// A .gguf file or an HF model directory [default: SmolLM2-135M-Instruct].
    #[arg(long)]
    model: Option<PathBuf>,
    /// Training JSONL (Alpaca or chat messages) [default: the arithmetic set's train.jsonl].
    #[arg(long)]
    train: Option<PathBuf>,
    /// Held-out JSONL [default: the arithmetic set's test.jsonl].
    #[arg(long)]
    test: Option<PathBuf>,
    /// The adapter to train.
    #[arg(long, default_value = "wegeft")]
    method: LlmMethod,
    #[arg(long)]
    rank: Option<usize>,
    #[arg(long)]
    alpha: Option<f64>,
    #[arg(long)]
    dropout: Option<f64>,
    /// Layer-name suffixes to adapt (comma-separated) [default: q,k,v,up,down projections].
    #[arg(long, value_delimiter = ',')]
    targets: Vec<String>,
    #[arg(long, default_value_t = 1)]
    epochs: usize,
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    #[arg(long, default_value_t = 128)]
    max_len: usize,
    /// How examples are rendered.
    #[arg(long, default_value = "auto")]
    template: PromptStyle,
    /// Use only the first N training examples.
    #[arg(long)]
    train_limit: Option<usize>,
    /// Held-out examples to evaluate.
    #[arg(long, default_value_t = 100)]
    eval_limit: usize,
    /// How answers are read out of a generation.
    #[arg(long, default_value = "last-number")]
    extract: Extract,
    /// Tokens generated per held-out question.
    #[arg(long, default_value_t = 12)]
    max_new_tokens: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Run directory.
    #[arg(long, default_value = "runs-llm/arithmetic")]
    out: PathBuf,
    /// Continue the run in `--out` from its last complete checkpoint (same data order and
    /// schedule as an uninterrupted run).
    #[arg(long)]
    resume: bool,
    /// Stop after this many epochs (the schedule still spans `--epochs`); `--resume` continues.
    #[arg(long)]
    stop_after: Option<usize>,
    /// Gradient checkpointing (burn's balanced strategy): recompute cheap operations in the
    /// backward pass instead of keeping their activations, for longer sequences.
    #[arg(long)]
    checkpointing: bool,
    #[command(flatten)]
    backend: BackendArgs,
}

struct Job(Args);

impl BackendJob for Job {
    type Output = Result<()>;

    fn run<B: burn::tensor::backend::AutodiffBackend>(self, device: B::Device, description: String) -> Result<()> {
        let args = self.0;
        println!("backend: {description}");
        let data = asset_dir().join("llm-data/arithmetic");
        let mut config = LlmTrainConfig::new(
            args.model.clone().unwrap_or_else(smollm2_gguf),
            args.train.clone().unwrap_or_else(|| data.join("train.jsonl")),
            args.test.clone().unwrap_or_else(|| data.join("test.jsonl")),
        )
        .with_method(args.method)
        .with_rank(args.rank)
        .with_alpha(args.alpha)
        .with_dropout(args.dropout)
        .with_epochs(args.epochs)
        .with_lr(args.lr)
        .with_batch_size(args.batch_size)
        .with_max_len(args.max_len)
        .with_template(args.template)
        .with_train_limit(args.train_limit)
        .with_eval_limit(args.eval_limit)
        .with_extract(args.extract)
        .with_max_new_tokens(args.max_new_tokens)
        .with_seed(args.seed);
        if !args.targets.is_empty() {
            config = config.with_targets(args.targets.clone());
        }
        let session = Session {
            resume: args.resume,
            stop_after: args.stop_after,
        };
        let Some(results) = train_llm::<B>(&config, &args.out, session, &device)? else {
            return Ok(());
        };
        println!(
            "exact match {:.1}% -> {:.1}% on {} held-out examples; {} adapter parameters; training {:.1} tokens/s over {} steps ({:.0} s); generation {:.1} tokens/s; peak memory {} MiB -> {}",
            results.before_accuracy,
            results.after_accuracy,
            results.eval_examples,
            results.adapter_params,
            results.train_tokens_per_second,
            results.train_steps,
            results.train_seconds,
            results.generation_tokens_per_second,
            results.peak_memory_mib.map_or("?".into(), |m| format!("{m:.0}")),
            args.out.display()
        );
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let backend = args.backend.clone();
    if args.checkpointing {
        backend.run_checkpointed("train-llm", Job(args))
    } else {
        backend.run("train-llm", Job(args))
    }
}
