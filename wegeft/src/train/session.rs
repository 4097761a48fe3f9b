//! How far one invocation of a training run goes, and where a resumed one picks up: the last
//! epoch whose model, optimizer and scheduler checkpoints were all written.

use std::path::Path;

use crate::error::PeftError;

/// How far this invocation goes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Session {
    /// Continue from the run directory's last complete checkpoint.
    pub resume: bool,
    /// Stop after this many epochs in total (the schedule still spans all of them); a later
    /// `resume` finishes the run.
    pub stop_after: Option<usize>,
}

/// The last epoch with a complete checkpoint (model, optimizer, scheduler) under `run_dir`.
pub fn last_checkpoint(run_dir: &Path) -> Result<usize, PeftError> {
    let dir = run_dir.join("checkpoint");
    let complete = |epoch: usize| ["model", "optim", "scheduler"].iter().all(|kind| dir.join(format!("{kind}-{epoch}.mpk")).is_file());
    let entries = std::fs::read_dir(&dir).map_err(|source| PeftError::Io { path: dir.clone(), source })?;
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.strip_prefix("model-")?.strip_suffix(".mpk")?.parse().ok())
        .filter(|&epoch| complete(epoch))
        .max()
        .ok_or(PeftError::NoCheckpoint { dir })
}
