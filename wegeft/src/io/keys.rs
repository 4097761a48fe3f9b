//! Tensor names in adapter files, as HF PEFT names them (`base_model.model.` + layer name).
//!
//! | method | key | shape (PyTorch layout) |
//! |---|---|---|
//! | WeGeFT | `base_model.model.{owner}.wegeft_phi.weight` | Φ = φᵀ, r×d_in |
//! | WeGeFT | `base_model.model.{owner}.wegeft_psi.weight` | Ψ = ψ, r×d_in |
//! | LoRA | `base_model.model.{layer}.lora_A.weight` | A, r×d_in |
//! | LoRA | `base_model.model.{layer}.lora_B.weight` | B, d_out×r |
//!
//! A shared WeGeFT pair is stored once, under its group's owner: the first layer of the group,
//! as the official code's `tied_modules` does.

const PREFIX: &str = "base_model.model.";

pub(crate) fn wegeft_phi(owner: &str) -> String {
    format!("{PREFIX}{owner}.wegeft_phi.weight")
}

pub(crate) fn wegeft_psi(owner: &str) -> String {
    format!("{PREFIX}{owner}.wegeft_psi.weight")
}

pub(crate) fn lora_a(layer: &str) -> String {
    format!("{PREFIX}{layer}.lora_A.weight")
}

pub(crate) fn lora_b(layer: &str) -> String {
    format!("{PREFIX}{layer}.lora_B.weight")
}
