//! Where a model's pretrained tensors come from: one store of named tensors in PyTorch layout,
//! filled by a front-end (safetensors files, a GGUF or ONNX converter) or drawing random weights.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor, TensorData};

use super::tensors::{read_safetensors, StoredTensor};
use crate::error::{PeftError, Result};
use crate::injector::Injector;
use crate::layer::PeftLinear;
use crate::packed::PackedWeight;

/// How a tensor is drawn when the store holds random weights.
#[derive(Clone, Copy, Debug)]
pub enum Init {
    /// Normal(0, std).
    Normal(f64),
    /// All zeros.
    Zeros,
    /// All ones.
    Ones,
    /// Every element the same value.
    Constant(f64),
}

/// Tensors by name, each handed out once; strict at the end ([`WeightStore::finish`]): a model
/// built from a checkpoint must take every tensor in it, with the shape it expects.
#[derive(Debug)]
pub struct WeightStore {
    /// The file(s) the tensors came from, for error messages; `None` for random weights.
    origin: Option<PathBuf>,
    tensors: BTreeMap<String, StoredTensor>,
    /// Linear weights kept in their file's quantisation blocks, by key (`….weight`).
    packed: BTreeMap<String, Arc<PackedWeight>>,
    /// Checkpoint tensors deliberately left unused (a replaced head).
    skipped: BTreeSet<String>,
}

impl WeightStore {
    /// Fresh random weights, drawn as each tensor's [`Init`] says (tests, training from scratch).
    pub fn random() -> Self {
        Self { origin: None, tensors: BTreeMap::new(), packed: BTreeMap::new(), skipped: BTreeSet::new() }
    }

    /// Tensors a front-end has read (and renamed) from `origin`.
    pub fn from_tensors(origin: impl Into<PathBuf>, tensors: BTreeMap<String, StoredTensor>) -> Self {
        Self { origin: Some(origin.into()), tensors, packed: BTreeMap::new(), skipped: BTreeSet::new() }
    }

    /// The store with linear weights kept packed (`….weight` keys): [`Scope::peft_linear`] builds
    /// those layers on the blocks instead of a float tensor.
    pub fn with_packed(mut self, packed: BTreeMap<String, Arc<PackedWeight>>) -> Self {
        self.packed = packed;
        self
    }

    /// One safetensors file, or the shards of one checkpoint (their names must not collide).
    pub fn safetensors(files: &[PathBuf]) -> Result<Self> {
        let origin = files.first().cloned().unwrap_or_default();
        let mut tensors = BTreeMap::new();
        for file in files {
            for (key, tensor) in read_safetensors(file)? {
                if tensors.insert(key.clone(), tensor).is_some() {
                    return Err(PeftError::BadConfigFile {
                        path: file.clone(),
                        message: format!("tensor `{key}` is also in another shard"),
                    });
                }
            }
        }
        let origin = if files.len() > 1 { origin.parent().map_or(origin.clone(), Path::to_path_buf) } else { origin };
        Ok(Self::from_tensors(origin, tensors))
    }

    /// The root scope: keys are taken as given.
    pub fn root(&mut self) -> Scope<'_> {
        Scope { store: self, prefix: String::new() }
    }

    /// Whether the store holds `key` with `shape` (always false for random weights).
    pub fn has(&self, key: &str, shape: &[usize]) -> bool {
        self.tensors.get(key).is_some_and(|tensor| tensor.shape == shape)
    }

    /// Marks the tensors under `prefix` as deliberately unused.
    pub fn skip(&mut self, prefix: &str) {
        let keys: Vec<String> = self.tensors.keys().filter(|key| key.starts_with(prefix)).cloned().collect();
        for key in keys {
            self.tensors.remove(&key);
            self.skipped.insert(key);
        }
    }

    /// Fails if tensors are left that the model never took.
    pub fn finish(self) -> Result<()> {
        let packed = self.packed.into_iter().map(|(key, weight)| (key, weight.dims().into_iter().rev().collect()));
        let mut left = self.tensors.into_iter().map(|(key, tensor)| (key, tensor.shape)).chain(packed);
        match (self.origin, left.next()) {
            (Some(path), Some((key, shape))) => Err(PeftError::UnexpectedTensor { path, key, shape }),
            _ => Ok(()),
        }
    }

    fn take<B: Backend, const D: usize>(&mut self, key: &str, shape: [usize; D], init: Init, device: &B::Device) -> Result<Tensor<B, D>> {
        let Some(path) = &self.origin else {
            return Ok(match init {
                Init::Normal(std) => Tensor::random(shape, Distribution::Normal(0.0, std), device),
                Init::Zeros => Tensor::zeros(shape, device),
                Init::Ones => Tensor::ones(shape, device),
                Init::Constant(value) => Tensor::full(shape, value, device),
            });
        };
        let missing = || PeftError::MissingTensor { path: path.clone(), key: key.to_string(), expected: shape.to_vec() };
        let stored = self.tensors.remove(key).ok_or_else(missing)?;
        if stored.shape != shape {
            return Err(PeftError::ShapeMismatch {
                path: path.clone(),
                key: key.to_string(),
                expected: shape.to_vec(),
                found: stored.shape,
            });
        }
        Ok(Tensor::from_data(TensorData::new(stored.values, shape), device))
    }
}

