//! The mapping between a bank's parameters and the named tensors of an adapter file; each
//! method's own file names its keys.

use std::collections::BTreeMap;

use burn::module::Param;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::tensors::StoredTensor;
use crate::bank::AdapterBank;
use crate::plan::AdapterPlan;

/// Every tensor key of a plan's adapter file with its shape (PyTorch layout).
pub(crate) fn expected_shapes(plan: &AdapterPlan) -> BTreeMap<String, Vec<usize>> {
    (0..plan.groups.len())
        .flat_map(|group| plan.method.file_shapes(plan.owner(group)))
        .collect()
}

/// The bank's parameters as named tensors in PyTorch layout.
pub(crate) fn bank_tensors<B: Backend>(bank: &AdapterBank<B>, plan: &AdapterPlan) -> BTreeMap<String, StoredTensor> {
    bank.adapters
        .iter()
        .enumerate()
        .flat_map(|(group, adapter)| adapter.file_tensors(&plan.owner(group).name))
        .collect()
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
        .map(|(group, adapter)| adapter.with_file_tensors(&plan.owner(group).name, tensors))
        .collect();
    bank
}

/// `param` holding `stored` (transposed from PyTorch's layout when `transpose`), with the old
/// parameter's id and trainability.
pub(crate) fn load_param<B: Backend>(param: Param<Tensor<B, 2>>, stored: &StoredTensor, transpose: bool) -> Param<Tensor<B, 2>> {
    param.map(|old| {
        let device = old.device();
        let loaded = stored.to_tensor::<B>(&device);
        // Materialised in burn's layout, as a freshly initialised parameter is: a transposed
        // view is read through other strides, which can change a matmul's rounding.
        let loaded = if transpose { Tensor::from_data(loaded.transpose().into_data(), &device) } else { loaded };
        loaded.set_require_grad(old.is_require_grad())
    })
}
