//! Where a ViT's pretrained tensors come from: a timm-layout safetensors checkpoint, or random init.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor, TensorData};
use wegeft::io::{read_safetensors, StoredTensor};

use crate::error::{Result, VisionError};

/// How a tensor is initialised when no checkpoint provides it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Init {
    Normal(f64),
    Zeros,
    Ones,
    Constant(f64),
}

/// Tensors by timm name, in PyTorch layout; every model weight is taken from here once.
#[derive(Debug)]
pub enum WeightSource {
    /// Fresh random weights (timm's init conventions).
    Random,
    /// A checkpoint: every tensor the model needs must be present with the right shape, and
    /// every tensor in the file must be used.
    Checkpoint {
        /// The file, for error messages.
        file: PathBuf,
        /// Its tensors.
        tensors: BTreeMap<String, StoredTensor>,
        /// Keys taken so far, or deliberately skipped.
        used: BTreeSet<String>,
    },
}

impl WeightSource {
    /// Reads a timm / Hugging Face `model.safetensors`.
    pub fn safetensors(path: impl AsRef<Path>) -> Result<Self> {
        let file = path.as_ref().to_path_buf();
        let tensors = read_safetensors(&file)?;
        Ok(Self::Checkpoint {
            file,
            tensors,
            used: BTreeSet::new(),
        })
    }

    /// Whether the checkpoint has `key` with `shape` (always false for random weights).
    pub(crate) fn has(&self, key: &str, shape: &[usize]) -> bool {
        matches!(self, Self::Checkpoint { tensors, .. } if tensors.get(key).is_some_and(|t| t.shape == shape))
    }

    /// Marks checkpoint tensors under `prefix` as deliberately unused (a replaced head).
    pub(crate) fn skip(&mut self, prefix: &str) {
        if let Self::Checkpoint { tensors, used, .. } = self {
            used.extend(tensors.keys().filter(|k| k.starts_with(prefix)).cloned());
        }
    }

    /// The tensor `key` with PyTorch shape `shape`.
    pub(crate) fn tensor<B: Backend, const D: usize>(
        &mut self,
        key: &str,
        shape: [usize; D],
        init: Init,
        device: &B::Device,
    ) -> Result<Tensor<B, D>> {
        match self {
            Self::Random => Ok(match init {
                Init::Normal(std) => Tensor::random(shape, Distribution::Normal(0.0, std), device),
                Init::Zeros => Tensor::zeros(shape, device),
                Init::Ones => Tensor::ones(shape, device),
                Init::Constant(value) => Tensor::full(shape, value, device),
            }),
            Self::Checkpoint { file, tensors, used } => {
                let stored = tensors.get(key).ok_or_else(|| VisionError::MissingWeight {
                    file: file.clone(),
                    key: key.to_string(),
                    expected: shape.to_vec(),
                })?;
                if stored.shape != shape {
                    return Err(VisionError::WeightShape {
                        file: file.clone(),
                        key: key.to_string(),
                        expected: shape.to_vec(),
                        found: stored.shape.clone(),
                    });
                }
                used.insert(key.to_string());
                Ok(Tensor::from_data(TensorData::new(stored.values.clone(), shape), device))
            }
        }
    }

    /// Fails if the checkpoint holds tensors the model never took.
    pub(crate) fn finish(self) -> Result<()> {
        if let Self::Checkpoint { file, tensors, used } = self {
            let unused: Vec<&String> = tensors.keys().filter(|k| !used.contains(*k)).collect();
            if let Some(example) = unused.first() {
                return Err(VisionError::UnusedWeights {
                    file,
                    count: unused.len(),
                    example: example.to_string(),
                });
            }
        }
        Ok(())
    }
}
