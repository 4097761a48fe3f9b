//! One LLM fine-tuning run: evaluate the base model, train the adapter through the core crate's
//! [`fit`], evaluate again, write the adapter, predictions and results.

use std::path::Path;
use std::sync::Arc;

use burn::data::dataset::InMemDataset;
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use burn::train::metric::{LearningRateMetric, LossMetric};
use serde::{Deserialize, Serialize};
use wegeft::io::{read_json, write_json};
use wegeft::train::{data_parallel_workers, finished_epochs, fit, peak_memory_mib, start_run, EpochLoader, LossScaler, Schedule, Session};
use wegeft::{ParamReport, PeftError};

use crate::error::{LlmError, Result};
use crate::pretrained::load_base;
use crate::prompt::PromptFormat;
use crate::train::data::{read_jsonl, tokenize};
use crate::train::eval::{evaluate, LmEvaluation};
use crate::train::step::{CausalLm, LmBatcher};
use crate::train::perplexity::PerplexityMetric;
use crate::train::throughput::TokensPerSecondMetric;
use crate::train::LlmTrainConfig;

/// `results.json` of a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LlmResults {
    /// Exact-match accuracy (%) of the base model.
    pub before_accuracy: f64,
    /// Exact-match accuracy (%) after training.
    pub after_accuracy: f64,
    /// Held-out examples evaluated.
    pub eval_examples: usize,
    /// Parameter counts of the training model.
    pub params: ParamReport,
    /// Training examples used.
    pub train_examples: usize,
    /// Optimiser steps over all epochs.
    pub train_steps: usize,
    /// Training tokens per second, padding excluded.
    pub train_tokens_per_second: f64,
    /// Wall-clock seconds of this invocation's training.
    pub train_seconds: f64,
    /// Generated tokens per second in the final evaluation.
    pub generation_tokens_per_second: f64,
    /// Peak resident memory of the process (VmHWM), in MiB.
    pub peak_memory_mib: Option<f64>,
    /// Data-parallel workers (devices) that trained it.
    #[serde(default = "wegeft::train::single_worker")]
    pub world_size: usize,
}

/// Trains `config` into `run_dir` on `devices` (one data-parallel worker each; see
/// [`fit`]); `None` when the session stops before the last epoch.
pub fn train_llm<B: AutodiffBackend>(config: &LlmTrainConfig, run_dir: &Path, session: Session, devices: &[B::Device]) -> Result<Option<LlmResults>> {
    config.validate()?;
    let device = devices.first().ok_or_else(|| PeftError::InvalidConfig("no device to train on".into()))?;
    let inputs = [config.model.as_path(), &config.train_file, &config.test_file];
    let run = start_run(run_dir, config, session, &inputs)?;
    let run_dir = run.path();
    let results_file = run_dir.join("results.json");
    if session.resume && results_file.is_file() {
        println!("{}: the run is complete; its results stand", run_dir.display());
        return Ok(Some(read_json(&results_file)?));
    }
    finished_epochs(run_dir, session)?; // a resume without checkpoint fails before the slow evaluation
    B::seed(device, config.seed);
    let loss_scaler = LossScaler::for_run(config.base_precision().precision(), data_parallel_workers(devices.len()))?;
    let pretrained = load_base::<B>(&config.model, config.injector()?, config.base_precision(), device)?;
    // Examples are cut to the model's context as to max_len: the model has no positions past it.
    let context = pretrained.config.max_position_embeddings;
    let max_len = config.max_len.min(context);
    if max_len < config.max_len {
        println!("max_len {} is cut to the model's context of {context} tokens", config.max_len);
    }
    let model = pretrained.model;
    let tokenizer = pretrained.tokenizer;
    let format = PromptFormat::new(config.template, &tokenizer)?;
    let mut train = read_jsonl(&config.train_file)?;
    train.truncate(config.train_limit.unwrap_or(train.len()));
    let mut test = read_jsonl(&config.test_file)?;
    test.truncate(config.eval_limit);
    for (examples, file) in [(train.len(), &config.train_file), (test.len(), &config.test_file)] {
        if examples == 0 {
            return Err(LlmError::Format { path: file.clone(), reason: "no examples".into() });
        }
    }
    let params = ParamReport::of(&model);
    println!("{:?}: {params}; {} training examples, {} held out", config.method, train.len(), test.len());

    let eval = |model: &crate::Decoder<B::InnerBackend>, label: &str| -> Result<LmEvaluation> {
        let result = evaluate(model, &tokenizer, &format, &test, config.extract, config.max_new_tokens, 16, device)?;
        println!("{label}: exact match {:.1}% on {} held-out examples", result.accuracy, result.examples);
        write_json(&run_dir.join(format!("predictions_{label}.json")), &result.predictions)?;
        Ok(result)
    };
    let before = eval(&model.valid(), "before")?;

    let tokenized = train.iter().map(|e| tokenize(&tokenizer, &format, e, max_len)).collect::<Result<Vec<_>>>()?;
    let tokens: usize = tokenized.iter().map(|t| t.ids.len()).sum();
    let held_out = test.iter().take(32).map(|e| tokenize(&tokenizer, &format, e, max_len)).collect::<Result<Vec<_>>>()?;
    let batcher = LmBatcher { pad: tokenizer.eos.unwrap_or(0) };
    let train_loader = EpochLoader::<B, _, _>::sequential(Arc::new(InMemDataset::new(tokenized.clone())), batcher.clone(), config.batch_size, device.clone());
    let valid_loader = EpochLoader::<B::InnerBackend, _, _>::sequential(Arc::new(InMemDataset::new(held_out)), batcher, config.batch_size, device.clone());
    let steps_per_epoch = tokenized.len().div_ceil(config.batch_size);
    let schedule = Schedule {
        epochs: config.epochs,
        steps_per_epoch,
        warmup_steps: (config.warmup_ratio * (steps_per_epoch * config.epochs) as f64) as usize,
        lr: config.lr,
        weight_decay: config.weight_decay,
        seed: config.seed,
    };
    let model = CausalLm { model, loss_scaler, recompute_layers: config.recompute_layers };
    let fitted = fit(run_dir, session, schedule, devices, model, train_loader, valid_loader, |training| {
        training
            .metrics((LossMetric::new(), PerplexityMetric::default()))
            .metric_train_numeric(LearningRateMetric::new())
            .metric_train_numeric(TokensPerSecondMetric::default())
    })?;
    let Some(fitted) = fitted else { return Ok(None) };
    let model = fitted.model.model;
    let after = eval(&model, "after")?;
    if model.adapters.plan().is_some() {
        wegeft::save_adapter(&model.adapters, run_dir.join("adapter"))?;
    }
    let results = LlmResults {
        before_accuracy: before.accuracy,
        after_accuracy: after.accuracy,
        eval_examples: after.examples,
        params,
        train_examples: tokenized.len(),
        train_steps: steps_per_epoch * config.epochs,
        train_tokens_per_second: (tokens * fitted.trained_epochs) as f64 / fitted.train_seconds.max(1e-9),
        train_seconds: fitted.train_seconds,
        generation_tokens_per_second: after.tokens_per_second,
        peak_memory_mib: peak_memory_mib(),
        world_size: fitted.world_size,
    };
    write_json(&results_file, &results)?;
    Ok(Some(results))
}
