//! A pre-norm decoder layer: `x + attn(norm(x))`, then `x + mlp(norm(x))`; with sandwich norms
//! (Gemma 3) the attention's and the MLP's outputs are normed too before they are added.

use burn::module::Module;
use burn::nn::RmsNorm;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use wegeft::io::Scope;
use wegeft::{AdapterBank, Injector, PeftLinear};

use crate::attention::{Attention, Positions};
use crate::cache::KvCache;
use crate::config::DecoderConfig;
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
    /// The RMSNorm before the MLP; with sandwich norms, the one after attention (HF's names).
    pub post_attention_layernorm: RmsNorm<B>,
    /// With sandwich norms: the RMSNorm before the MLP.
    pub pre_feedforward_layernorm: Option<RmsNorm<B>>,
    /// With sandwich norms: the RMSNorm after the MLP.
    pub post_feedforward_layernorm: Option<RmsNorm<B>>,
    /// The feed-forward.
    pub mlp: Mlp<B>,
}

impl<B: Backend> DecoderLayer<B> {
    pub(crate) fn load(weights: &mut Scope, injector: &mut Injector, config: &DecoderConfig, layer: usize, device: &B::Device) -> Result<Self> {
        let width = config.hidden_size;
        let mut norm = |name: &str| rms_norm(weights, name, width, config, device);
        let (input_layernorm, post_attention_layernorm) = (norm("input_layernorm")?, norm("post_attention_layernorm")?);
        let (pre_feedforward_layernorm, post_feedforward_layernorm) = match config.family().sandwich_norms() {
            true => (Some(norm("pre_feedforward_layernorm")?), Some(norm("post_feedforward_layernorm")?)),
            false => (None, None),
        };
        Ok(Self {
            self_attn: Attention::load(&mut weights.sub("self_attn"), injector, config, layer, device)?,
            mlp: Mlp::load(&mut weights.sub("mlp"), injector, config, device)?,
            input_layernorm,
            post_attention_layernorm,
            pre_feedforward_layernorm,
            post_feedforward_layernorm,
        })
    }

    /// The layer's seven projections.
    pub fn projections(&self) -> [&PeftLinear<B>; 7] {
        let (attention, mlp) = (&self.self_attn, &self.mlp);
        [&attention.q_proj, &attention.k_proj, &attention.v_proj, &attention.o_proj, &mlp.gate_proj, &mlp.up_proj, &mlp.down_proj]
    }

    /// The layer with its projections' packed weights decoded to f32.
    pub fn densified(self) -> Self {
        let (attention, mlp) = (self.self_attn, self.mlp);
        Self {
            self_attn: Attention {
                q_proj: attention.q_proj.densified(),
                k_proj: attention.k_proj.densified(),
                v_proj: attention.v_proj.densified(),
                o_proj: attention.o_proj.densified(),
                ..attention
            },
            mlp: Mlp {
                gate_proj: mlp.gate_proj.densified(),
                up_proj: mlp.up_proj.densified(),
                down_proj: mlp.down_proj.densified(),
                ..mlp
            },
            ..self
        }
    }

    /// `x` `[B, T, D]` at `positions`; see [`Attention::forward`].
    pub fn forward(&self, x: Tensor<B, 3>, positions: &Positions<B>, cache: Option<(&mut KvCache<B>, usize)>, adapters: &AdapterBank<B>) -> Tensor<B, 3> {
        let attended = self.self_attn.forward(norm_f32(&self.input_layernorm, x.clone()), positions, cache, adapters);
        match (&self.pre_feedforward_layernorm, &self.post_feedforward_layernorm) {
            (Some(pre), Some(post)) => {
                let x = x + norm_f32(&self.post_attention_layernorm, attended);
                let mixed = self.mlp.forward(norm_f32(pre, x.clone()), adapters);
                x + norm_f32(post, mixed)
            }
            _ => {
                let x = x + attended;
                let mixed = self.mlp.forward(norm_f32(&self.post_attention_layernorm, x.clone()), adapters);
                x + mixed
            }
        }
    }
}
