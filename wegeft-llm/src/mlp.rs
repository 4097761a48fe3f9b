//! SwiGLU feed-forward: `down(silu(gate(x)) · up(x))`.

use burn::module::Module;
use burn::tensor::activation::silu;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use wegeft::{AdapterBank, PeftLinear};

/// `mlp`: gate, up and down projections (HF names).
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    pub gate_proj: PeftLinear<B>,
    pub up_proj: PeftLinear<B>,
    pub down_proj: PeftLinear<B>,
}

impl<B: Backend> Mlp<B> {
    pub fn forward(&self, x: Tensor<B, 3>, adapters: Option<&AdapterBank<B>>) -> Tensor<B, 3> {
        let gate = silu(self.gate_proj.forward_opt(x.clone(), adapters));
        self.down_proj.forward_opt(gate * self.up_proj.forward_opt(x, adapters), adapters)
    }
}
