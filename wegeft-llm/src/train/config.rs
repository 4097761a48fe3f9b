//! What defines an LLM fine-tuning run; saved as the run's `config.json`.

use std::path::PathBuf;

use burn::config::Config;
use wegeft::{Domain, Injector, MethodName, Overrides, Targets};

use crate::base_precision::BasePrecision;
use crate::prompt::PromptStyle;
use crate::train::eval::Extract;

/// A fine-tuning run of a decoder on instruction data.
#[derive(Config, Debug)]
pub struct LlmTrainConfig {
    /// A .gguf file or an HF model directory.
    pub model: PathBuf,
    /// Training JSONL.
    pub train_file: PathBuf,
    /// Held-out JSONL, evaluated before and after training.
    pub test_file: PathBuf,
    /// The adapter to train, with the paper's LLM settings ([`MethodName::config`]).
    #[config(default = "MethodName::Wegeft")]
    pub method: MethodName,
    /// Rank [default: WeGeFT 64, LoRA and DoRA 16, VeRA 1024].
    #[config(default = "None")]
    pub rank: Option<usize>,
    /// α [default: 2 × rank; VeRA has none].
    #[config(default = "None")]
    pub alpha: Option<f64>,
    /// Dropout [default: WeGeFT 0.1 on W, the others 0.05 on x].
    #[config(default = "None")]
    pub dropout: Option<f64>,
    /// Layer-name suffixes that get an adapter.
    #[config(default = "vec![\"q_proj\".into(), \"k_proj\".into(), \"v_proj\".into(), \"up_proj\".into(), \"down_proj\".into()]")]
    pub targets: Vec<String>,
    /// Training epochs.
    #[config(default = 1)]
    pub epochs: usize,
    /// Peak learning rate.
    #[config(default = 1e-3)]
    pub lr: f64,
    /// AdamW weight decay.
    #[config(default = 0.0)]
    pub weight_decay: f64,
    /// Fraction of the steps spent warming up.
    #[config(default = 0.1)]
    pub warmup_ratio: f64,
    /// Examples per step.
    #[config(default = 8)]
    pub batch_size: usize,
    /// Longest tokenised example; longer ones are cut.
    #[config(default = 128)]
    pub max_len: usize,
    /// Training examples used (the first ones) [default: all].
    #[config(default = "None")]
    pub train_limit: Option<usize>,
    /// Held-out examples evaluated (the first ones).
    #[config(default = 100)]
    pub eval_limit: usize,
    /// Tokens generated per held-out example.
    #[config(default = 12)]
    pub max_new_tokens: usize,
    /// How examples are rendered: the checkpoint's chat template or Alpaca.
    #[config(default = "PromptStyle::Auto")]
    pub template: PromptStyle,
    /// How the answer is read out of a generation.
    #[config(default = "Extract::LastNumber")]
    pub extract: Extract,
    /// Seed of the adapter init, the dropout and the data order.
    #[config(default = 42)]
    pub seed: u64,
    /// Precision of the frozen base, or `stored` (a GGUF's quantised blocks); `None` is f32 (and
    /// what runs written before mixed precision hold). The adapter and the optimizer stay f32.
    #[config(default = "None")]
    pub precision: Option<BasePrecision>,
    /// Layer-wise gradient checkpointing ([`crate::train::step::CausalLm::recompute_layers`]).
    #[config(default = false)]
    pub recompute_layers: bool,
}

impl LlmTrainConfig {
    /// Fails on settings no run can use, naming the setting (rank and dropout are the adapter
    /// method's to check).
    pub fn validate(&self) -> crate::Result<()> {
        let problem = if self.batch_size == 0 {
            Some("batch_size must be at least 1".to_string())
        } else if self.max_len < 2 {
            Some(format!("max_len must be at least 2 tokens (a prompt and an answer), got {}", self.max_len))
        } else if self.epochs == 0 {
            Some("epochs must be at least 1".to_string())
        } else if self.train_limit == Some(0) || self.eval_limit == 0 {
            Some("train_limit and eval_limit must be at least 1".to_string())
        } else if self.max_new_tokens == 0 {
            Some("max_new_tokens must be at least 1".to_string())
        } else if !(0.0..=1.0).contains(&self.warmup_ratio) {
            Some(format!("warmup_ratio must be in [0, 1], got {}", self.warmup_ratio))
        } else if self.alpha.is_some_and(|alpha| !(alpha.is_finite() && alpha > 0.0)) {
            Some(format!("alpha must be a positive number, got {:?}", self.alpha))
        } else {
            None
        };
        problem.map_or(Ok(()), |problem| Err(crate::LlmError::InvalidConfig(problem)))?;
        Ok(wegeft::train::check_optimizer(self.lr, self.weight_decay)?)
    }

    /// How the frozen base is held (f32 unless set).
    pub fn base_precision(&self) -> BasePrecision {
        self.precision.unwrap_or_default()
    }

    /// The injector of the configured method.
    pub fn injector(&self) -> crate::Result<Injector> {
        let targets = self.targets.iter().fold(Targets::new(), |t, s| t.suffix(s.as_str()));
        let overrides = Overrides { rank: self.rank, alpha: self.alpha, dropout: self.dropout };
        Ok(Injector::new(self.method.config(Domain::Llm, overrides), targets)?)
    }
}
