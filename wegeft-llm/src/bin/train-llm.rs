//! Fine-tunes a decoder (LLaMA, Mistral, Qwen2/3, Gemma 3) on instruction JSONL with a PEFT method and reports
//! exact-match accuracy on held-out data before and after. Without arguments: SmolLM2-135M on
//! 2-digit arithmetic in BIG-bench's wording (`cargo xtask assets llm llm-data`).

use std::path::PathBuf;

use burn::tensor::backend::AutodiffBackend;
use clap::Parser;
use wegeft_backend::{asset_dir, BackendArgs, BackendJob, RunArgs};
use wegeft_llm::assets::{smollm2_gguf, ARITHMETIC};
use wegeft_llm::train::eval::Extract;
use wegeft::MethodName;
use wegeft_llm::train::{train_llm, LlmTrainConfig};
use wegeft_llm::{BasePrecision, PromptStyle, Result};

/// What `--checkpointing` recomputes in the backward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Checkpointing {
    /// Each decoder layer, from its saved input.
    Layers,
    /// burn's balanced strategy: memory-bound operations.
    Ops,
}

#[derive(Parser, Clone)]
#[command(about = "Fine-tune a decoder (LLaMA, Mistral, Qwen2, Qwen3, Gemma 3) with WeGeFT, LoRA, DoRA or VeRA")]
struct Args {
    /// A .gguf file, an HF model directory, or `smollm2` / `gemma3` for the fetched assets
    /// [default: smollm2, SmolLM2-135M-Instruct].
    #[arg(long, value_parser = wegeft_llm::assets::model_path)]
    model: Option<PathBuf>,
    /// Training JSONL (Alpaca or chat messages) [default: the arithmetic set's train.jsonl].
    #[arg(long, value_parser = wegeft_backend::parse::utf8_path)]
    train: Option<PathBuf>,
    /// Held-out JSONL [default: the arithmetic set's test.jsonl].
    #[arg(long, value_parser = wegeft_backend::parse::utf8_path)]
    test: Option<PathBuf>,
    /// The adapter to train [default: wegeft].
    #[arg(long, value_enum)]
    method: Option<MethodName>,
    /// Rank [default: WeGeFT 64, LoRA and DoRA 16, VeRA 1024].
    #[arg(long, value_parser = wegeft_backend::parse::at_least_one)]
    rank: Option<usize>,
    /// α [default: 2 × rank].
    #[arg(long, value_parser = wegeft_backend::parse::positive)]
    alpha: Option<f64>,
    /// Dropout [default: WeGeFT 0.1 on W, the others 0.05 on x].
    #[arg(long, value_parser = wegeft_backend::parse::rate)]
    dropout: Option<f64>,
    /// Layer-name suffixes to adapt (comma-separated) [default: q,k,v,up,down projections].
    #[arg(long, value_delimiter = ',')]
    targets: Vec<String>,
    /// [default: 1]
    #[arg(long, value_parser = wegeft_backend::parse::at_least_one)]
    epochs: Option<usize>,
    /// [default: 1e-3]
    #[arg(long, value_parser = wegeft_backend::parse::positive)]
    lr: Option<f64>,
    /// [default: 8]
    #[arg(long, value_parser = wegeft_backend::parse::at_least_one)]
    batch_size: Option<usize>,
    /// Longest tokenised example; longer ones are cut [default: 128].
    #[arg(long, value_parser = wegeft_backend::parse::at_least_one)]
    max_len: Option<usize>,
    /// How examples are rendered [default: auto].
    #[arg(long, value_enum)]
    template: Option<PromptStyle>,
    /// Use only the first N training examples.
    #[arg(long, value_parser = wegeft_backend::parse::at_least_one)]
    train_limit: Option<usize>,
    /// Held-out examples to evaluate [default: 100].
    #[arg(long, value_parser = wegeft_backend::parse::at_least_one)]
    eval_limit: Option<usize>,
    /// How answers are read out of a generation [default: last-number].
    #[arg(long, value_enum)]
    extract: Option<Extract>,
    /// Tokens generated per held-out question [default: 12].
    #[arg(long, value_parser = wegeft_backend::parse::at_least_one)]
    max_new_tokens: Option<usize>,
    /// [default: 42]
    #[arg(long)]
    seed: Option<u64>,
    /// How the frozen base is held: half precision halves its memory and runs its matmuls on a
    /// GPU's half-precision units; `stored` keeps a GGUF's quantised projections in their blocks
    /// (CPU backends decode them tile by tile). The adapter and the optimizer stay f32 (f16 scales
    /// the loss).
    #[arg(long = "base-precision", visible_alias = "precision", value_enum, default_value_t = BasePrecision::F32)]
    precision: BasePrecision,
    /// `--out` is the run directory [default: runs-llm/arithmetic].
    #[command(flatten)]
    run: RunArgs,
    /// Gradient checkpointing, for longer sequences and larger batches: `layers` (the flag alone)
    /// keeps each decoder layer's input only and recomputes one layer at a time in the backward
    /// pass (one more forward; Hugging Face's `gradient_checkpointing`); `ops` is burn's balanced
    /// strategy, which recomputes memory-bound operations only (little memory saved).
    #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "layers")]
    checkpointing: Option<Checkpointing>,
    #[command(flatten)]
    backend: BackendArgs,
}

