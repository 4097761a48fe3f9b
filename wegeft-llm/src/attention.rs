//! Grouped-query self-attention with RoPE, an additive mask and an optional KV cache; per family,
//! q/k/v biases, RMSNorm over each query and key head, a score scale of its own, and a sliding
//! window on some layers.

use burn::module::Module;
use burn::nn::RmsNorm;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use wegeft::io::Scope;
use wegeft::kernels::attention;
use wegeft::{AdapterBank, Injector, PeftLinear};

use crate::cache::KvCache;
use crate::config::{DecoderConfig, LayerType};
use crate::error::Result;
use crate::rms_norm::{norm_f32, rms_norm};
use crate::rope::Rope;

/// Where a step's tokens sit: RoPE positions from `offset`, and the additive attention masks
/// `[B, 1, T, S]` over the cached and new keys. Shared by every layer of a forward pass.
pub struct Positions<'a, B: Backend> {
    /// The rotary embedding of global layers.
    pub rope: &'a Rope,
    /// The rotary embedding of sliding layers (Gemma 3 gives them their own θ).
    pub sliding_rope: &'a Rope,
    /// The causal and padding mask.
    pub mask: Tensor<B, 4>,
    /// The mask of sliding layers (`mask` plus the window), when the model has any.
    pub sliding_mask: Option<Tensor<B, 4>>,
    /// The position of the step's first token.
    pub offset: usize,
}

/// `self_attn`: q, k, v and o projections (HF names), any of them adaptable.
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    /// The query projection.
    pub q_proj: PeftLinear<B>,
    /// The key projection.
    pub k_proj: PeftLinear<B>,
    /// The value projection.
    pub v_proj: PeftLinear<B>,
    /// The output projection.
    pub o_proj: PeftLinear<B>,
    /// RMSNorm of each query head before RoPE (Qwen3, Gemma 3).
    pub q_norm: Option<RmsNorm<B>>,
    /// RMSNorm of each key head before RoPE.
    pub k_norm: Option<RmsNorm<B>>,
    /// Query heads.
    #[module(skip)]
    pub heads: usize,
    /// Key/value heads; each serves `heads / kv_heads` query heads.
    #[module(skip)]
    pub kv_heads: usize,
    /// The factor on query·key scores.
    #[module(skip)]
    pub scale: f64,
    /// Global or sliding.
    #[module(skip)]
    pub layer_type: LayerType,
}

impl<B: Backend> Attention<B> {
    pub(crate) fn load(weights: &mut Scope, injector: &mut Injector, config: &DecoderConfig, layer: usize, device: &B::Device) -> Result<Self> {
        let (d, head_dim) = (config.hidden_size, config.head_dim());
        let (q, kv) = (config.num_attention_heads * head_dim, config.key_value_heads() * head_dim);
        let bias = config.qkv_bias();
        let mut projection = |name: &str, d_in: usize, d_out: usize, bias: bool| weights.peft_linear(injector, name, d_in, d_out, bias, device);
        let (q_proj, k_proj, v_proj) = (projection("q_proj", d, q, bias)?, projection("k_proj", d, kv, bias)?, projection("v_proj", d, kv, bias)?);
        let o_proj = projection("o_proj", q, d, config.attention_bias)?;
        let (q_norm, k_norm) = match config.family().qk_norm() {
            true => (Some(rms_norm(weights, "q_norm", head_dim, config, device)?), Some(rms_norm(weights, "k_norm", head_dim, config, device)?)),
            false => (None, None),
        };
        Ok(Self {
            q_proj,
            k_proj,
            v_proj,
            o_proj,
            q_norm,
            k_norm,
            heads: config.num_attention_heads,
            kv_heads: config.key_value_heads(),
            scale: config.attention_scale(),
            layer_type: config.layer_type(layer),
        })
    }

    /// `[B, T, heads·d]` → `[B, T, heads, d]`, a free reshape, then the head's RMSNorm if any.
    fn split_heads(x: Tensor<B, 3>, heads: usize, norm: Option<&RmsNorm<B>>) -> Tensor<B, 4> {
        let [batch, len, width] = x.dims();
        let x = x.reshape([batch, len, heads, width / heads]);
        match norm {
            Some(norm) => norm_f32(norm, x),
            None => x,
        }
    }

    /// `x` `[B, T, D]` at `positions`; `cache` is the model's cache and this layer's index in it.
    pub fn forward(&self, x: Tensor<B, 3>, positions: &Positions<B>, cache: Option<(&mut KvCache<B>, usize)>, adapters: &AdapterBank<B>) -> Tensor<B, 3> {
        let [batch, len, _] = x.dims();
        let (rope, mask) = match (self.layer_type, &positions.sliding_mask) {
            (LayerType::SlidingAttention, Some(sliding)) => (positions.sliding_rope, sliding.clone()),
            _ => (positions.rope, positions.mask.clone()),
        };
        let offset = positions.offset;
        // Heads become dim 1 after RoPE: `[B, heads, T, d]`.
        let q = Self::split_heads(self.q_proj.forward(x.clone(), adapters), self.heads, self.q_norm.as_ref());
        let k = Self::split_heads(self.k_proj.forward(x.clone(), adapters), self.kv_heads, self.k_norm.as_ref());
        let (q, k) = (rope.apply(q, offset).swap_dims(1, 2), rope.apply(k, offset).swap_dims(1, 2));
        let v = Self::split_heads(self.v_proj.forward(x, adapters), self.kv_heads, None).swap_dims(1, 2);
        let (k, v) = match cache {
            Some((cache, layer)) => cache.extend(layer, k, v),
            None => (k, v),
        };
        // Scores, mask and softmax in f32 whatever the weights' precision.
        let mixed = attention(q, k, v, Some(mask), self.scale);
        let [_, heads, _, head_dim] = mixed.dims();
        let merged = mixed.swap_dims(1, 2).reshape([batch, len, heads * head_dim]);
        self.o_proj.forward(merged, adapters)
    }
}
