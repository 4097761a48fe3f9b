//! Export as an adapter HF PEFT loads. LoRA, DoRA and VeRA adapters are PEFT's own formats and
//! are saved as they are; WeGeFT, which PEFT lacks, becomes a standard LoRA adapter, so LoRA
//! servers can use it.
//!
//! Exact, since WeGeFT's ΔW has rank ≤ r: per layer `lora_A = Ψ` (r×d_in) and
//! `lora_B = s·W_pt·Φᵀ` (d_out×r), with `lora_alpha = r` so PEFT's scale is 1.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::DType;

use super::tensors::StoredTensor;
use super::write_adapter_dir;
use crate::adapted::Adapted;
use crate::error::{PeftError, Result};
use crate::methods::lora::{lora_tensors, LoraConfig};
use crate::methods::{Adapter, AdapterMethod};
use crate::plan::{AdapterGroup, AdapterPlan};

/// Writes `model`'s adapter to `dir` as an adapter HF PEFT loads: a WeGeFT update becomes a LoRA
/// adapter, generated from each adapted layer's frozen weight (which the model's layers
/// provide); the other methods are saved as they are. Layers outside the plan are left alone.
/// Returns what it wrote, for the user (`"a PEFT LoRA adapter (WeGeFT's exact low-rank form)"`).
pub fn export_peft<B: Backend, M: Adapted<B>>(model: &M, dir: impl AsRef<Path>) -> Result<String> {
    let bank = model.bank();
    let plan = bank.plan().ok_or(PeftError::EmptyBank)?;
    let AdapterMethod::Wegeft(wegeft) = &plan.method else {
        super::save_adapter(bank, dir)?;
        return Ok(format!("a PEFT {} adapter", plan.method.name()));
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
        let [a_spec, b_spec] = <[_; 2]>::try_from(lora_tensors(wegeft.rank, planned)).expect("LoRA stores A and B");
        tensors.insert(a_spec.key, StoredTensor::from_tensor(pair.psi.val()));
        tensors.insert(b_spec.key, StoredTensor::from_tensor(lora_b));
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
    write_adapter_dir(dir.as_ref(), &lora_plan, &tensors)?;
    Ok("a PEFT LoRA adapter (WeGeFT's exact low-rank form)".into())
}
