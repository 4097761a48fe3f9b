//! The transformer MLP: fc1, GELU, fc2.

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use wegeft::io::Scope;
use wegeft::kernels::gelu;
use wegeft::{AdapterBank, Injector, PeftLinear};

use crate::error::Result;

/// timm's `mlp`.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    /// `mlp.fc1`, D → hidden.
    pub fc1: PeftLinear<B>,
    /// `mlp.fc2`, hidden → D.
    pub fc2: PeftLinear<B>,
}

impl<B: Backend> Mlp<B> {
    pub(crate) fn load(weights: &mut Scope, injector: &mut Injector, dim: usize, hidden: usize, device: &B::Device) -> Result<Self> {
        Ok(Self {
            fc1: weights.peft_linear(injector, "fc1", dim, hidden, true, device)?,
            fc2: weights.peft_linear(injector, "fc2", hidden, dim, true, device)?,
        })
    }

    /// `[B, N, D]` → `[B, N, D]`.
    pub fn forward(&self, x: Tensor<B, 3>, adapters: &AdapterBank<B>) -> Tensor<B, 3> {
        self.fc2.forward(gelu(self.fc1.forward(x, adapters)), adapters)
    }
}
