//! A pre-norm decoder layer: `x + attn(norm(x))`, then `x + mlp(norm(x))`.

use burn::module::Module;
use burn::nn::RmsNorm;
use burn::tensor::backend::Backend;
use burn::tensor::{FloatDType, Tensor};
use wegeft::AdapterBank;

use crate::attention::Attention;
use crate::cache::KvCache;
use crate::mlp::Mlp;
use crate::rope::Rope;

/// `model.layers.N`.
#[derive(Module, Debug)]
pub struct DecoderLayer<B: Backend> {
    pub input_layernorm: RmsNorm<B>,
    pub self_attn: Attention<B>,
    pub post_attention_layernorm: RmsNorm<B>,
    pub mlp: Mlp<B>,
}

impl<B: Backend> DecoderLayer<B> {
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        rope: &Rope,
        mask: Tensor<B, 4>,
        offset: usize,
        cache: Option<(&mut KvCache<B>, usize)>,
        adapters: Option<&AdapterBank<B>>,
    ) -> Tensor<B, 3> {
        let attended = self.self_attn.forward(norm_f32(&self.input_layernorm, x.clone()), rope, mask, offset, cache, adapters);
        let x = x + attended;
        let mixed = self.mlp.forward(norm_f32(&self.post_attention_layernorm, x.clone()), adapters);
        x + mixed
    }
}

/// RMSNorm in f32 (its weights stay f32 under half precision), returned in `x`'s precision.
pub fn norm_f32<B: Backend>(norm: &RmsNorm<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    let dtype = x.dtype();
    norm.forward(x.cast(FloatDType::F32)).cast(FloatDType::from(dtype))
}
