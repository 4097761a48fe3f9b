//! A pre-norm decoder layer: `x + attn(norm(x))`, then `x + mlp(norm(x))`.

use burn::module::Module;
use burn::nn::RmsNorm;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use wegeft::io::Scope;
use wegeft::{AdapterBank, Injector};

use crate::attention::{Attention, Positions};
use crate::cache::KvCache;
use crate::config::LlamaConfig;
use crate::error::Result;
use crate::mlp::Mlp;
use crate::rms_norm::{norm_f32, rms_norm};

/// `model.layers.N`.
#[derive(Module, Debug)]
pub struct DecoderLayer<B: Backend> {
    /// The RMSNorm before attention.
    pub input_layernorm: RmsNorm<B>,
    /// The self-attention.
    pub self_attn: Attention<B>,
    /// The RMSNorm before the MLP.
    pub post_attention_layernorm: RmsNorm<B>,
    /// The feed-forward.
    pub mlp: Mlp<B>,
}

impl<B: Backend> DecoderLayer<B> {
    pub(crate) fn load(weights: &mut Scope, injector: &mut Injector, config: &LlamaConfig, device: &B::Device) -> Result<Self> {
        Ok(Self {
            self_attn: Attention::load(&mut weights.sub("self_attn"), injector, config, device)?,
            mlp: Mlp::load(&mut weights.sub("mlp"), injector, config, device)?,
            input_layernorm: rms_norm(weights, "input_layernorm", config, device)?,
            post_attention_layernorm: rms_norm(weights, "post_attention_layernorm", config, device)?,
        })
    }

    /// `x` `[B, T, D]` at `positions`; see [`Attention::forward`].
    pub fn forward(&self, x: Tensor<B, 3>, positions: &Positions<B>, cache: Option<(&mut KvCache<B>, usize)>, adapters: &AdapterBank<B>) -> Tensor<B, 3> {
        let attended = self.self_attn.forward(norm_f32(&self.input_layernorm, x.clone()), positions, cache, adapters);
        let x = x + attended;
        let mixed = self.mlp.forward(norm_f32(&self.post_attention_layernorm, x.clone()), adapters);
        x + mixed
    }
}
