//! The skeleton every fine-tuning run shares: the run directory, resume, the Learner with
//! AdamW (decay on matrices only) and warmup + cosine, checkpoints, and how far this invocation
//! goes. The vision and LLM trainers differ only in their model, data and metrics.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use burn::data::dataloader::DataLoader;
use burn::module::AutodiffModule;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use burn::tensor::backend::AutodiffBackend;
use burn::train::{ExecutionStrategy, InferenceStep, Learner, LearningComponentsMarker, MultiDeviceOptim, SupervisedTraining, TrainStep};

use crate::error::{PeftError, Result};
use crate::train::atomic_recorder::AtomicFileRecorder;
use crate::train::session_logger::SessionLogger;
use crate::train::{agree, broadcast_trainable, data_parallel_workers, trainable_layout, checkpoint_bytes, discard_checkpoints_from, ensure_space, existing_checkpoint_bytes, last_checkpoint, EpochLoader, SelectiveDecayAdamW, Session, WarmupCosine};

/// How checkpoints and full models are written: burn's named MessagePack, full precision, each
/// file atomically.
pub type CheckpointRecorder = AtomicFileRecorder<NamedMpkFileRecorder<FullPrecisionSettings>>;

/// The Learner's components for model `M` on backend `B`.
pub type Components<B, M> = LearningComponentsMarker<B, WarmupCosine, M, SelectiveDecayAdamW<M, B>>;

/// The optimisation side of a run, in the units both trainers use.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    /// Epochs the schedule spans.
    pub epochs: usize,
    /// Optimizer steps per epoch.
    pub steps_per_epoch: usize,
    /// Steps of linear warmup, then cosine decay to the end.
    pub warmup_steps: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// AdamW weight decay on matrices.
    pub weight_decay: f64,
    /// Seed of the data order (and of the backend's draws, per epoch).
    pub seed: u64,
}

impl Schedule {
    /// Fails unless the run has steps to take with a usable rate and decay.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 || self.steps_per_epoch == 0 {
            let problem = format!("nothing to train: {} epochs of {} steps (is the training set empty?)", self.epochs, self.steps_per_epoch);
            return Err(PeftError::InvalidConfig(problem));
        }
        check_optimizer(self.lr, self.weight_decay)
    }
}

/// Fails unless `lr` is a positive number and `weight_decay` a non-negative one (a NaN rate
/// trains NaN adapters and cannot even be written to `config.json`).
pub fn check_optimizer(lr: f64, weight_decay: f64) -> Result<()> {
    if !(lr.is_finite() && lr > 0.0) {
        return Err(PeftError::InvalidConfig(format!("the learning rate must be a positive number, got {lr}")));
    }
    if !(weight_decay.is_finite() && weight_decay >= 0.0) {
        return Err(PeftError::InvalidConfig(format!("the weight decay must be a non-negative number, got {weight_decay}")));
    }
    Ok(())
}

/// The file that records how many data-parallel workers train the run.
const WORKERS_FILE: &str = "workers";

/// What a finished invocation hands back.
pub struct Fitted<M> {
    /// The trained model, without autodiff.
    pub model: M,
    /// Wall-clock seconds of this invocation's training.
    pub train_seconds: f64,
    /// Epochs trained by this invocation (fewer than the schedule's after a resume).
    pub trained_epochs: usize,
    /// Data-parallel workers that trained it (1 on a single device).
    pub world_size: usize,
}

/// The world size of runs written before data-parallel training existed.
pub fn single_worker() -> usize {
    1
}

/// The epochs a run in `run_dir` has finished: the last complete checkpoint when resuming, 0 otherwise.
pub fn finished_epochs(run_dir: &Path, session: Session) -> Result<usize> {
    if session.resume {
        last_checkpoint(run_dir)
    } else {
        Ok(0)
    }
}