/// A view of a [`WeightStore`] under a key prefix (`blocks.3.` …), as a module's loader sees it.
pub struct Scope<'a> {
    store: &'a mut WeightStore,
    prefix: String,
}

impl Scope<'_> {
    /// The scope of sub-module `name`.
    pub fn sub(&mut self, name: impl std::fmt::Display) -> Scope<'_> {
        let prefix = format!("{}{name}.", self.prefix);
        Scope { store: self.store, prefix }
    }

    /// The full key of `name` in this scope.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Whether the store holds `name` with `shape` (always false for random weights).
    pub fn has(&self, name: &str, shape: &[usize]) -> bool {
        self.store.has(&self.key(name), shape)
    }

    /// Takes tensor `name` with PyTorch shape `shape` (or draws it by `init` from a random store).
    pub fn tensor<B: Backend, const D: usize>(&mut self, name: &str, shape: [usize; D], init: Init, device: &B::Device) -> Result<Tensor<B, D>> {
        self.store.take(&self.key(name), shape, init, device)
    }

    /// A parameter from tensor `name` (trainable, as burn's are by default: `no_grad` freezes it).
    pub fn param<B: Backend, const D: usize>(&mut self, name: &str, shape: [usize; D], init: Init, device: &B::Device) -> Result<Param<Tensor<B, D>>> {
        Ok(Param::from_tensor(self.tensor(name, shape, init, device)?))
    }

    /// Takes matrix `name` (PyTorch shape `[rows, cols]`) when the store keeps it in quantisation
    /// blocks; `None` when it is a float tensor or absent.
    pub fn packed(&mut self, name: &str, [rows, cols]: [usize; 2]) -> Result<Option<Arc<PackedWeight>>> {
        let key = self.key(name);
        let Some(packed) = self.store.packed.remove(&key) else { return Ok(None) };
        if packed.dims() != [cols, rows] {
            let path = self.store.origin.clone().unwrap_or_default();
            let found = packed.dims().into_iter().rev().collect();
            return Err(PeftError::ShapeMismatch { path, key, expected: vec![rows, cols], found });
        }
        Ok(Some(packed))
    }

    /// A `Linear` from PyTorch's `{name}.weight` `[d_out, d_in]` (and `{name}.bias`), trainable
    /// as burn's are by default.
    pub fn linear<B: Backend>(&mut self, name: &str, d_in: usize, d_out: usize, bias: bool, device: &B::Device) -> Result<Linear<B>> {
        let weight: Tensor<B, 2> = self.tensor(&format!("{name}.weight"), [d_out, d_in], Init::Normal(0.02), device)?;
        let bias = match bias {
            true => Some(self.param(&format!("{name}.bias"), [d_out], Init::Zeros, device)?),
            false => None,
        };
        Ok(Linear { weight: Param::from_tensor(weight.transpose().detach()), bias })
    }

    /// [`Self::linear`], frozen and offered to `injector` under its full key: adapted if targeted.
    pub fn peft_linear<B: Backend>(
        &mut self,
        injector: &mut Injector,
        name: &str,
        d_in: usize,
        d_out: usize,
        bias: bool,
        device: &B::Device,
    ) -> Result<PeftLinear<B>> {
        let key = self.key(name);
        if let Some(packed) = self.packed(&format!("{name}.weight"), [d_out, d_in])? {
            let bias = match bias {
                true => Some(self.param(&format!("{name}.bias"), [d_out], Init::Zeros, device)?.set_require_grad(false)),
                false => None,
            };
            return injector.packed_linear(&key, packed, bias, device);
        }
        let base = self.linear(name, d_in, d_out, bias, device)?;
        injector.linear(&key, base)
    }
}
