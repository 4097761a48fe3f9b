//! A run directory's identity: its `config.json`. A fresh run refuses a directory that holds
//! another run (unless told to overwrite it), and a resumed one refuses a config that differs
//! from the stored one, naming each difference.

use std::path::Path;

use burn::config::Config;
use serde_json::Value;

use crate::error::{PeftError, Result};
use crate::train::Session;

/// The run's configuration file, from which `--resume` and evaluation rebuild the run.
pub const CONFIG_FILE: &str = "config.json";

/// What burn's Learner keeps in a run directory: replaced by an overwriting fresh run.
const LEARNER_STATE: [&str; 4] = ["checkpoint", "train", "valid", "experiment.log"];

/// Prepares `run_dir` for `config` under `session`: a fresh run writes `config.json` (after
/// clearing a previous run's state with `overwrite`); a resumed run checks it against `config`.
pub fn start_run(run_dir: &Path, config: &(impl Config + std::fmt::Display), session: Session) -> Result<()> {
    let path = run_dir.join(CONFIG_FILE);
    let text = config.to_string();
    if session.resume {
        let stored = std::fs::read_to_string(&path).map_err(|source| PeftError::io(&path, source))?;
        let differences = differences(&parse(&path, &stored)?, &parse(&path, &text)?);
        if !differences.is_empty() {
            return Err(PeftError::ResumeMismatch { path, differences: differences.join("; ") });
        }
        return Ok(());
    }
    if path.exists() {
        if !session.overwrite {
            return Err(PeftError::RunExists { dir: run_dir.to_path_buf() });
        }
        for name in LEARNER_STATE.iter().chain([&CONFIG_FILE]) {
            let stale = run_dir.join(name);
            let removed = if stale.is_dir() { std::fs::remove_dir_all(&stale) } else { std::fs::remove_file(&stale) };
            match removed {
                Err(source) if source.kind() != std::io::ErrorKind::NotFound => return Err(PeftError::io(stale, source)),
                _ => {}
            }
        }
    }
    std::fs::create_dir_all(run_dir).map_err(|source| PeftError::io(run_dir, source))?;
    crate::io::write_atomic(&path, text.as_bytes())
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
