//! One training run through burn's `Learner`: data, model, optimizer, schedule, checkpoints,
//! then the evaluation and the run directory's files.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::data::dataset::Dataset;
use burn::module::Module;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::train::metric::{AccuracyMetric, IterationSpeedMetric, LearningRateMetric, LossMetric};
use burn::train::{Learner, LearnerSummary, SupervisedTraining};

use crate::data::{read_split, ImageBatcher, ImageDataset, Split, TaskInfo};
use crate::error::{Result, VisionError};
use crate::model::VisionTransformer;
use crate::train::artifacts::{self, RunResults};
use crate::train::{evaluate, unfreeze, SelectiveDecayAdamW, TrainConfig, WarmupCosine};
use crate::weights::WeightSource;
use wegeft::train::{last_checkpoint, EpochLoader, Session};

/// The split of `config`'s task, decoded at the run's image size.
pub fn load_split(config: &TrainConfig, task: &TaskInfo, split: Split) -> Result<Arc<ImageDataset>> {
    let files = read_split(&config.task_dir, split, task.classes)?;
    Ok(Arc::new(ImageDataset::load(&files, config.image_size)?))
}

/// The run's model before training: backbone, fresh head, and the method's adapter, initialised
/// from `config.seed` (so a random backbone is the same every time it is rebuilt).
pub fn build_model<B: Backend>(config: &TrainConfig, task: &TaskInfo, device: &B::Device) -> Result<VisionTransformer<B>> {
    B::seed(device, config.seed);
    let weights = match &config.checkpoint {
        Some(path) => WeightSource::safetensors(path)?,
        None => WeightSource::Random,
    };
    let injector = config.method.injector(config.rank(), &config.targets)?;
    let model = VisionTransformer::load(&config.vit_for(task.classes), weights, injector, device)?;
    model.check_image_size(config.image_size, config.image_size)?;
    Ok(if config.method.trains_backbone() { unfreeze(model) } else { model })
}

/// Trains `config` into `run_dir` and evaluates the result once on `config.eval_split`.
/// Returns `None` when the session stopped before the last epoch.
pub fn train<B: AutodiffBackend>(config: &TrainConfig, run_dir: &Path, session: Session, device: &B::Device) -> Result<Option<RunResults>> {
    let task = TaskInfo::of_dir(&config.task_dir)?;
    std::fs::create_dir_all(run_dir).map_err(|source| VisionError::Io { path: run_dir.into(), source })?;
    artifacts::save_config(config, run_dir)?;

    let train_set = load_split(config, &task, config.train_split)?;
    let valid_set = load_split(config, &task, config.valid_split)?;
    let model = build_model::<B>(config, &task, device)?;
    let params = artifacts::ParamCounts::of(&model);
    println!("{} on {} ({} classes): {params}", config.method, task.name, task.classes);

    let finished_epochs = if session.resume { last_checkpoint(run_dir)? } else { 0 };
    let batcher = ImageBatcher::new(config.vit.normalization.clone(), config.image_size);
    let train_loader = EpochLoader::<B, _, _>::sequential(train_set.clone(), batcher.clone(), config.batch_size, device.clone())
        .shuffled(config.seed, finished_epochs);
    let valid_loader = EpochLoader::<B::InnerBackend, _, _>::sequential(valid_set, batcher.clone(), config.batch_size, device.clone());

    let steps_per_epoch = train_set.len().div_ceil(config.batch_size);
    let schedule = WarmupCosine::new(config.lr, config.warmup_epochs * steps_per_epoch, config.epochs * steps_per_epoch);
    let learner = Learner::new(model, SelectiveDecayAdamW::new(config.weight_decay), schedule);
    let epochs = session.last_epoch(config.epochs);
    let training = SupervisedTraining::new(run_dir, Arc::new(train_loader), Arc::new(valid_loader))
        .metrics((AccuracyMetric::new(), LossMetric::new()))
        .metric_train_numeric(LearningRateMetric::new())
        .metric_train_numeric(IterationSpeedMetric::new())
        .with_file_checkpointer(NamedMpkFileRecorder::<FullPrecisionSettings>::new());
    let training = session.configure(training, config.epochs, finished_epochs);
    let start = Instant::now();
    let result = training.launch(learner);
    let train_seconds = start.elapsed().as_secs_f64();
    drop(result.renderer);
    let model = result.model;
    if let Ok(summary) = LearnerSummary::new(run_dir, &artifacts::METRICS) {
        println!("{summary}");
    }
    if epochs < config.epochs {
        println!("stopped after epoch {epochs} of {}; `--resume` continues", config.epochs);
        return Ok(None);
    }

    let eval_set = load_split(config, &task, config.eval_split)?;
    let inner_device = model.devices()[0].clone();
    let eval = |model: &VisionTransformer<B::InnerBackend>, label: &str| {
        evaluate(model, eval_set.clone(), batcher.clone(), config.batch_size, &inner_device, label)
    };
    let evaluation = eval(&model, &config.eval_split.to_string());
    let merged = model.adapters.is_some().then(|| eval(&model.merged(), "merged"));
    let trained_images = (epochs - finished_epochs) * train_set.len();
    let results = RunResults::new(config, &task, params, evaluation, merged, trained_images, train_seconds);
    artifacts::save_run(&model, &results, run_dir)?;
    Ok(Some(results))
}

/// The default run directory: `runs/<task>/<method>`.
pub fn default_run_dir(config: &TrainConfig) -> PathBuf {
    let task = config.task_dir.file_name().map_or_else(|| "task".into(), |n| n.to_string_lossy().into_owned());
    PathBuf::from("runs").join(task).join(config.method.to_string())
}

