//! The transformer MLP: fc1, GELU, fc2.

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use wegeft::kernels::gelu;
use wegeft::{AdapterBank, Injector, PeftLinear};

use crate::error::Result;
use crate::layers::adapted_linear;
use crate::weights::WeightSource;

/// timm's `mlp`.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    /// `mlp.fc1`, D → hidden.
    pub fc1: PeftLinear<B>,
    /// `mlp.fc2`, hidden → D.
    pub fc2: PeftLinear<B>,
}

impl<B: Backend> Mlp<B> {
    pub(crate) fn load(
        weights: &mut WeightSource,
        mut injector: Option<&mut Injector>,
        prefix: &str,
        dim: usize,
        hidden: usize,
        device: &B::Device,
    ) -> Result<Self> {
        let fc1 = adapted_linear(weights, injector.as_deref_mut(), &format!("{prefix}.fc1"), dim, hidden, device)?;
        let fc2 = adapted_linear(weights, injector, &format!("{prefix}.fc2"), hidden, dim, device)?;
        Ok(Self { fc1, fc2 })
    }

    /// `[B, N, D]` → `[B, N, D]`.
    pub fn forward(&self, x: Tensor<B, 3>, adapters: Option<&AdapterBank<B>>) -> Tensor<B, 3> {
        self.fc2.forward_opt(gelu(self.fc1.forward_opt(x, adapters)), adapters)
    }
}
