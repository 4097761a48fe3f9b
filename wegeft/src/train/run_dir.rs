//! A run directory's identity: its `config.json`. A fresh run refuses a directory that holds
//! another run (unless told to overwrite it, which replaces the whole directory's contents), a
//! resumed one refuses a config that differs from the stored one, naming each difference, and
//! one process at a time holds the directory (a lock the OS releases when the process ends).

use std::path::Path;

use burn::config::Config;
use serde_json::Value;

use crate::error::{PeftError, Result};
use crate::train::Session;

/// The run's configuration file, from which `--resume` and evaluation rebuild the run.
pub const CONFIG_FILE: &str = "config.json";

/// The lock file a running process holds in its run directory.
const LOCK_FILE: &str = ".lock";

/// A run directory held by this process until dropped.
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

impl RunLock {
    /// Takes `run_dir` (created if missing), or fails naming it when another process holds it.
    pub fn acquire(run_dir: &Path) -> Result<Self> {
        if let Some(blocked) = run_dir.ancestors().find(|dir| dir.symlink_metadata().is_ok() && !dir.is_dir()) {
            let problem = format!("{}: exists but is not a directory (a file, or a symbolic link to nowhere or to itself)", blocked.display());
            return Err(PeftError::InvalidConfig(problem));
        }
        std::fs::create_dir_all(run_dir).map_err(|source| PeftError::io(run_dir, source))?;
        let path = run_dir.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(|source| PeftError::io(&path, source))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(PeftError::RunLocked { dir: run_dir.to_path_buf() }),
            Err(std::fs::TryLockError::Error(source)) => Err(PeftError::io(path, source)),
        }
    }
}

/// Prepares `run_dir` for `config` under `session` and holds it: a fresh run writes
/// `config.json` (with `overwrite`, after removing everything a previous run left, so the
/// directory is never half one run and half the other) and the fingerprint of its `inputs` (the
/// data and weight files; a directory stands for the files in it); a resumed run checks both, and
/// that the directory is writable.
pub fn start_run(run_dir: &Path, config: &(impl Config + std::fmt::Display), session: Session, inputs: &[&Path]) -> Result<RunLock> {
    let path = run_dir.join(CONFIG_FILE);
    let text = config.to_string();
    if session.resume {
        let stored = std::fs::read_to_string(&path).map_err(|source| PeftError::io(&path, source))?;
        let differences = differences(&parse(&path, &stored)?, &parse(&path, &text)?);
        if !differences.is_empty() {
            return Err(PeftError::ResumeMismatch { path, differences: differences.join("; ") });
        }
        let lock = RunLock::acquire(run_dir)?;
        // burn's logger panics on a directory it cannot write: find out first.
        crate::io::write_atomic(&path, stored.as_bytes())?;
        check_inputs(run_dir, inputs)?;
        return Ok(lock);
    }
    if path.exists() && !session.overwrite {
        let resumable = crate::train::last_checkpoint(run_dir).is_ok();
        return Err(PeftError::RunExists { dir: run_dir.to_path_buf(), resumable });
    }
    let lock = RunLock::acquire(run_dir)?;
    if session.overwrite {
        clear(run_dir)?;
    }
    crate::io::write_atomic(&path, text.as_bytes())?;
    let fingerprint = serde_json::to_string_pretty(&fingerprint(inputs)?).expect("JSON");
    crate::io::write_atomic(&run_dir.join(INPUTS_FILE), fingerprint.as_bytes())?;
    Ok(lock)
}

/// The fingerprint of a run's input files, beside its config.
const INPUTS_FILE: &str = "inputs.json";

/// Size and modification time of every file of `inputs`, by path.
fn fingerprint(inputs: &[&Path]) -> Result<serde_json::Map<String, Value>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let entries = std::fs::read_dir(input).map_err(|source| PeftError::io(*input, source))?;
            files.extend(entries.flatten().map(|entry| entry.path()).filter(|path| path.is_file()));
        } else {
            files.push(input.to_path_buf());
        }
    }
    let mut map = serde_json::Map::new();
    for file in files {
        let metadata = std::fs::metadata(&file).map_err(|source| PeftError::io(&file, source))?;
        let modified = metadata.modified().ok().and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |age| age.as_nanos());
        map.insert(file.display().to_string(), serde_json::json!({"bytes": metadata.len(), "modified_ns": modified.to_string()}));
    }
    Ok(map)
}

/// Fails when an input file of the run changed since it started (runs from before fingerprints
/// resume as they are).
fn check_inputs(run_dir: &Path, inputs: &[&Path]) -> Result<()> {
    let path = run_dir.join(INPUTS_FILE);
    let Ok(text) = std::fs::read_to_string(&path) else { return Ok(()) };
    let Value::Object(stored) = parse(&path, &text)? else {
        return Err(PeftError::BadConfigFile { path, message: "expected a JSON object".into() });
    };
    let now = fingerprint(inputs)?;
    let changed: Vec<&String> = stored.keys().chain(now.keys()).filter(|file| stored.get(*file) != now.get(*file)).collect();
    match changed.first() {
        None => Ok(()),
        Some(file) => Err(PeftError::InvalidConfig(format!(
            "{file} changed since the run started (size or modification time): resuming would train on other data or weights; start a new run, or `--overwrite` this one"
        ))),
    }
}

/// Removes everything in `run_dir` but its lock.
fn clear(run_dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(run_dir).map_err(|source| PeftError::io(run_dir, source))?;
    for entry in entries {
        let entry = entry.map_err(|source| PeftError::io(run_dir, source))?;
        if entry.file_name() == LOCK_FILE {
            continue;
        }
        let stale = entry.path();
        let removed = if stale.is_dir() && !stale.is_symlink() { std::fs::remove_dir_all(&stale) } else { std::fs::remove_file(&stale) };
        removed.map_err(|source| PeftError::io(stale, source))?;
    }
    Ok(())
}

fn parse(path: &Path, text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|error| PeftError::BadConfigFile {
        path: path.to_path_buf(),
        message: error.to_string(),
    })
}

/// `key: stored → given` for every top-level key whose value differs.
fn differences(stored: &Value, given: &Value) -> Vec<String> {
    let (Value::Object(stored), Value::Object(given)) = (stored, given) else {
        return vec![format!("{stored} → {given}")];
    };
    let mut keys: Vec<&String> = stored.keys().chain(given.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        // An absent key is a null one: a setting added later (`None` by default) leaves the
        // runs written before it resumable.
        .filter(|key| stored.get(*key).unwrap_or(&Value::Null) != given.get(*key).unwrap_or(&Value::Null))
        .map(|key| {
            let show = |value: Option<&Value>| value.map_or_else(|| "(absent)".to_string(), Value::to_string);
            format!("{key}: {} → {}", show(stored.get(key)), show(given.get(key)))
        })
        .collect()
}
