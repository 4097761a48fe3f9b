//! Grouped-query self-attention with RoPE, an additive mask and an optional KV cache.

use burn::module::Module;
use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{FloatDType, Tensor};
use wegeft::io::Scope;
use wegeft::{AdapterBank, Injector, PeftLinear};

use crate::cache::KvCache;
use crate::config::LlamaConfig;
use crate::error::Result;
use crate::rope::Rope;

/// Where a step's tokens sit: RoPE positions from `offset`, and the additive attention mask
/// `[B, 1, T, S]` over the cached and new keys. Shared by every layer of a forward pass.
pub struct Positions<'a, B: Backend> {
    /// The model's rotary embedding.
    pub rope: &'a Rope,
    /// The additive attention mask `[B, 1, T, S]`.
    pub mask: Tensor<B, 4>,
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
    /// Query heads.
    #[module(skip)]
    pub heads: usize,
    /// Key/value heads; each serves `heads / kv_heads` query heads.
    #[module(skip)]
    pub kv_heads: usize,
}

impl<B: Backend> Attention<B> {
    pub(crate) fn load(weights: &mut Scope, injector: &mut Injector, config: &LlamaConfig, device: &B::Device) -> Result<Self> {
        let (d, kv) = (config.hidden_size, config.key_value_heads() * config.head_dim());
        let mut projection = |name: &str, d_out: usize| weights.peft_linear(injector, name, d, d_out, false, device);
        Ok(Self {
            q_proj: projection("q_proj", d)?,
            k_proj: projection("k_proj", kv)?,
            v_proj: projection("v_proj", kv)?,
            o_proj: projection("o_proj", d)?,
            heads: config.num_attention_heads,
            kv_heads: config.key_value_heads(),
        })
    }

    /// `[B, T, heads·d]` → `[B, T, heads, d]`, a free reshape.
    fn split_heads(x: Tensor<B, 3>, heads: usize) -> Tensor<B, 4> {
        let [batch, len, width] = x.dims();
        x.reshape([batch, len, heads, width / heads])
    }

    /// `x` `[B, T, D]` at `positions`; `cache` is the model's cache and this layer's index in it.
    pub fn forward(&self, x: Tensor<B, 3>, positions: &Positions<B>, cache: Option<(&mut KvCache<B>, usize)>, adapters: &AdapterBank<B>) -> Tensor<B, 3> {
        let [batch, len, width] = x.dims();
        let Positions { rope, offset, .. } = *positions;
        // Heads become dim 1 after RoPE: `[B, heads, T, d]`.
        let q = rope.apply(Self::split_heads(self.q_proj.forward(x.clone(), adapters), self.heads), offset).swap_dims(1, 2);
        let k = rope.apply(Self::split_heads(self.k_proj.forward(x.clone(), adapters), self.kv_heads), offset).swap_dims(1, 2);
        let v = Self::split_heads(self.v_proj.forward(x, adapters), self.kv_heads).swap_dims(1, 2);
        let (k, v) = match cache {
            Some((cache, layer)) => cache.extend(layer, k, v),
            None => (k, v),
        };
        let head_dim = width / self.heads;
        let group = self.heads / self.kv_heads;
        let repeat = |t: Tensor<B, 4>| {
            let [b, kv, s, d] = t.dims();
            t.unsqueeze_dim::<5>(2).expand([b, kv, group, s, d]).reshape([b, kv * group, s, d])
        };
        // Scores, mask and softmax in f32 whatever the weights' precision.
        let dtype = FloatDType::from(q.dtype());
        let scores = q.matmul(repeat(k).swap_dims(2, 3)).cast(FloatDType::F32) / (head_dim as f64).sqrt() + positions.mask.clone();
        let mixed = softmax(scores, 3).cast(dtype).matmul(repeat(v));
        let merged = mixed.swap_dims(1, 2).reshape([batch, len, width]);
        self.o_proj.forward(merged, adapters)
    }
}
