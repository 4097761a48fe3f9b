//! One training run: data, model and metrics around the core crate's [`fit`], then the
//! evaluation and the run directory's files.

use std::path::Path;
use std::sync::Arc;

use burn::data::dataset::Dataset;
use burn::module::Module;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::train::metric::{AccuracyMetric, IterationSpeedMetric, LearningRateMetric, LossMetric};
use burn::train::LearnerSummary;
use wegeft::io::WeightStore;
use wegeft::train::{data_parallel_workers, fit, start_run, EpochLoader, LossScaler, Schedule, Session};
use wegeft::ParamReport;

use crate::data::{read_split, ImageBatcher, ImageDataset, Split, TaskInfo};
use crate::error::{Result, VisionError};
use crate::model::VisionTransformer;
use crate::train::artifacts::{self, RunResults};
use crate::train::{evaluate, unfreeze, TrainConfig};

/// The split of `config`'s task, decoded at the run's image size.
pub fn load_split(config: &TrainConfig, task: &TaskInfo, split: Split) -> Result<Arc<ImageDataset>> {
    let files = read_split(&config.task_dir, split, task.classes)?;
    Ok(Arc::new(ImageDataset::load(&files, config.image_size)?))
}

/// The run's model before training: backbone, fresh head, and the method's adapter, initialised
/// from `config.seed` (so a random backbone is the same every time it is rebuilt).
pub fn build_model<B: Backend>(config: &TrainConfig, task: &TaskInfo, device: &B::Device) -> Result<VisionTransformer<B>> {
    config.validate()?;
    B::seed(device, config.seed);
    let weights = match &config.checkpoint {
        Some(path) => WeightStore::safetensors(std::slice::from_ref(path))?,
        None => WeightStore::random(),
    };
    let injector = config.method.injector(config.rank, &config.targets)?;
    let model = VisionTransformer::load(&config.vit_for(task.classes), weights, injector, device)?;
    model.check_image_size(config.image_size, config.image_size)?;
    let model = if config.method.trains_backbone() { unfreeze(model) } else { model };
    model.with_precision(config.base_precision(), device)
}

/// Trains `config` into `run_dir` on `devices` (one data-parallel worker each; see [`fit`]) and
/// evaluates the result once on `config.eval_split`. Returns `None` when the session stopped
/// before the last epoch.
pub fn train<B: AutodiffBackend>(config: &TrainConfig, run_dir: &Path, session: Session, devices: &[B::Device]) -> Result<Option<RunResults>> {
    config.validate()?;
    let device = devices.first().ok_or_else(|| wegeft::PeftError::InvalidConfig("no device to train on".into()))?;
    let task = TaskInfo::of_dir(&config.task_dir)?;
    let lists: Vec<_> = [config.train_split, config.valid_split, config.eval_split].map(|split| config.task_dir.join(split.file_name())).into();
    let mut inputs: Vec<&Path> = lists.iter().map(|list| list.as_path()).collect();
    inputs.extend(config.checkpoint.as_deref());
    let run = start_run(run_dir, config, session, &inputs)?;
    let run_dir = run.path();
    if let Some(results) = artifacts::load_results(run_dir)?.filter(|_| session.resume) {
        println!("{}: the run is complete; its results stand", run_dir.display());
        return Ok(Some(results));
    }

    // The evaluation's list is read now, so a missing or bad one is said before training.
    if read_split(&config.task_dir, config.eval_split, task.classes)?.is_empty() {
        let list = config.task_dir.join(config.eval_split.file_name());
        return Err(VisionError::Data { path: list, line: None, reason: "no images to evaluate on".into() });
    }
    let train_set = load_split(config, &task, config.train_split)?;
    let valid_set = load_split(config, &task, config.valid_split)?;
    let mut model = build_model::<B>(config, &task, device)?;
    model.loss_scaler = LossScaler::for_run(config.base_precision(), data_parallel_workers(devices.len()))?;
    let params = ParamReport::of(&model);
    let head = model.head.as_ref().map_or(0, |head| head.num_params());
    println!("{} on {} ({} classes): {params}", config.method, task.name, task.classes);

    let batcher = ImageBatcher::new(config.vit.normalization.clone(), config.image_size);
    let train_loader = EpochLoader::<B, _, _>::sequential(train_set.clone(), batcher.clone(), config.batch_size, device.clone());
    let valid_loader = EpochLoader::<B::InnerBackend, _, _>::sequential(valid_set, batcher.clone(), config.batch_size, device.clone());
    let steps_per_epoch = train_set.len().div_ceil(config.batch_size);
    let schedule = Schedule {
        epochs: config.epochs,
        steps_per_epoch,
        warmup_steps: config.warmup_epochs * steps_per_epoch,
        lr: config.lr,
        weight_decay: config.weight_decay,
        seed: config.seed,
    };
    let fitted = fit(run_dir, session, schedule, devices, model, train_loader, valid_loader, |training| {
        training
            .metrics((AccuracyMetric::new(), LossMetric::new()))
            .metric_train_numeric(LearningRateMetric::new())
            .metric_train_numeric(IterationSpeedMetric::new())
    })?;
    if let Ok(summary) = LearnerSummary::new(run_dir, &artifacts::METRICS) {
        println!("{summary}");
    }
    let Some(fitted) = fitted else { return Ok(None) };

    let eval_set = load_split(config, &task, config.eval_split)?;
    let model = fitted.model;
    let inner_device = model.devices()[0].clone();
    let eval = |model: &VisionTransformer<B::InnerBackend>, label: &str| {
        evaluate(model, eval_set.clone(), batcher.clone(), config.batch_size, &inner_device, label)
    };
    let evaluation = eval(&model, &config.eval_split.to_string())?;
    let merged = model.adapters.plan().is_some().then(|| eval(&wegeft::Adapted::merged(model.clone()), "merged")).transpose()?;
    let trained_images = fitted.trained_epochs * train_set.len();
    let results = RunResults::new(config, &task, params, head, evaluation, merged, trained_images, fitted.train_seconds, fitted.world_size);
    artifacts::save_run(&model, &results, run_dir)?;
    Ok(Some(results))
}
