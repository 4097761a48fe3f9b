//! How far one invocation of a training run goes, and where a resumed one picks up: the last
//! epoch whose model, optimizer and scheduler checkpoints were all written.

use std::io::IsTerminal;
use std::path::Path;

use burn::train::{LearningComponentsTypes, SupervisedTraining};

use crate::error::PeftError;
use crate::train::LineRenderer;

/// How far this invocation goes, and what it may do with a run directory that is not empty.
#[derive(Clone, Copy, Debug, Default)]
pub struct Session {
    /// Continue from the run directory's last complete checkpoint; the stored config must match.
    pub resume: bool,
    /// Stop after this many epochs in total (the schedule still spans all of them); a later
    /// `resume` finishes the run.
    pub stop_after: Option<usize>,
    /// Start afresh in a directory that holds a previous run, replacing its state.
    pub overwrite: bool,
}

impl Session {
    /// The epoch this invocation stops after: the last, or `stop_after`.
    pub fn last_epoch(&self, total_epochs: usize) -> usize {
        self.stop_after.map_or(total_epochs, |stop| stop.min(total_epochs))
    }

    /// Points `training` at this session: trains to [`Self::last_epoch`], resumes after
    /// `finished_epochs` (0: a fresh run), and prints progress lines when stdout is not a
    /// terminal (burn's TUI needs one) or is shared by ranks (MPI launchers hand them a pty).
    pub fn configure<LC: LearningComponentsTypes>(&self, training: SupervisedTraining<LC>, total_epochs: usize, finished_epochs: usize) -> SupervisedTraining<LC> {
        let mut training = training.num_epochs(self.last_epoch(total_epochs));
        if !std::io::stdout().is_terminal() || crate::train::world().size() > 1 {
            training = training.renderer(LineRenderer::default());
        }
        if finished_epochs > 0 {
            println!("resuming after epoch {finished_epochs}");
            training = training.checkpoint(finished_epochs);
        }
        training
    }
}

/// The last epoch with a complete checkpoint (model, optimizer and scheduler, each written
/// atomically) under `run_dir`; later epochs with a partial set are skipped, and said so.
pub fn last_checkpoint(run_dir: &Path) -> Result<usize, PeftError> {
    let dir = run_dir.join("checkpoint");
    let no_checkpoint = || PeftError::NoCheckpoint { dir: dir.clone() };
    let entries = std::fs::read_dir(&dir).map_err(|_| no_checkpoint())?;
    let mut epochs: Vec<usize> = entries
        .filter_map(|entry| checkpoint_epoch(&entry.ok()?.file_name().into_string().ok()?))
        .collect();
    epochs.sort_unstable();
    epochs.dedup();
    let complete = |epoch: &usize| ["model", "optim", "scheduler"].iter().all(|kind| dir.join(format!("{kind}-{epoch}.mpk")).is_file());
    let last = epochs.iter().copied().filter(complete).max().ok_or_else(no_checkpoint)?;
    for partial in epochs.iter().filter(|&&epoch| epoch > last) {
        eprintln!("{}: epoch {partial}'s checkpoint is incomplete (interrupted while writing); resuming after epoch {last}", dir.display());
    }
    Ok(last)
}

/// Removes the checkpoint sets of `from` and every later epoch under `run_dir`: after a loss
/// turned non-finite they hold the weights that produced it, and `--resume` must not start there.
pub fn discard_checkpoints_from(run_dir: &Path, from: usize) -> Result<(), PeftError> {
    let dir = run_dir.join("checkpoint");
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(()) };
    for entry in entries.flatten() {
        if checkpoint_epoch(&entry.file_name().to_string_lossy()).is_some_and(|epoch| epoch >= from) {
            std::fs::remove_file(entry.path()).map_err(|source| PeftError::io(entry.path(), source))?;
        }
    }
    Ok(())
}

/// The epoch of a checkpoint file's name (`model-3.mpk` → 3).
fn checkpoint_epoch(name: &str) -> Option<usize> {
    let (_, epoch) = name.strip_suffix(".mpk")?.rsplit_once('-')?;
    epoch.parse().ok()
}
