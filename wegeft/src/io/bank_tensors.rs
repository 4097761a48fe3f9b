//! The mapping between a bank's parameters and the named tensors of an adapter file.

use std::collections::BTreeMap;

use burn::module::Param;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::keys;
use super::tensors::StoredTensor;
use crate::bank::AdapterBank;
use crate::method::AdapterMethod;
use crate::plan::AdapterPlan;

/// Every tensor key of a plan's adapter file with its shape (PyTorch layout).
pub(crate) fn expected_shapes(plan: &AdapterPlan) -> BTreeMap<String, Vec<usize>> {
    let rank = plan.method.rank();
    match plan.method {
        AdapterMethod::Wegeft(_) => (0..plan.groups.len())
            .flat_map(|group| {
                let owner = &plan.owner(group).name;
                let shape = vec![rank, plan.groups[group].d_in];
                [
                    (keys::wegeft_phi(owner), shape.clone()),
                    (keys::wegeft_psi(owner), shape),
                ]
            })
            .collect(),
        AdapterMethod::Lora(_) => plan
            .layers
            .iter()
            .flat_map(|layer| {
                [
                    (keys::lora_a(&layer.name), vec![rank, layer.d_in]),
                    (keys::lora_b(&layer.name), vec![layer.d_out, rank]),
                ]
            })
            .collect(),
    }
}

/// The bank's parameters as named tensors in PyTorch layout.
pub(crate) fn bank_tensors<B: Backend>(bank: &AdapterBank<B>) -> BTreeMap<String, StoredTensor> {
    let plan = bank.plan();
    let mut tensors = BTreeMap::new();
    for (group, pair) in bank.wegeft.iter().enumerate() {
        let owner = &plan.owner(group).name;
        tensors.insert(keys::wegeft_phi(owner), StoredTensor::from_tensor(pair.phi.val()));
        tensors.insert(keys::wegeft_psi(owner), StoredTensor::from_tensor(pair.psi.val()));
    }
    for (layer, adapter) in plan.layers.iter().zip(&bank.lora) {
        let a = adapter.a.val().transpose();
        let b = adapter.b.val().transpose();
        tensors.insert(keys::lora_a(&layer.name), StoredTensor::from_tensor(a));
        tensors.insert(keys::lora_b(&layer.name), StoredTensor::from_tensor(b));
    }
    tensors
}

/// The bank with its parameters replaced by `tensors`, whose keys and shapes have been checked.
/// Parameter ids and trainability are kept, so an optimizer state still applies.
pub(crate) fn bank_with_tensors<B: Backend>(
    mut bank: AdapterBank<B>,
    tensors: &BTreeMap<String, StoredTensor>,
) -> AdapterBank<B> {
    let plan = bank.plan().clone();
    let load = |param: Param<Tensor<B, 2>>, key: &str, transpose: bool| {
        param.map(|old| {
            let device = old.device();
            let loaded = tensors[key].to_tensor::<B>(&device);
            // Materialised in burn's layout, as a freshly initialised parameter is: a transposed
            // view is read through other strides, which can change a matmul's rounding.
            let loaded = if transpose { Tensor::from_data(loaded.transpose().into_data(), &device) } else { loaded };
            loaded.set_require_grad(old.is_require_grad())
        })
    };
    bank.wegeft = std::mem::take(&mut bank.wegeft)
        .into_iter()
        .enumerate()
        .map(|(group, mut pair)| {
            let owner = &plan.owner(group).name;
            pair.phi = load(pair.phi, &keys::wegeft_phi(owner), false);
            pair.psi = load(pair.psi, &keys::wegeft_psi(owner), false);
            pair
        })
        .collect();
    bank.lora = std::mem::take(&mut bank.lora)
        .into_iter()
        .zip(&plan.layers)
        .map(|(mut adapter, layer)| {
            adapter.a = load(adapter.a, &keys::lora_a(&layer.name), true);
            adapter.b = load(adapter.b, &keys::lora_b(&layer.name), true);
            adapter
        })
        .collect();
    bank
}
