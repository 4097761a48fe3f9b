//! One LLM fine-tuning run: evaluate the base model, train the adapter through burn's `Learner`,
//! evaluate again, write the adapter, predictions and results.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use burn::data::dataset::InMemDataset;
use burn::module::AutodiffModule;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use burn::tensor::backend::AutodiffBackend;
use burn::train::metric::{LearningRateMetric, LossMetric, PerplexityMetric};
use burn::train::{Learner, SupervisedTraining};
use serde::{Deserialize, Serialize};
use wegeft::train::{last_checkpoint, EpochLoader, SelectiveDecayAdamW, Session, WarmupCosine};

use crate::error::{LlmError, Result};
use crate::load::load;
use crate::prompt::PromptFormat;
use crate::train::data::{read_jsonl, tokenize};
use crate::train::eval::{evaluate, LmEvaluation};
use crate::train::step::{CausalLm, LmBatcher, IGNORED};
use crate::train::throughput::TokensPerSecondMetric;
use crate::train::LlmTrainConfig;

/// `results.json` of a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LlmResults {
    pub before_accuracy: f64,
    pub after_accuracy: f64,
    pub eval_examples: usize,
    pub adapter_params: usize,
    pub train_examples: usize,
    pub train_steps: usize,
    pub train_tokens_per_second: f64,
    pub train_seconds: f64,
    pub generation_tokens_per_second: f64,
    /// Peak resident memory of the process (VmHWM), in MiB.
    pub peak_memory_mib: Option<f64>,
}

/// The process's peak resident set (Linux).
pub fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("serialisable");
    wegeft::io::write_atomic(path, text.as_bytes())?;
    Ok(())
}

/// Trains `config` into `run_dir`; `None` when the session stops before the last epoch.
pub fn train_llm<B: AutodiffBackend>(config: &LlmTrainConfig, run_dir: &Path, session: Session, device: &B::Device) -> Result<Option<LlmResults>> {
    std::fs::create_dir_all(run_dir).map_err(|source| LlmError::Io { path: run_dir.into(), source })?;
    wegeft::io::write_atomic(&run_dir.join("config.json"), config.to_string().as_bytes())?;
    B::seed(device, config.seed);
    let finished_epochs = if session.resume { last_checkpoint(run_dir)? } else { 0 };
    let loaded = load::<B>(&config.model, Some(config.injector()?), device)?;
    let tokenizer = loaded.tokenizer;
    let format = PromptFormat::new(config.template, &tokenizer)?;
    let mut train = read_jsonl(&config.train_file)?;
    train.truncate(config.train_limit.unwrap_or(train.len()));
    let mut test = read_jsonl(&config.test_file)?;
    test.truncate(config.eval_limit);
    let adapter_params = loaded.model.adapters.as_ref().map_or(0, |bank| bank.plan().adapter_params());
    println!("{:?} adapter: {adapter_params} parameters; {} training examples, {} held out", config.method, train.len(), test.len());

    let eval = |model: &crate::Llama<B::InnerBackend>, label: &str| -> Result<LmEvaluation> {
        let result = evaluate(model, &tokenizer, &format, &test, config.extract, config.max_new_tokens, 16, device)?;
        println!("{label}: exact match {:.1}% on {} held-out examples", result.accuracy, result.examples);
        write_json(&run_dir.join(format!("predictions_{label}.json")), &result.predictions)?;
        Ok(result)
    };
    let before = eval(&loaded.model.valid(), "before")?;

    let tokenized = train.iter().map(|e| tokenize(&tokenizer, &format, e, config.max_len)).collect::<Result<Vec<_>>>()?;
    let tokens: usize = tokenized.iter().map(|t| t.ids.len()).sum();
    let held_out = test.iter().take(32).map(|e| tokenize(&tokenizer, &format, e, config.max_len)).collect::<Result<Vec<_>>>()?;
    let batcher = LmBatcher { pad: tokenizer.eos.unwrap_or(0) };
    // Epoch e's order depends on (seed, e) only, so a resumed run sees the data it would have.
    let train_loader = EpochLoader::<B, _, _>::sequential(Arc::new(InMemDataset::new(tokenized.clone())), batcher.clone(), config.batch_size, device.clone())
        .shuffled(config.seed, finished_epochs);
    let valid_loader = EpochLoader::<B::InnerBackend, _, _>::sequential(Arc::new(InMemDataset::new(held_out)), batcher, config.batch_size, device.clone());
    let steps = tokenized.len().div_ceil(config.batch_size) * config.epochs;
    let schedule = WarmupCosine::new(config.lr, (config.warmup_ratio * steps as f64) as usize, steps);
    let epochs = session.last_epoch(config.epochs);
    let learner = Learner::new(CausalLm { model: loaded.model }, SelectiveDecayAdamW::new(config.weight_decay), schedule);
    let training = SupervisedTraining::new(run_dir, Arc::new(train_loader), Arc::new(valid_loader))
        .metrics((LossMetric::new(), PerplexityMetric::new().with_pad_token(IGNORED as usize)))
        .metric_train_numeric(LearningRateMetric::new())
        .metric_train_numeric(TokensPerSecondMetric::default())
        .with_file_checkpointer(NamedMpkFileRecorder::<FullPrecisionSettings>::new());
    let training = session.configure(training, config.epochs, finished_epochs);
    let start = Instant::now();
    let result = training.launch(learner);
    let train_seconds = start.elapsed().as_secs_f64();
    drop(result.renderer);
    if epochs < config.epochs {
        println!("stopped after epoch {epochs} of {}; `--resume` continues", config.epochs);
        return Ok(None);
    }
    let model = result.model.model;
    let after = eval(&model, "after")?;
    if let Some(bank) = &model.adapters {
        wegeft::save_adapter(bank, run_dir.join("adapter"))?;
    }
    let trained_epochs = epochs - finished_epochs;
    let results = LlmResults {
        before_accuracy: before.accuracy,
        after_accuracy: after.accuracy,
        eval_examples: after.examples,
        adapter_params,
        train_examples: tokenized.len(),
        train_steps: steps,
        train_tokens_per_second: (tokens * trained_epochs) as f64 / train_seconds.max(1e-9),
        train_seconds,
        generation_tokens_per_second: after.tokens_per_second,
        peak_memory_mib: peak_memory_mib(),
    };
    write_json(&run_dir.join("results.json"), &results)?;
    Ok(Some(results))
}
