//! A run directory's files: `config.json`, `adapter/` (the core crate's format), `head.safetensors`
//! (timm names, PyTorch layout), `model.mpk` for full fine-tuning, `metrics.csv`,
//! `results.json` and `curves.png`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use burn::train::LearnerSummary;
use serde::{Deserialize, Serialize};
use wegeft::io::{write_safetensors, StoredTensor};

use crate::data::{TaskGroup, TaskInfo};
use crate::error::{Result, VisionError};
use crate::model::VisionTransformer;
use crate::train::{plot, Evaluation, Method, TrainConfig};

/// The run's configuration file.
pub const CONFIG_FILE: &str = "config.json";
/// The trained head.
pub const HEAD_FILE: &str = "head.safetensors";
/// The adapter directory.
pub const ADAPTER_DIR: &str = "adapter";
/// The whole model, for full fine-tuning (burn record).
pub const MODEL_FILE: &str = "model";

/// Trainable parameters, split as papers report them (head excluded).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct ParamCounts {
    /// Trainable parameters outside the head: the adapter (or the backbone for `full`).
    pub trainable_excluding_head: usize,
    /// The head.
    pub head: usize,
    /// Every parameter, each shared tensor once.
    pub total: usize,
}

impl ParamCounts {
    /// Counts on the training model (trainability is read from the autodiff tensors).
    pub fn of<B: Backend>(model: &VisionTransformer<B>) -> Self {
        #[derive(Default)]
        struct Count {
            trainable: usize,
            total: usize,
        }
        impl<B: Backend> ModuleVisitor<B> for Count {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                let tensor = param.val();
                let count = tensor.shape().num_elements();
                self.total += count;
                if tensor.is_require_grad() {
                    self.trainable += count;
                }
            }
        }
        let mut count = Count::default();
        model.visit(&mut count);
        let head = model.head.as_ref().map_or(0, |head| head.num_params());
        Self {
            trainable_excluding_head: count.trainable.saturating_sub(head),
            head,
            total: count.total,
        }
    }
}

impl fmt::Display for ParamCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} trainable parameters besides the head ({:.4}% of {}), head {}",
            self.trainable_excluding_head,
            100.0 * self.trainable_excluding_head as f64 / self.total.max(1) as f64,
            self.total,
            self.head
        )
    }
}

/// `results.json`: what the run measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunResults {
    pub task: String,
    pub group: TaskGroup,
    pub method: Method,
    pub rank: Option<usize>,
    pub params: ParamCounts,
    /// The split and the accuracy after the last epoch (no selection on it).
    pub eval_split: String,
    pub eval: Evaluation,
    /// The same evaluation with the adapter merged into the weights.
    pub merged_eval: Option<Evaluation>,
    pub epochs: usize,
    pub image_size: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub seed: u64,
    /// Training images per second (forward, backward and update), over this session.
    pub train_images_per_second: f64,
    pub train_seconds: f64,
    pub selection: String,
}

impl RunResults {
    pub(crate) fn new(
        config: &TrainConfig,
        task: &TaskInfo,
        params: ParamCounts,
        eval: Evaluation,
        merged_eval: Option<Evaluation>,
        trained_images: usize,
        train_seconds: f64,
    ) -> Self {
        let adapted = !matches!(config.method, Method::Linear | Method::Full);
        Self {
            task: task.name.clone(),
            group: task.group,
            method: config.method,
            rank: adapted.then(|| config.rank()),
            params,
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
            selection: format!("last epoch, trained on {}; {} never used for selection", config.train_split, config.eval_split),
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> VisionError + '_ {
    move |source| VisionError::Io { path: path.to_path_buf(), source }
}

/// Writes `config.json`.
pub fn save_config(config: &TrainConfig, run_dir: &Path) -> Result<()> {
    let path = run_dir.join(CONFIG_FILE);
    wegeft::io::write_atomic(&path, config.to_string().as_bytes())?;
    Ok(())
}

/// Reads a run's `config.json`.
pub fn load_config(run_dir: &Path) -> Result<TrainConfig> {
    let path = run_dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    serde_json::from_str(&text).map_err(|error| VisionError::Data {
        line: Some(error.line()),
        path,
        reason: error.to_string(),
    })
}

/// Writes the trained parts, the metrics, the results and the curves.
pub fn save_run<B: Backend>(model: &VisionTransformer<B>, results: &RunResults, run_dir: &Path) -> Result<()> {
    if let Some(bank) = &model.adapters {
        wegeft::save_adapter(bank, run_dir.join(ADAPTER_DIR))?;
    }
    if results.method == Method::Full {
        let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
        let path = run_dir.join(MODEL_FILE);
        model.clone().save_file(&path, &recorder).map_err(|error| VisionError::Data {
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
    let json = serde_json::to_string_pretty(results).expect("results serialise");
    wegeft::io::write_atomic(&run_dir.join("results.json"), json.as_bytes())?;
    let curves = write_metrics_csv(run_dir)?;
    if let Err(error) = plot::training_curves(&curves, &run_dir.join("curves.png")) {
        eprintln!("warning: no curves.png: {error}");
    }
    Ok(())
}

/// The metrics a run logs, by burn's names.
pub const METRICS: [&str; 4] = ["Loss", "Accuracy", "Learning Rate", "Iteration Speed"];

/// One metric's per-epoch means: (split, metric) → [(epoch, value)].
pub type Curves = BTreeMap<(String, String), Vec<(usize, f64)>>;

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
        let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
        let path = run_dir.join(MODEL_FILE);
        model = model.load_file(&path, &recorder, device).map_err(|error| VisionError::Data {
            path,
            line: None,
            reason: error.to_string(),
        })?;
        return Ok((config, task, model));
    }
    model.load_head(&run_dir.join(HEAD_FILE), device)?;
    if let Some(bank) = model.adapters.take() {
        model.adapters = Some(wegeft::load_adapter(bank, run_dir.join(ADAPTER_DIR))?);
    }
    Ok((config, task, model))
}