/// Trains `model` on `train` (shuffled per epoch from the schedule's seed, so a resumed run
/// sees the data an uninterrupted one would), validating on `valid` after each epoch, with the
/// metrics `metrics` registers. Checkpoints go to `run_dir`. Returns `None` when `session`
/// stops before the schedule's last epoch.
///
/// With several `devices`, burn's multi-device Learner runs one worker per device: each gets a
/// contiguous shard of the training set and `1/n` of every batch, and the optimizer averages
/// their summed gradients, so a step sees the same global batch size and schedule as on one
/// device. Validation and checkpoints stay on the first device.
///
/// In a world of several ranks ([`crate::train::world`], MPI), the ranks first agree on the
/// trainable parameters and start from rank 0's; each rank trains on its part of the shards
/// (see [`EpochLoader::rank_part`]) and every step sums the gradients over the ranks, so n ranks
/// of m devices take the steps one process with n·m devices would.
#[allow(clippy::too_many_arguments)]
pub fn fit<B, M, I, J>(
    run_dir: &Path,
    session: Session,
    schedule: Schedule,
    devices: &[B::Device],
    mut model: M,
    train: EpochLoader<B, I, M::Input>,
    valid: EpochLoader<B::InnerBackend, J, <M::InnerModule as InferenceStep>::Input>,
    metrics: impl FnOnce(SupervisedTraining<Components<B, M>>) -> SupervisedTraining<Components<B, M>>,
) -> Result<Option<Fitted<M::InnerModule>>>
where
    B: AutodiffBackend,
    M: TrainStep + AutodiffModule<B> + std::fmt::Display + 'static,
    M::InnerModule: InferenceStep,
    M::Input: Send + 'static,
    <M::InnerModule as InferenceStep>::Input: Send + 'static,
    I: Send + Sync + 'static,
    J: Send + Sync + 'static,
{
    schedule.validate()?;
    ensure_space(run_dir, checkpoint_bytes(&model).saturating_sub(existing_checkpoint_bytes(run_dir)))?;
    let finished = finished_epochs(run_dir, session)?;
    let world = crate::train::world();
    let local = devices.len().max(1);
    let workers = data_parallel_workers(local);
    check_workers(run_dir, workers, finished)?;
    if world.size() > 1 {
        agree(&*world, &[("trainable parameters", trainable_layout(&model)), ("devices per rank", local.to_string())])?;
        model = broadcast_trainable(&*world, model);
    }
    let items = train.num_items();
    let train = train.shuffled(schedule.seed, finished).sharded(workers)?.rank_part(world.rank(), world.size());
    let steps_per_epoch = train.steps_per_epoch(local);
    let kept = train.num_items() * world.size();
    if kept < items {
        println!(
            "{workers} workers take equal shards: {} of the {items} training items are left out, {steps_per_epoch} steps per epoch",
            items - kept
        );
    }
    let total_steps = schedule.epochs * steps_per_epoch;
    // The warmup keeps its share of the schedule when the shards cut the epoch.
    let warmup_steps = schedule.warmup_steps * steps_per_epoch / schedule.steps_per_epoch.max(1);
    let lr = WarmupCosine::new(schedule.lr, warmup_steps, total_steps);
    let optimizer = SelectiveDecayAdamW::new(schedule.weight_decay).with_workers(workers).with_world(world);
    let learner = Learner::new(model, optimizer, lr);
    // Warnings go through the `log` crate to whatever logger the binary installed (stderr for
    // ours), not into burn's `experiment.log`, which would take over the process's logging.
    let mut training = SupervisedTraining::new(run_dir, Arc::new(train), Arc::new(valid))
        .with_file_checkpointer(CheckpointRecorder::default())
        .with_application_logger(None);
    if devices.len() > 1 {
        training = training.with_training_strategy(ExecutionStrategy::multi(devices.to_vec(), MultiDeviceOptim::OptimSharded).into());
    }
    let divergence = Default::default();
    let logger = SessionLogger::new(run_dir, finished, training.interrupter(), Arc::clone(&divergence));
    let training = session.configure(metrics(training.with_metric_logger(logger)), schedule.epochs, finished);
    let start = Instant::now();
    let result = training.launch(learner);
    let train_seconds = start.elapsed().as_secs_f64();
    drop(result.renderer);
    if let Some((epoch, iteration, loss)) = *divergence.lock().expect("not poisoned") {
        // The diverging epoch's checkpoint holds the weights that went non-finite, and when the
        // first step of an epoch diverged, so do the previous epoch's.
        discard_checkpoints_from(run_dir, if iteration <= 1 { epoch - 1 } else { epoch })?;
        let resume_after = last_checkpoint(run_dir).ok();
        return Err(PeftError::NonFiniteLoss { epoch, iteration, loss, resume_after });
    }
    let last = session.last_epoch(schedule.epochs);
    if last < schedule.epochs {
        println!("stopped after epoch {last} of {}; `--resume` continues", schedule.epochs);
        return Ok(None);
    }
    Ok(Some(Fitted {
        model: result.model,
        train_seconds,
        trained_epochs: last.saturating_sub(finished),
        world_size: workers,
    }))
}

/// The run's worker count, recorded when it starts: a resumed run needs as many (its shards, and
/// so its data order and schedule, depend on them). Runs from before the record resume as given.
fn check_workers(run_dir: &Path, workers: usize, finished: usize) -> Result<()> {
    let path = run_dir.join(WORKERS_FILE);
    if finished == 0 {
        return crate::io::write_atomic(&path, workers.to_string().as_bytes());
    }
    let Ok(text) = std::fs::read_to_string(&path) else { return Ok(()) };
    match text.trim().parse::<usize>() {
        Ok(stored) if stored == workers => Ok(()),
        Ok(stored) => Err(PeftError::InvalidConfig(format!(
            "{} was trained by {stored} data-parallel worker(s); resume it with as many (`--devices` times MPI ranks), not {workers}",
            run_dir.display()
        ))),
        Err(_) => Err(PeftError::BadConfigFile { path, message: format!("`{}` is not a worker count", text.trim()) }),
    }
}

/// The process's peak resident set (VmHWM, Linux), in MiB.
pub fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
