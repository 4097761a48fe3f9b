//! The adapter itself: every trainable adapter parameter of a model, plus the plan that places them.

use burn::module::Module;
use burn::tensor::backend::Backend;

use crate::adapter::Adapter;
use crate::plan::AdapterPlan;

/// Owns the adapter's parameters, one [`Adapter`] per plan group, and hands them to
/// [`crate::PeftLinear`] layers at forward time. A model holds one bank as a field (an empty one
/// when nothing is adapted), so a shared (φ, ψ) pair is a single tensor: records, optimizers and
/// parameter counts see it once, and its gradient is the sum of every layer's contribution.
#[derive(Module, Debug)]
pub struct AdapterBank<B: Backend> {
    /// One adapter per group of the plan, in the plan's group order.
    pub adapters: Vec<Adapter<B>>,
    #[module(skip)]
    plan: Option<AdapterPlan>,
}

impl<B: Backend> AdapterBank<B> {
    pub(crate) fn init(plan: AdapterPlan, device: &B::Device) -> Self {
        let adapters = (0..plan.groups.len())
            .map(|group| Adapter::init(&plan.method, plan.owner(group), device))
            .collect();
        Self { adapters, plan: Some(plan) }
    }

    /// A bank that adapts nothing: the model's layers run frozen (a linear probe, full
    /// fine-tuning, or a model whose adapter was merged into its weights).
    pub fn empty() -> Self {
        Self { adapters: Vec::new(), plan: None }
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
