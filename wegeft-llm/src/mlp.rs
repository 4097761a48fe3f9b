//! Gated feed-forward: `down(act(gate(x)) · up(x))`, SwiGLU (SiLU) or GeGLU (GELU, tanh).

use burn::module::Module;
use burn::tensor::activation::gelu_approximate;
use wegeft::kernels::silu;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use wegeft::io::Scope;
use wegeft::{AdapterBank, Injector, PeftLinear};

use crate::config::DecoderConfig;
use crate::family::Activation;
use crate::error::Result;

/// `mlp`: gate, up and down projections (HF names).
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    /// The gate projection, through the activation.
    pub gate_proj: PeftLinear<B>,
    /// The up projection, gated.
    pub up_proj: PeftLinear<B>,
    /// The down projection, back to the model width.
    pub down_proj: PeftLinear<B>,
    /// The gate's activation.
    #[module(skip)]
    pub activation: Activation,
}

impl<B: Backend> Mlp<B> {
    pub(crate) fn load(weights: &mut Scope, injector: &mut Injector, config: &DecoderConfig, device: &B::Device) -> Result<Self> {
        let (d, ff) = (config.hidden_size, config.intermediate_size);
        Ok(Self {
            gate_proj: weights.peft_linear(injector, "gate_proj", d, ff, false, device)?,
            up_proj: weights.peft_linear(injector, "up_proj", d, ff, false, device)?,
            down_proj: weights.peft_linear(injector, "down_proj", ff, d, false, device)?,
            activation: config.activation().expect("validated with the config"),
        })
    }

    /// `[B, T, D]` → `[B, T, D]`.
    pub fn forward(&self, x: Tensor<B, 3>, adapters: &AdapterBank<B>) -> Tensor<B, 3> {
        let gate = self.gate_proj.forward(x.clone(), adapters);
        let gate = match self.activation {
            Activation::Silu => silu(gate),
            Activation::GeluTanh => gelu_approximate(gate),
        };
        self.down_proj.forward(gate * self.up_proj.forward(x, adapters), adapters)
    }
}
