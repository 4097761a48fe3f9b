//! A run directory's files: `config.json`, `adapter/` (the core crate's format), `head.safetensors`
//! (timm names, PyTorch layout), `model.mpk` for full fine-tuning, `metrics.csv`,
//! `results.json` and `curves.png`.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::train::LearnerSummary;
use serde::{Deserialize, Serialize};
use wegeft::io::{read_json, write_json, write_safetensors, StoredTensor};
use wegeft::train::CheckpointRecorder;
use wegeft::ParamReport;

use crate::data::{TaskGroup, TaskInfo};
use crate::error::{Result, VisionError};
use crate::model::VisionTransformer;
use crate::train::plot::{self, Curves};
use crate::train::{Evaluation, Method, TrainConfig};

pub use wegeft::train::CONFIG_FILE;
/// The trained head.
pub const HEAD_FILE: &str = "head.safetensors";
/// What the run measured, written once it has finished.
pub const RESULTS_FILE: &str = "results.json";
/// The adapter directory.
pub const ADAPTER_DIR: &str = "adapter";
/// The whole model, for full fine-tuning (burn record).
pub const MODEL_FILE: &str = "model";

/// `results.json`: what the run measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunResults {
    /// The task's name.
    pub task: String,
    /// The task's VTAB group.
    pub group: TaskGroup,
    /// What trained besides the head.
    pub method: Method,
    /// The adapter rank; `None` for the linear probe and full fine-tuning.
    pub rank: Option<usize>,
    /// Parameter counts of the training model; the head is part of `params.head`.
    pub params: ParamReport,
    /// The classifier head's parameters.
    pub head_params: usize,
    /// The split and the accuracy after the last epoch (no selection on it).
    pub eval_split: String,
    /// The evaluation on `eval_split`, with the adapter unmerged.
    pub eval: Evaluation,
    /// The same evaluation with the adapter merged into the weights.
    pub merged_eval: Option<Evaluation>,
    /// Training epochs.
    pub epochs: usize,
    /// Square input side.
    pub image_size: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// The run's seed.
    pub seed: u64,
    /// Training images per second (forward, backward and update), over this session.
    pub train_images_per_second: f64,
    /// Data-parallel workers (devices) that trained it.
    #[serde(default = "wegeft::train::single_worker")]
    pub world_size: usize,
    /// Wall-clock seconds of this invocation's training.
    pub train_seconds: f64,
    /// How the reported model was chosen, in words.
    pub selection: String,
}

impl RunResults {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        config: &TrainConfig,
        task: &TaskInfo,
        params: ParamReport,
        head_params: usize,
        eval: Evaluation,
        merged_eval: Option<Evaluation>,
        trained_images: usize,
        train_seconds: f64,
        world_size: usize,
    ) -> Self {
        Self {
            task: task.name.clone(),
            group: task.group,
            method: config.method,
            rank: config.rank(),
            params,
            head_params,
            eval_split: config.eval_split.to_string(),
            eval,
            merged_eval,
            epochs: config.epochs,
            image_size: config.image_size,
            batch_size: config.batch_size,
            lr: config.lr,
            weight_decay: config.weight_decay,
            seed: config.seed,
            train_images_per_second: trained_images as f64 / train_seconds.max(1e-9),
            train_seconds,
            world_size,
            selection: format!("last epoch, trained on {}; {} never used for selection", config.train_split, config.eval_split),
        }
    }
}

impl RunResults {
    /// Trainable parameters besides the head, as papers report them: the adapter, or the
    /// backbone for full fine-tuning.
    pub fn trainable_excluding_head(&self) -> usize {
        self.params.trainable().saturating_sub(self.head_params)
    }
}

/// Reads a run's `config.json`, checked as a fresh run's would be, with its task directory. A
/// relative task directory is resolved against the current directory, as train-vit did.
pub fn load_config(run_dir: &Path) -> Result<TrainConfig> {
    let path = run_dir.join(CONFIG_FILE);
    let config: TrainConfig = read_json(&path)?;
    config.validate()?;
    if !config.task_dir.is_dir() {
        let relative = if config.task_dir.is_relative() { " (relative: run from the directory train-vit ran in)" } else { "" };
        let reason = format!("the run's task_dir `{}` is not a directory here{relative}", config.task_dir.display());
        return Err(VisionError::Data { path, line: None, reason });
    }
    Ok(config)
}

