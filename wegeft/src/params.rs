//! Parameter accounting: what trains, what is frozen, shared tensors counted once.

use std::collections::HashSet;
use std::fmt;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use serde::{Deserialize, Serialize};

use crate::adapted::Adapted;

/// Parameter counts of a model with an adapter: the one counter every crate reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamReport {
    /// Trainable adapter parameters (the bank), each shared tensor once.
    pub adapter: usize,
    /// Frozen tensors the adapter stores (VeRA's shared random projections): saved with it, never trained.
    #[serde(default)]
    pub adapter_frozen: usize,
    /// Other trainable parameters: a classifier head, or the whole backbone when it trains too.
    pub head: usize,
    /// Frozen parameters.
    pub frozen: usize,
}

impl ParamReport {
    /// Counts `model`'s parameters: its bank's adapters as the adapter, the bank's shared
    /// tensors as stored-frozen.
    ///
    /// Trainability is read from the tensors, so call it on the training model (an autodiff backend);
    /// on other backends every parameter outside the bank counts as frozen.
    pub fn of<B: Backend, M: Adapted<B>>(model: &M) -> Self {
        let bank = model.bank();
        let mut adapters = Counter::default();
        bank.adapters.visit(&mut adapters);
        let mut shared = Counter { seen: adapters.seen.clone(), ..Counter::default() };
        bank.shared.visit(&mut shared);
        let mut model_params = Counter { seen: shared.seen.clone(), ..Counter::default() };
        model.visit(&mut model_params);
        Self {
            adapter: adapters.trainable + adapters.frozen,
            adapter_frozen: shared.trainable + shared.frozen,
            head: model_params.trainable,
            frozen: model_params.frozen + model.packed_values(),
        }
    }

    /// All trainable parameters, adapter and head.
    pub fn trainable(&self) -> usize {
        self.adapter + self.head
    }

    /// Adapter parameters as a percentage of the frozen model, the paper's "#Params (%)".
    pub fn adapter_percent(&self) -> f64 {
        100.0 * self.adapter as f64 / self.frozen.max(1) as f64
    }
}

impl fmt::Display for ParamReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "adapter {} ({:.4}% of the frozen model) + head {} trainable, {} frozen",
            self.adapter,
            self.adapter_percent(),
            self.head,
            self.frozen
        )?;
        match self.adapter_frozen {
            0 => Ok(()),
            stored => write!(f, " (+ {stored} frozen adapter parameters stored with it)"),
        }
    }
}

#[derive(Default)]
struct Counter {
    seen: HashSet<ParamId>,
    trainable: usize,
    frozen: usize,
}

impl<B: Backend> ModuleVisitor<B> for Counter {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if !self.seen.insert(param.id) {
            return;
        }
        let count = param.shape().num_elements();
        if param.is_require_grad() {
            self.trainable += count;
        } else {
            self.frozen += count;
        }
    }
}
