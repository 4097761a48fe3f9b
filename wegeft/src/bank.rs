//! The adapter itself: every trainable adapter parameter of a model, plus the plan that places them.

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::error::Result;
use crate::methods::Adapter;
use crate::plan::AdapterPlan;

/// Owns the adapter's parameters, one [`Adapter`] per plan group, and hands them to
/// [`crate::PeftLinear`] layers at forward time. A model holds one bank as a field (an empty one
/// when nothing is adapted), so a shared (φ, ψ) pair is a single tensor: records, optimizers and
/// parameter counts see it once, and its gradient is the sum of every layer's contribution.
#[derive(Module, Debug)]
pub struct AdapterBank<B: Backend> {
    /// One adapter per group of the plan, in the plan's group order.
    pub adapters: Vec<Adapter<B>>,
    /// Frozen tensors every adapted layer reads (VeRA's random projections), stored once.
    pub shared: Vec<Param<Tensor<B, 2>>>,
    #[module(skip)]
    plan: Option<AdapterPlan>,
}

impl<B: Backend> AdapterBank<B> {
    /// Fresh adapters for `plan`; `statistics` holds what the method read from each planned
    /// layer's weight (see [`crate::PeftMethod::weight_statistic`]).
    pub(crate) fn init(plan: AdapterPlan, statistics: &[Option<Vec<f32>>], device: &B::Device) -> Result<Self> {
        let adapters = (0..plan.groups.len())
            .map(|group| {
                let owner = plan.groups[group].members[0];
                plan.method.init(&plan.layers[owner], statistics.get(owner).and_then(Option::as_deref), device)
            })
            .collect::<Result<_>>()?;
        let shared = plan.method.init_shared(&plan.layers, device).into_iter().map(|tensor| Param::from_tensor(tensor).set_require_grad(false)).collect();
        Ok(Self { adapters, shared, plan: Some(plan) })
    }

    /// A bank that adapts nothing: the model's layers run frozen (a linear probe, full
    /// fine-tuning, or a model whose adapter was merged into its weights).
    pub fn empty() -> Self {
        Self { adapters: Vec::new(), shared: Vec::new(), plan: None }
    }

    /// What this bank adapts; `None` for an empty bank.
    pub fn plan(&self) -> Option<&AdapterPlan> {
        self.plan.as_ref()
    }

    /// The adapter of the layer in `slot`, checking that the layer belongs to this bank's plan;
    /// `None` when the bank is empty.
    ///
    /// # Panics
    /// If the bank was built from another plan (a programming error, not a data error).
    pub(crate) fn adapter_of(&self, slot: usize, name: &str) -> Option<&Adapter<B>> {
        let plan = self.plan.as_ref()?;
        match plan.layers.get(slot) {
            Some(layer) if layer.name == name => Some(&self.adapters[layer.group]),
            _ => panic!("layer `{name}` is used with an adapter bank built from another plan"),
        }
    }
}

impl<B: Backend> Default for AdapterBank<B> {
    fn default() -> Self {
        Self::empty()
    }
}
