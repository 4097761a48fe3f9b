//! Multi-head self-attention with timm's fused `qkv`, split into adaptable q, k and v slices.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};
use wegeft::kernels::attention;
use wegeft::precision::autocast;
use wegeft::io::Scope;
use wegeft::{AdapterBank, Injector, PeftLinear};

use crate::error::Result;

/// timm's `attn`. The fused `attn.qkv` [3D, D] is held as three D→D layers named
/// `attn.qkv.q`, `attn.qkv.k`, `attn.qkv.v`, so each slice can carry its own adapter group.
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    /// Query slice of `attn.qkv`.
    pub q: PeftLinear<B>,
    /// Key slice of `attn.qkv`.
    pub k: PeftLinear<B>,
    /// Value slice of `attn.qkv`.
    pub v: PeftLinear<B>,
    /// Output projection `attn.proj` (the paper's ViT target).
    pub proj: PeftLinear<B>,
    /// Number of heads.
    pub num_heads: usize,
}

impl<B: Backend> Attention<B> {
    pub(crate) fn load(weights: &mut Scope, injector: &mut Injector, dim: usize, num_heads: usize, device: &B::Device) -> Result<Self> {
        let fused = weights.linear::<B>("qkv", dim, 3 * dim, true, device)?;
        let weight = fused.weight.val();
        let bias = fused.bias.expect("loaded with bias").val();
        // Slices of a loaded tensor are not leaves: each part becomes a fresh parameter.
        let leaf = |tensor: Tensor<B, 2>| Param::from_tensor(tensor.detach());
        let mut slice = |index: usize, name: &str| -> Result<PeftLinear<B>> {
            let columns = index * dim..(index + 1) * dim;
            let part = Linear {
                weight: leaf(weight.clone().slice([0..dim, columns.clone()])),
                bias: Some(Param::from_tensor(bias.clone().slice([columns]).detach())),
            };
            Ok(injector.linear(&weights.key(&format!("qkv.{name}")), part)?)
        };
        let (q, k, v) = (slice(0, "q")?, slice(1, "k")?, slice(2, "v")?);
        let proj = weights.peft_linear(injector, "proj", dim, dim, true, device)?;
        Ok(Self { q, k, v, proj, num_heads })
    }

    /// `[B, N, D]` → `[B, N, D]`.
    pub fn forward(&self, x: Tensor<B, 3>, adapters: &AdapterBank<B>) -> Tensor<B, 3> {
        let [batch, tokens, dim] = x.dims();
        let head_dim = dim / self.num_heads;
        let heads = |layer: &PeftLinear<B>| {
            layer.forward(x.clone(), adapters)
                .reshape([batch, tokens, self.num_heads, head_dim])
                .swap_dims(1, 2)
        };
        // softmax(q·kᵀ/√d)·v through burn's attention op: a fused kernel where the backend has one
        // (Flex, CUDA, WGPU), burn's reference composition under autodiff. In f32 whatever the
        // blocks' precision, as the softmax needs.
        let dtype = x.dtype();
        let f32_heads = |layer: &PeftLinear<B>| autocast(heads(layer), DType::F32);
        let scale = 1.0 / (head_dim as f64).sqrt();
        let mixed = attention(f32_heads(&self.q), f32_heads(&self.k), f32_heads(&self.v), None, scale);
        let mixed = autocast(mixed, dtype);
        let mixed = mixed.swap_dims(1, 2).reshape([batch, tokens, dim]);
        self.proj.forward(mixed, adapters)
    }
}