/// The results of a finished run (its `results.json`), `None` when it has not finished.
pub fn load_results(run_dir: &Path) -> Result<Option<RunResults>> {
    let path = run_dir.join(RESULTS_FILE);
    Ok(if path.is_file() { Some(read_json(&path)?) } else { None })
}

/// Writes the trained parts, the metrics, the results and the curves.
pub fn save_run<B: Backend>(model: &VisionTransformer<B>, results: &RunResults, run_dir: &Path) -> Result<()> {
    if model.adapters.plan().is_some() {
        wegeft::save_adapter(&model.adapters, run_dir.join(ADAPTER_DIR))?;
    }
    if results.method == Method::Full {
        let path = run_dir.join(MODEL_FILE);
        model.clone().save_file(&path, &CheckpointRecorder::default()).map_err(|error| VisionError::Data {
            path,
            line: None,
            reason: error.to_string(),
        })?;
    }
    if let Some(head) = &model.head {
        let weight = StoredTensor::from_tensor(head.weight.val().transpose());
        let bias = head.bias.as_ref().map(|b| b.val().unsqueeze::<2>()).map(StoredTensor::from_tensor);
        let mut tensors = BTreeMap::from([("head.weight".to_string(), weight)]);
        if let Some(bias) = bias {
            tensors.insert("head.bias".into(), StoredTensor { shape: vec![bias.values.len()], values: bias.values });
        }
        write_safetensors(&run_dir.join(HEAD_FILE), &tensors)?;
    }
    write_json(&run_dir.join(RESULTS_FILE), results)?;
    let curves = write_metrics_csv(run_dir)?;
    if let Err(error) = plot::training_curves(&curves, &run_dir.join("curves.png")) {
        eprintln!("warning: no curves.png: {error}");
    }
    Ok(())
}

/// The metrics a run logs, by burn's names.
pub const METRICS: [&str; 4] = ["Loss", "Accuracy", "Learning Rate", "Iteration Speed"];

/// Writes `metrics.csv` (epoch, split, metric, mean) from burn's metric logs, and returns it.
pub fn write_metrics_csv(run_dir: &Path) -> Result<Curves> {
    let summary = LearnerSummary::new(run_dir, &METRICS).map_err(|reason| VisionError::Data {
        path: run_dir.to_path_buf(),
        line: None,
        reason,
    })?;
    let mut curves = Curves::new();
    for (split, metrics) in [("train", &summary.metrics.train), ("valid", &summary.metrics.valid)] {
        for metric in metrics {
            let points = metric.entries.iter().map(|e| (e.step, e.value)).collect();
            curves.insert((split.to_string(), metric.name.clone()), points);
        }
    }
    let mut csv = String::from("epoch,split,metric,value\n");
    for ((split, metric), points) in &curves {
        for (epoch, value) in points {
            csv.push_str(&format!("{epoch},{split},{metric},{value}\n"));
        }
    }
    wegeft::io::write_atomic(&run_dir.join("metrics.csv"), csv.as_bytes())?;
    Ok(curves)
}

/// The trained model of a run directory: the backbone from the run's checkpoint, then the
/// saved head and adapter (or the whole saved model for `full`).
pub fn load_trained<B: Backend>(run_dir: &Path, device: &B::Device) -> Result<(TrainConfig, TaskInfo, VisionTransformer<B>)> {
    let config = load_config(run_dir)?;
    let task = TaskInfo::of_dir(&config.task_dir)?;
    let mut model = crate::train::build_model::<B>(&config, &task, device)?;
    if config.method == Method::Full {
        let path = run_dir.join(MODEL_FILE);
        model = model.load_file(&path, &CheckpointRecorder::default(), device).map_err(|error| VisionError::Data {
            path,
            line: None,
            reason: error.to_string(),
        })?;
        return Ok((config, task, model));
    }
    model.load_head(&run_dir.join(HEAD_FILE), device)?;
    if model.adapters.plan().is_some() {
        model.adapters = wegeft::load_adapter(std::mem::take(&mut model.adapters), run_dir.join(ADAPTER_DIR))?;
    }
    Ok((config, task, model))
}
