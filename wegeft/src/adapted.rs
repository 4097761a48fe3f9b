//! The contract between a model and its adapter: the model keeps an [`AdapterBank`] field, and
//! the walks here find its adapted layers through burn's own module visitors, so neither merging
//! nor exporting needs a list of layers.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::methods::Adapter;
use crate::bank::AdapterBank;
use crate::layer::merge_weight;
use crate::layer_name::PEFT_LINEAR;

/// A model whose linear layers are [`crate::PeftLinear`]s sharing the bank it holds.
///
/// Implementing it takes two one-line methods; merging, exporting ([`crate::export_peft`])
/// and parameter counts ([`crate::ParamReport`]) then work on the whole model.
pub trait Adapted<B: Backend>: Module<B> + Sized {
    /// The model's bank field.
    fn bank(&self) -> &AdapterBank<B>;

    /// The model's bank field, mutably (merging empties it).
    fn bank_mut(&mut self) -> &mut AdapterBank<B>;

    /// Values of frozen weights kept packed ([`crate::PeftLinear::packed`]), which burn's walks do
    /// not see: a model that loads packed bases counts them here for [`crate::ParamReport`].
    fn packed_values(&self) -> usize {
        0
    }

    /// The model with every adapted layer's update folded into its frozen weight (computed in
    /// f32) and an empty bank: the same outputs, without adapter cost.
    fn merged(mut self) -> Self {
        let bank = std::mem::take(self.bank_mut());
        self.map(&mut Merge { bank: &bank, next: None })
    }

    /// The frozen weight (`[d_in, d_out]`) of every `PeftLinear` in the model, by layer name.
    fn linear_weights(&self) -> Vec<(String, Tensor<B, 2>)> {
        let mut weights = LinearWeights { next: None, found: Vec::new() };
        self.visit(&mut weights);
        weights.found
    }
}

/// Folds the bank into the weight that follows each adapted layer's name.
struct Merge<'a, B: Backend> {
    bank: &'a AdapterBank<B>,
    next: Option<&'a Adapter<B>>,
}

impl<B: Backend> ModuleMapper<B> for Merge<'_, B> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        if container_type == PEFT_LINEAR {
            let planned = self.bank.plan().and_then(|plan| plan.layer(name));
            self.next = planned.map(|(_, layer)| &self.bank.adapters[layer.group]);
        }
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        match self.next.take() {
            Some(adapter) => param.map(|weight| {
                let dims = weight.dims();
                assert!(dims.iter().product::<usize>() > 0, "a packed base has no weight to merge into: merge PeftLinear::densified layers");
                merge_weight(adapter, weight.reshape([dims[0], dims[D - 1]]), &self.bank.shared).reshape(dims)
            }),
            None => param,
        }
    }
}

/// Collects the weight that follows each layer name.
struct LinearWeights<B: Backend> {
    next: Option<String>,
    found: Vec<(String, Tensor<B, 2>)>,
}

impl<B: Backend> ModuleVisitor<B> for LinearWeights<B> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        if container_type == PEFT_LINEAR {
            self.next = Some(name.to_string());
        }
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(name) = self.next.take() {
            let weight = param.val();
            let dims = weight.dims();
            assert!(dims.iter().product::<usize>() > 0, "{name} keeps its weight packed: read PeftLinear::densified layers");
            self.found.push((name, weight.reshape([dims[0], dims[D - 1]])));
        }
    }
}
