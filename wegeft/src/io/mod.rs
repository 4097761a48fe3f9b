//! Adapter files: a directory with `adapter_config.json` and `adapter_model.safetensors`,
//! holding the adapter alone (never the base model). See [`keys`] for the tensor names.

mod atomic;
mod bank_tensors;
mod config_file;
pub mod keys;
mod peft_export;
mod store;
mod tensors;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;

pub use atomic::write_atomic;
pub use config_file::{FileDescription, FORMAT_VERSION};
pub use peft_export::export_peft;
pub use store::{Init, Scope, WeightStore};
pub(crate) use bank_tensors::file_layout;
pub use tensors::{read_safetensors, write_safetensors, StoredTensor};

use crate::bank::AdapterBank;
use crate::error::{PeftError, Result};
use crate::plan::AdapterPlan;

/// File name of the adapter's configuration.
pub const CONFIG_FILE: &str = "adapter_config.json";
/// File name of the adapter's tensors.
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";

/// Writes `bank` to `dir` (created if missing); each file is replaced atomically. An empty bank
/// is an error: there is nothing to save.
pub fn save_adapter<B: Backend>(bank: &AdapterBank<B>, dir: impl AsRef<Path>) -> Result<()> {
    let plan = bank.plan().ok_or(PeftError::EmptyBank)?;
    write_adapter_dir(dir.as_ref(), plan, &bank_tensors::bank_tensors(bank, plan))
}

pub(crate) fn write_adapter_dir(
    dir: &Path,
    plan: &AdapterPlan,
    tensors: &BTreeMap<String, StoredTensor>,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| PeftError::io(dir, source))?;
    write_safetensors(&dir.join(WEIGHTS_FILE), tensors)?;
    let config = serde_json::to_string_pretty(&config_file::to_json(plan)).expect("JSON value");
    atomic::write_atomic(&dir.join(CONFIG_FILE), config.as_bytes())
}

/// An adapter directory read into memory, not yet applied to a model.
#[derive(Debug)]
pub struct AdapterFile {
    /// The directory it was read from.
    pub dir: PathBuf,
    /// What its config says.
    pub description: FileDescription,
    /// Its tensors, as f32.
    pub tensors: BTreeMap<String, StoredTensor>,
    /// Things worth telling the user that did not stop the load (unknown config keys).
    pub warnings: Vec<String>,
}

impl AdapterFile {
    /// Reads and parses `dir/adapter_config.json` and `dir/adapter_model.safetensors`.
    pub fn read(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let config_path = dir.join(CONFIG_FILE);
        let text =
            std::fs::read_to_string(&config_path).map_err(|source| PeftError::io(&config_path, source))?;
        let mut warnings = Vec::new();
        let description = config_file::parse(&config_path, &text, &mut warnings)?;
        let tensors = read_safetensors(&dir.join(WEIGHTS_FILE))?;
        Ok(Self {
            dir,
            description,
            tensors,
            warnings,
        })
    }

    /// Puts the file's tensors into `bank`, strictly: the adapter must be for the bank's plan, and
    /// every tensor must be present, expected and of the right shape.
    pub fn apply<B: Backend>(&self, bank: AdapterBank<B>) -> Result<AdapterBank<B>> {
        let plan = bank.plan().ok_or(PeftError::EmptyBank)?.clone();
        self.check_fits(&plan)?;
        let path = self.dir.join(WEIGHTS_FILE);
        let expected = bank_tensors::expected_shapes(&plan);
        for (key, shape) in &expected {
            match self.tensors.get(key) {
                None => {
                    return Err(PeftError::MissingTensor {
                        path,
                        key: key.clone(),
                        expected: shape.clone(),
                    })
                }
                Some(tensor) if &tensor.shape != shape => {
                    return Err(PeftError::ShapeMismatch {
                        path,
                        key: key.clone(),
                        expected: shape.clone(),
                        found: tensor.shape.clone(),
                    })
                }
                Some(_) => {}
            }
        }
        if let Some((key, tensor)) = self.tensors.iter().find(|(key, _)| !expected.contains_key(*key)) {
            return Err(PeftError::UnexpectedTensor {
                path,
                key: key.clone(),
                shape: tensor.shape.clone(),
            });
        }
        Ok(bank_tensors::bank_with_tensors(bank, &plan, &self.tensors))
    }

    fn check_fits(&self, plan: &AdapterPlan) -> Result<()> {
        let mismatch = |detail: String| PeftError::ConfigMismatch {
            path: self.dir.join(CONFIG_FILE),
            detail,
        };
        let (theirs, method) = (self.description.method(), &plan.method);
        if theirs.name() != method.name() {
            return Err(mismatch(format!("it is a {} adapter, the model was built for {}", theirs.name(), method.name())));
        }
        let (rank, scale) = (theirs.rank(), theirs.scale());
        if rank != method.rank() || (scale - method.scale()).abs() > 1e-9 * scale.abs().max(1.0) {
            return Err(mismatch(format!(
                "it has rank {rank} and scale {scale}, the model expects rank {} and scale {}",
                method.rank(),
                method.scale()
            )));
        }
        if let FileDescription::Plan(file) = &self.description {
            let differs = file.layers.iter().zip(&plan.layers).find(|(a, b)| a != b);
            if let Some((theirs, ours)) = differs {
                return Err(mismatch(format!("it adapts {theirs:?} where the model has {ours:?}")));
            }
            if file.layers.len() != plan.layers.len() {
                return Err(mismatch(format!(
                    "it adapts {} layers, the model {}",
                    file.layers.len(),
                    plan.layers.len()
                )));
            }
        }
        Ok(())
    }
}

/// Reads `path` as JSON into `T`; errors name the file and the line.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| PeftError::io(path, source))?;
    serde_json::from_str(&text).map_err(|error| PeftError::BadConfigFile {
        path: path.to_path_buf(),
        message: error.to_string(),
    })
}

/// Writes `value` as pretty JSON to `path`, atomically.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|error| PeftError::BadConfigFile {
        path: path.to_path_buf(),
        message: error.to_string(),
    })?;
    write_atomic(path, text.as_bytes())
}

/// Reads the adapter in `dir` into `bank` (see [`AdapterFile::apply`]); warnings go to the log.
pub fn load_adapter<B: Backend>(bank: AdapterBank<B>, dir: impl AsRef<Path>) -> Result<AdapterBank<B>> {
    let file = AdapterFile::read(dir)?;
    for warning in &file.warnings {
        log::warn!("{warning}");
    }
    file.apply(bank)
}
