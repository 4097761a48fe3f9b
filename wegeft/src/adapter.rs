//! The parameters of one plan group, whichever method made them.

use std::collections::BTreeMap;

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::io::StoredTensor;
use crate::lora::LoraAdapter;
use crate::method::AdapterMethod;
use crate::plan::PlannedLayer;
use crate::generator::WegeftPair;

/// One group's trainable update. A new method is one more variant (and its file), which the
/// bank, adapter files and merging then dispatch to.
#[derive(Module, Debug)]
pub enum Adapter<B: Backend> {
    /// A WeGeFT (φ, ψ) pair, possibly shared by every layer of a module type.
    Wegeft(WegeftPair<B>),
    /// A LoRA (A, B) pair of one layer.
    Lora(LoraAdapter<B>),
}

impl<B: Backend> Adapter<B> {
    /// A fresh adapter (ΔW = 0) for the group whose parameters `owner` holds.
    pub(crate) fn init(method: &AdapterMethod, owner: &PlannedLayer, device: &B::Device) -> Self {
        match method {
            AdapterMethod::Wegeft(config) => Self::Wegeft(WegeftPair::init(owner.d_in, config, device)),
            AdapterMethod::Lora(config) => Self::Lora(LoraAdapter::init(owner.d_in, owner.d_out, config, device)),
        }
    }

    /// The update's contribution to the output of a layer with input `x` and frozen `weight`.
    pub fn delta_forward<const D: usize>(&self, x: Tensor<B, D>, weight: Tensor<B, 2>) -> Tensor<B, D> {
        match self {
            Self::Wegeft(pair) => pair.delta_forward(x, weight),
            Self::Lora(lora) => lora.delta_forward(x),
        }
    }

    /// The update ΔW (d_in×d_out) of a layer with frozen `weight`: the merge path.
    pub fn delta_weight(&self, weight: Tensor<B, 2>) -> Tensor<B, 2> {
        match self {
            Self::Wegeft(pair) => pair.delta_weight(weight),
            Self::Lora(lora) => lora.delta_weight(),
        }
    }

    /// The adapter's tensors as an adapter file names them under the group's `owner` layer.
    pub(crate) fn file_tensors(&self, owner: &str) -> Vec<(String, StoredTensor)> {
        match self {
            Self::Wegeft(pair) => pair.file_tensors(owner),
            Self::Lora(lora) => lora.file_tensors(owner),
        }
    }

    /// The adapter with its parameters read from `tensors` (keys and shapes already checked).
    pub(crate) fn with_file_tensors(self, owner: &str, tensors: &BTreeMap<String, StoredTensor>) -> Self {
        match self {
            Self::Wegeft(pair) => Self::Wegeft(pair.with_file_tensors(owner, tensors)),
            Self::Lora(lora) => Self::Lora(lora.with_file_tensors(owner, tensors)),
        }
    }
}
