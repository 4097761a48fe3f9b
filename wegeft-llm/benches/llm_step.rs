//! One LLM fine-tuning step, timed as `scripts/torch_reference_bench.py llm-step` times PyTorch's:
//! forward, next-token cross-entropy on every position, backward and the optimizer step of
//! `train-llm`, on random token ids. Prints one JSON line last, with tokens per second.
//!
//! `cargo bench -p wegeft-llm --bench llm_step -- [--backend B] [--threads T] --method wegeft`
//! (`--random smollm2-135m` where the GGUF is not at hand)

use std::path::PathBuf;

use burn::data::dataloader::batcher::Batcher;
use burn::optim::Optimizer;
use burn::tensor::backend::AutodiffBackend;
use clap::Parser;
use burn::train::TrainStep;
use wegeft::train::{LossScaler, SelectiveDecayAdamW};
use wegeft::train::SplitMix64;
use wegeft::train::peak_memory_mib;
use wegeft_backend::bench::{time_steps, StepArgs};
use wegeft_backend::{BackendArgs, BackendJob};
use wegeft_llm::train::data::Tokenized;
use wegeft_llm::train::step::{CausalLm, LmBatcher};
use wegeft::MethodName;
use wegeft_llm::train::LlmTrainConfig;
use wegeft_llm::{BasePrecision, Decoder, NamedShape};
use wegeft::io::WeightStore;

#[derive(Parser, Clone)]
struct Args {
    #[command(flatten)]
    backend: BackendArgs,
    /// A .gguf file, an HF directory, or `smollm2` / `gemma3` [default: smollm2, from `cargo xtask assets llm`].
    #[arg(long, value_parser = wegeft_llm::assets::model_path)]
    model: Option<PathBuf>,
    /// Random weights of this published shape instead of a file (same step cost).
    #[arg(long, value_enum, conflicts_with = "model")]
    random: Option<NamedShape>,
    /// How the frozen base is held, as `train-llm --base-precision`.
    #[arg(long = "base-precision", visible_alias = "precision", value_enum, default_value_t = BasePrecision::F32)]
    precision: BasePrecision,
    /// The adapter, with `train-llm`'s defaults for it (WeGeFT r 64, LoRA r 16; q,k,v,up,down).
    #[arg(long, value_enum, default_value_t = MethodName::Wegeft)]
    method: MethodName,
    /// Dropout [default: the method's, as in `train-llm`].
    #[arg(long)]
    dropout: Option<f64>,
    /// Sequences per step.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Tokens per sequence.
    #[arg(long, default_value_t = 64)]
    seq: usize,
    /// Layer-wise gradient checkpointing, as `train-llm --checkpointing`.
    #[arg(long = "checkpointing")]
    recompute_layers: bool,
    #[command(flatten)]
    timing: StepArgs,
}

impl BackendJob for Args {
    type Output = wegeft_llm::Result<()>;

    fn run<B: AutodiffBackend>(self, device: B::Device, description: String) -> Self::Output {
        let path = self.model.clone().unwrap_or_else(wegeft_llm::assets::smollm2_gguf);
        let config = LlmTrainConfig::new(path.clone(), "unused".into(), "unused".into()).with_method(self.method).with_dropout(self.dropout);
        let (llama, shape) = match self.random {
            Some(shape) => {
                let shape = shape.config();
                (Decoder::load(&shape, WeightStore::random(), config.injector()?, &device)?, shape)
            }
            None => {
                let loaded = wegeft_llm::load_base::<B>(&path, config.injector()?, self.precision, &device)?;
                (loaded.model, loaded.config)
            }
        };
        let vocab = shape.vocab_size as u64;
        let loss_scaler = LossScaler::for_run(self.precision.precision(), 1)?;
        let mut model = Some(CausalLm { model: llama.with_precision(self.precision.precision(), &device)?, loss_scaler, recompute_layers: self.recompute_layers });
        eprintln!("llm-step: {} x {} tokens, {:?}, {} base; backend: {description}", self.batch, self.seq, self.method, self.precision);

        // seq + 1 ids per row: position p predicts p + 1, every position carries loss.
        let mut rng = SplitMix64::new(0);
        let items: Vec<Tokenized> = (0..self.batch)
            .map(|_| Tokenized { ids: (0..=self.seq).map(|_| (rng.next_u64() % vocab) as u32).collect(), prompt_len: 0 })
            .collect();
        let batch = LmBatcher { pad: 0 }.batch(items, &device);
        let mut optimizer = SelectiveDecayAdamW::new(config.weight_decay);
        let (median, times) = time_steps(&self.timing, || {
            let current = model.take().expect("the model is put back after each step");
            let output = TrainStep::step(&current, batch.clone());
            let next = optimizer.step(config.lr, current, output.grads);
            // Asynchronous backends are timed to completion.
            B::sync(&device).expect("device sync");
            model = Some(next);
        });
        let report = serde_json::json!({
            "bench": "llm-step", "framework": "burn", "backend": description, "method": format!("{:?}", self.method).to_lowercase(),
            "precision": self.precision.to_string(), "checkpointing": self.recompute_layers,
            "batch": self.batch, "seq": self.seq, "median_s": median, "steps_s": times,
            "tokens_per_s": (self.batch * self.seq) as f64 / median, "peak_rss_mb": peak_memory_mib(),
        });
        println!("{report}");
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    args.backend.clone().run("llm-step", false, args)
}