impl Args {
    /// The run's configuration: [`LlmTrainConfig`]'s defaults under the explicit flags.
    fn config(&self) -> LlmTrainConfig {
        let data = asset_dir().join(ARITHMETIC);
        let base = LlmTrainConfig::new(
            self.model.clone().unwrap_or_else(smollm2_gguf),
            self.train.clone().unwrap_or_else(|| data.join("train.jsonl")),
            self.test.clone().unwrap_or_else(|| data.join("test.jsonl")),
        );
        LlmTrainConfig {
            method: self.method.unwrap_or(base.method),
            rank: self.rank.or(base.rank),
            alpha: self.alpha.or(base.alpha),
            dropout: self.dropout.or(base.dropout),
            targets: if self.targets.is_empty() { base.targets.clone() } else { self.targets.clone() },
            epochs: self.epochs.unwrap_or(base.epochs),
            lr: self.lr.unwrap_or(base.lr),
            batch_size: self.batch_size.unwrap_or(base.batch_size),
            max_len: self.max_len.unwrap_or(base.max_len),
            template: self.template.unwrap_or(base.template),
            train_limit: self.train_limit.or(base.train_limit),
            eval_limit: self.eval_limit.unwrap_or(base.eval_limit),
            extract: self.extract.unwrap_or(base.extract),
            max_new_tokens: self.max_new_tokens.unwrap_or(base.max_new_tokens),
            seed: self.seed.unwrap_or(base.seed),
            precision: (self.precision != BasePrecision::F32).then_some(self.precision),
            recompute_layers: self.checkpointing == Some(Checkpointing::Layers),
            ..base
        }
    }
}

impl BackendJob for Args {
    type Output = Result<()>;
    const DATA_PARALLEL: bool = true;

    fn run<B: AutodiffBackend>(self, device: B::Device, _description: String) -> Result<()> {
        let out = self.run.out_or("runs-llm/arithmetic");
        let devices = wegeft_backend::devices_like(&device, &self.backend.device_indices());
        let Some(results) = train_llm::<B>(&self.config(), &out, self.run.session(), &devices)? else {
            return Ok(());
        };
        println!(
            "exact match {:.1}% -> {:.1}% on {} held-out examples; {} adapter parameters; training {:.1} tokens/s over {} steps ({:.0} s); generation {:.1} tokens/s; peak memory {} MiB -> {}",
            results.before_accuracy,
            results.after_accuracy,
            results.eval_examples,
            results.params.adapter,
            results.train_tokens_per_second,
            results.train_steps,
            results.train_seconds,
            results.generation_tokens_per_second,
            results.peak_memory_mib.map_or("?".into(), |m| format!("{m:.0}")),
            out.display()
        );
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    args.backend.clone().run("train-llm", args.checkpointing == Some(Checkpointing::Ops), args)
}
