//! The adapter itself: every trainable adapter parameter of a model, plus the plan that places them.

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::lora::LoraAdapter;
use crate::method::AdapterMethod;
use crate::plan::AdapterPlan;
use crate::wegeft::WegeftPair;

/// Owns the adapter's parameters, one entry per plan group, and hands them to
/// [`crate::PeftLinear`] layers at forward time. A model holds one bank as a field, so a shared
/// (φ, ψ) pair is a single tensor: records, optimizers and parameter counts see it once, and its
/// gradient is the sum of every layer's contribution.
#[derive(Module, Debug)]
pub struct AdapterBank<B: Backend> {
    /// WeGeFT pairs, one per group (empty for LoRA).
    pub wegeft: Vec<WegeftPair<B>>,
    /// LoRA adapters, one per layer (empty for WeGeFT).
    pub lora: Vec<LoraAdapter<B>>,
    #[module(skip)]
    plan: AdapterPlan,
}

impl<B: Backend> AdapterBank<B> {
    pub(crate) fn init(plan: AdapterPlan, device: &B::Device) -> Self {
        let (wegeft, lora) = match &plan.method {
            AdapterMethod::Wegeft(config) => (
                plan.groups
                    .iter()
                    .map(|group| WegeftPair::init(group.d_in, config, device))
                    .collect(),
                Vec::new(),
            ),
            AdapterMethod::Lora(config) => (
                Vec::new(),
                plan.layers
                    .iter()
                    .map(|layer| LoraAdapter::init(layer.d_in, layer.d_out, config, device))
                    .collect(),
            ),
        };
        Self { wegeft, lora, plan }
    }

    /// What this bank adapts.
    pub fn plan(&self) -> &AdapterPlan {
        &self.plan
    }

    /// The group of the layer in `slot`, checking that the layer belongs to this bank's plan.
    fn group_of(&self, slot: usize, name: &str) -> usize {
        match self.plan.layers.get(slot) {
            Some(layer) if layer.name == name => layer.group,
            _ => panic!("layer `{name}` is used with an adapter bank built from another plan"),
        }
    }

    pub(crate) fn delta_forward<const D: usize>(
        &self,
        slot: usize,
        name: &str,
        x: Tensor<B, D>,
        weight: Tensor<B, 2>,
    ) -> Tensor<B, D> {
        let group = self.group_of(slot, name);
        match self.plan.method {
            AdapterMethod::Wegeft(_) => self.wegeft[group].delta_forward(x, weight),
            AdapterMethod::Lora(_) => self.lora[group].delta_forward(x),
        }
    }

    pub(crate) fn delta_weight(&self, slot: usize, name: &str, weight: Tensor<B, 2>) -> Tensor<B, 2> {
        let group = self.group_of(slot, name);
        match self.plan.method {
            AdapterMethod::Wegeft(_) => self.wegeft[group].delta_weight(weight),
            AdapterMethod::Lora(_) => self.lora[group].delta_weight(),
        }
    }
}
