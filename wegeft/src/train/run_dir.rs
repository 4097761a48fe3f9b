//! A run directory's identity: its `config.json`. A fresh run refuses a directory that holds
//! another run (unless told to overwrite it, which replaces the whole directory's contents), a
//! resumed one refuses a config that differs from the stored one, naming each difference, and
//! one process at a time holds the directory (a lock the OS releases when the process ends).
//!
//! With several ranks (MPI), they first agree on the config and the input files, rank 0 alone
//! holds and writes the run directory, and every other rank works in a scratch copy that holds
//! what a resume needs from rank 0's (the top-level files and the last complete checkpoint).

use std::path::Path;

use burn::config::Config;
use serde_json::Value;

use crate::error::{PeftError, Result};
use crate::train::{agree, rank0_decides, world, Session};

/// The run's configuration file, from which `--resume` and evaluation rebuild the run.
pub const CONFIG_FILE: &str = "config.json";

/// The lock file a running process holds in its run directory.
const LOCK_FILE: &str = ".lock";

/// A run directory held by this process until dropped.
#[derive(Debug)]
struct RunLock {
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

/// The directory a rank writes a run into: the run directory itself (held) on rank 0, a scratch
/// copy on the others, removed when dropped.
#[derive(Debug)]
pub struct RunDir {
    path: std::path::PathBuf,
    lock: Option<RunLock>,
}

impl RunDir {
    /// Where this rank writes the run.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if self.lock.is_none() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Prepares `run_dir` for `config` under `session` (see [`start_here`]); with several ranks, after
/// they agree on `config` and the names and sizes of the `inputs`' files, on rank 0, with the
/// others in a scratch copy.
pub fn start_run(run_dir: &Path, config: &(impl Config + std::fmt::Display), session: Session, inputs: &[&Path]) -> Result<RunDir> {
    let world = world();
    if world.size() > 1 {
        let sizes: serde_json::Map<String, Value> = fingerprint(inputs)?.into_iter().map(|(file, stamp)| (file, stamp["bytes"].clone())).collect();
        agree(&*world, &[("config", config.to_string()), ("input files", Value::Object(sizes).to_string())])?;
    }
    let mut lock = None;
    let mut mirror = Vec::new();
    rank0_decides(&*world, "the start of the run directory", || {
        lock = Some(start_here(run_dir, config, session, inputs)?);
        if world.size() > 1 && session.resume {
            mirror = pack_resume_files(run_dir)?;
        }
        Ok(())
    })?;
    if world.size() == 1 {
        return Ok(RunDir { path: run_dir.to_path_buf(), lock });
    }
    let mirror = world.broadcast("the resume files of rank 0's run directory", mirror);
    if world.rank() == 0 {
        return Ok(RunDir { path: run_dir.to_path_buf(), lock });
    }
    let scratch = scratch_dir(world.rank())?;
    unpack_files(&scratch.path, &mirror)?;
    Ok(scratch)
}

/// A fresh, empty scratch directory for one run of rank `rank`.
fn scratch_dir(rank: usize) -> Result<RunDir> {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let path = std::env::temp_dir().join(format!("wegeft-rank{rank}-{}-{run}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path).map_err(|source| PeftError::io(&path, source))?;
    Ok(RunDir { path, lock: None })
}

/// The files a resumed run reads from its directory, packed as (name length, name, data length,
/// data) each: the top-level files and the last complete checkpoint set.
fn pack_resume_files(run_dir: &Path) -> Result<Vec<u8>> {
    let mut files: Vec<std::path::PathBuf> = Vec::new();
    let entries = std::fs::read_dir(run_dir).map_err(|source| PeftError::io(run_dir, source))?;
    files.extend(entries.flatten().map(|entry| entry.path()).filter(|path| path.is_file() && !path.ends_with(LOCK_FILE)));
    if let Ok(epoch) = crate::train::last_checkpoint(run_dir) {
        files.extend(["model", "optim", "scheduler"].map(|kind| run_dir.join("checkpoint").join(format!("{kind}-{epoch}.mpk"))));
    }
    let mut packed = Vec::new();
    for file in files {
        let name = file.strip_prefix(run_dir).expect("under the run directory").to_string_lossy().into_owned();
        let data = std::fs::read(&file).map_err(|source| PeftError::io(&file, source))?;
        for part in [name.as_bytes(), &data] {
            packed.extend((part.len() as u64).to_le_bytes());
            packed.extend(part);
        }
    }
    Ok(packed)
}

/// Writes the files [`pack_resume_files`] packed under `dir`.
fn unpack_files(dir: &Path, mut packed: &[u8]) -> Result<()> {
    fn take(packed: &mut &[u8]) -> Option<Vec<u8>> {
        let length = u64::from_le_bytes(packed.get(..8)?.try_into().ok()?) as usize;
        let part = packed.get(8..8 + length)?.to_vec();
        *packed = &packed[8 + length..];
        Some(part)
    }
    while !packed.is_empty() {
        let (Some(name), Some(data)) = (take(&mut packed), take(&mut packed)) else {
            return Err(PeftError::InvalidConfig("rank 0's run files arrived cut short".into()));
        };
        let path = dir.join(String::from_utf8_lossy(&name).as_ref());
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| PeftError::io(parent, source))?;
        }
        crate::io::write_atomic(&path, &data)?;
    }
    Ok(())
}

/// Prepares `run_dir` for `config` under `session` and holds it: a fresh run writes
/// `config.json` (with `overwrite`, after removing everything a previous run left, so the
/// directory is never half one run and half the other) and the fingerprint of its `inputs` (the
/// data and weight files; a directory stands for the files in it); a resumed run checks both, and
/// that the directory is writable.
fn start_here(run_dir: &Path, config: &(impl Config + std::fmt::Display), session: Session, inputs: &[&Path]) -> Result<RunLock> {
    let path = run_dir.join(CONFIG_FILE);
    let text = config.to_string();
    if session.resume {
        let stored = std::fs::read_to_string(&path).map_err(|source| PeftError::io(&path, source))?;
        let differences = differences(&parse(&path, &stored)?, &parse(&path, &text)?, |stored, given| format!("{stored} → {given}"));
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

/// `key: pair(stored, given)` for every top-level key whose value differs (`pair` says how the
/// two values are shown; two values that are not objects are one pair).
pub(crate) fn differences(stored: &Value, given: &Value, pair: impl Fn(String, String) -> String) -> Vec<String> {
    let (Value::Object(stored), Value::Object(given)) = (stored, given) else {
        return vec![pair(stored.to_string(), given.to_string())];
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
            format!("{key}: {}", pair(show(stored.get(key)), show(given.get(key))))
        })
        .collect()
}
