//! Export of a WeGeFT adapter as a standard PEFT LoRA adapter, so LoRA servers can use it.
//!
//! Exact, since ΔW has rank ≤ r: per layer `lora_A = Ψ` (r×d_in) and `lora_B = s·W_pt·Φᵀ`
//! (d_out×r), with `lora_alpha = r` so PEFT's scale is 1.

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::DType;

use super::tensors::StoredTensor;
use super::{bank_tensors, keys, write_adapter_dir};
use crate::bank::AdapterBank;
use crate::error::{PeftError, Result};
use crate::layer::PeftLinear;
use crate::lora::LoraConfig;
use crate::method::AdapterMethod;
use crate::plan::{AdapterGroup, AdapterPlan};

/// Writes `bank` to `dir` as a PEFT LoRA adapter. WeGeFT needs the frozen weights of every
/// adapted layer, given as `layers`; a LoRA bank is saved as it is.
pub fn export_peft_lora<B: Backend>(
    bank: &AdapterBank<B>,
    layers: &[&PeftLinear<B>],
    dir: impl AsRef<Path>,
) -> Result<()> {
    let plan = bank.plan();
    let AdapterMethod::Wegeft(wegeft) = &plan.method else {
        return super::save_adapter(bank, dir);
    };
    if let Some(stranger) = layers.iter().find(|layer| plan.layer(layer.name()).is_none()) {
        return Err(PeftError::UnknownLayer(stranger.name().to_string()));
    }
    let mut tensors = BTreeMap::new();
    for planned in &plan.layers {
        let layer = layers
            .iter()
            .find(|layer| layer.name() == planned.name)
            .ok_or_else(|| PeftError::MissingLayer(planned.name.clone()))?;
        if layer.base.weight.dims() != [planned.d_in, planned.d_out] {
            return Err(PeftError::InvalidConfig(format!(
                "layer `{}` has weight {:?}, the adapter was planned for [{}, {}]",
                planned.name,
                layer.base.weight.dims(),
                planned.d_in,
                planned.d_out
            )));
        }
        let pair = &bank.wegeft[planned.group];
        let weight = layer.base.weight.val().cast(DType::F32);
        let lora_b = pair.phi.val().matmul(weight).mul_scalar(pair.scale).transpose();
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
    debug_assert_eq!(bank_tensors::expected_shapes(&lora_plan).len(), tensors.len());
    write_adapter_dir(dir.as_ref(), &lora_plan, &tensors)
}
