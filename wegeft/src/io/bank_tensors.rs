//! The mapping between a bank's parameters and the named tensors of an adapter file, laid out
//! by each method's [`TensorSpec`]s.

use std::collections::BTreeMap;

use burn::tensor::backend::Backend;

use super::tensors::StoredTensor;
use crate::bank::AdapterBank;
use crate::methods::{module_tensors, with_module_tensors, TensorSpec};
use crate::plan::AdapterPlan;

/// Every tensor of a plan's adapter file: each group's, then the shared ones.
pub(crate) fn file_layout(plan: &AdapterPlan) -> Vec<TensorSpec> {
    let mut layout: Vec<TensorSpec> = (0..plan.groups.len()).flat_map(|group| plan.method.layer_tensors(plan.owner(group))).collect();
    layout.extend(plan.method.shared_tensors(&plan.layers));
    layout
}

/// Every tensor key of a plan's adapter file with its shape (PyTorch layout).
pub(crate) fn expected_shapes(plan: &AdapterPlan) -> BTreeMap<String, Vec<usize>> {
    file_layout(plan).into_iter().map(|spec| (spec.key, spec.shape)).collect()
}

/// The bank's parameters as named tensors in PyTorch layout.
pub(crate) fn bank_tensors<B: Backend>(bank: &AdapterBank<B>, plan: &AdapterPlan) -> BTreeMap<String, StoredTensor> {
    let groups = bank
        .adapters
        .iter()
        .enumerate()
        .flat_map(|(group, adapter)| adapter.file_tensors(&plan.method.layer_tensors(plan.owner(group))));
    let shared = module_tensors(&bank.shared, &plan.method.shared_tensors(&plan.layers));
    groups.chain(shared).collect()
}

/// The bank with its parameters replaced by `tensors`, whose keys and shapes have been checked.
/// Parameter ids and trainability are kept, so an optimizer state still applies.
pub(crate) fn bank_with_tensors<B: Backend>(
    mut bank: AdapterBank<B>,
    plan: &AdapterPlan,
    tensors: &BTreeMap<String, StoredTensor>,
) -> AdapterBank<B> {
    bank.adapters = std::mem::take(&mut bank.adapters)
        .into_iter()
        .enumerate()
        .map(|(group, adapter)| adapter.with_file_tensors(&plan.method.layer_tensors(plan.owner(group)), tensors))
        .collect();
    bank.shared = with_module_tensors(std::mem::take(&mut bank.shared), &plan.method.shared_tensors(&plan.layers), tensors);
    bank
}
