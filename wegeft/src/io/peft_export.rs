//! Export of a WeGeFT adapter as a standard PEFT LoRA adapter, so LoRA servers can use it.
//!
//! Exact, since ΔW has rank ≤ r: per layer `lora_A = Ψ` (r×d_in) and `lora_B = s·W_pt·Φᵀ`
//! (d_out×r), with `lora_alpha = r` so PEFT's scale is 1.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::DType;

use super::tensors::StoredTensor;
use super::{keys, write_adapter_dir};
use crate::adapted::Adapted;
use crate::adapter::Adapter;
use crate::error::{PeftError, Result};
use crate::lora::LoraConfig;
use crate::method::AdapterMethod;
use crate::plan::{AdapterGroup, AdapterPlan};

/// Writes `model`'s adapter to `dir` as a PEFT LoRA adapter. A WeGeFT update is generated from
/// each adapted layer's frozen weight, which the model's layers provide; a LoRA bank is saved as
/// it is. Layers outside the plan are left alone.
pub fn export_peft_lora<B: Backend, M: Adapted<B>>(model: &M, dir: impl AsRef<Path>) -> Result<()> {
    let bank = model.bank();
    let plan = bank.plan().ok_or(PeftError::EmptyBank)?;
    let AdapterMethod::Wegeft(wegeft) = &plan.method else {
        return super::save_adapter(bank, dir);
    };
    let mut weights: HashMap<String, _> = model.linear_weights().into_iter().collect();
    let mut tensors = BTreeMap::new();
    for planned in &plan.layers {
        let weight = weights
            .remove(&planned.name)
            .ok_or_else(|| PeftError::MissingLayer(planned.name.clone()))?;
        if weight.dims() != [planned.d_in, planned.d_out] {
            return Err(PeftError::InvalidConfig(format!(
                "layer `{}` has weight {:?}, the adapter was planned for [{}, {}]",
                planned.name,
                weight.dims(),
                planned.d_in,
                planned.d_out
            )));
        }
        let Adapter::Wegeft(pair) = &bank.adapters[planned.group] else {
            unreachable!("a WeGeFT plan holds WeGeFT pairs")
        };
        let lora_b = pair.phi.val().matmul(weight.cast(DType::F32)).mul_scalar(pair.scale).transpose();
        tensors.insert(keys::lora_a(&planned.name), StoredTensor::from_tensor(pair.psi.val()));
        tensors.insert(keys::lora_b(&planned.name), StoredTensor::from_tensor(lora_b));
    }
    let rank = wegeft.rank;
    let lora_plan = AdapterPlan {
        method: AdapterMethod::Lora(LoraConfig::new(rank).with_alpha(Some(rank as f64))),
        targets: plan.targets.clone(),
        layers: plan
            .layers
            .iter()
            .enumerate()
            .map(|(index, layer)| {
                let mut layer = layer.clone();
                layer.group = index;
                layer
            })
            .collect(),
        groups: plan
            .layers
            .iter()
            .enumerate()
            .map(|(index, layer)| AdapterGroup {
                name: layer.name.clone(),
                d_in: layer.d_in,
                members: vec![index],
            })
            .collect(),
        untouched: Vec::new(),
    };
    debug_assert_eq!(super::bank_tensors::expected_shapes(&lora_plan).len(), tensors.len());
    write_adapter_dir(dir.as_ref(), &lora_plan, &tensors)
}
