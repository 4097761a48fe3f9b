//! Tensor names in adapter files, as HF PEFT names them: a layer's tensors under
//! `base_model.model.{layer}.`, tensors of the whole adapter (VeRA's shared projections) under
//! `base_model.`. Each method's `layer_tensors` names what it stores.
//!
//! A tensor shared by a group of layers (WeGeFT's pair per module type) is stored once, under
//! the group's owner: its first layer, as the official code's `tied_modules` does.

/// The key of a layer's tensor, e.g. `base_model.model.blocks.0.attn.proj.lora_A.weight`.
pub fn of_layer(layer: &str, tensor: &str) -> String {
    format!("base_model.model.{layer}.{tensor}")
}

/// The key of a tensor of the whole adapter, e.g. `base_model.vera_A`.
pub fn of_adapter(tensor: &str) -> String {
    format!("base_model.{tensor}")
}
