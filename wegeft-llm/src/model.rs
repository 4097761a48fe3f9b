//! The LLaMA decoder: embedding, decoder layers, final RMSNorm, output head (or the tied
//! embedding), with an optional adapter bank.

use burn::module::{Module, Param};
use burn::nn::{Embedding, EmbeddingConfig, Linear, RmsNorm, RmsNormConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{FloatDType, Int, Tensor, TensorData};
use wegeft::{AdapterBank, Injector, PeftLinear};

use crate::attention::Attention;
use crate::block::{norm_f32, DecoderLayer};
use crate::cache::KvCache;
use crate::config::LlamaConfig;
use crate::error::Result;
use crate::mlp::Mlp;
use crate::precision::{CastParams, Precision};
use crate::rope::Rope;
use crate::weights::LlamaWeights;

/// A LLaMA-family causal language model, frozen but for its adapter.
#[derive(Module, Debug)]
pub struct Llama<B: Backend> {
    pub embed_tokens: Embedding<B>,
    pub layers: Vec<DecoderLayer<B>>,
    pub norm: RmsNorm<B>,
    /// `lm_head`; `None` when tied to the embedding.
    pub lm_head: Option<Linear<B>>,
    pub adapters: Option<AdapterBank<B>>,
    #[module(skip)]
    pub rope: Rope,
}

fn rms_norm<B: Backend>(weights: &mut LlamaWeights, name: &str, config: &LlamaConfig, device: &B::Device) -> Result<RmsNorm<B>> {
    let mut norm = RmsNormConfig::new(config.hidden_size).with_epsilon(config.rms_norm_eps).init(device);
    norm.gamma = Param::from_tensor(weights.take(name, [config.hidden_size], device)?);
    Ok(norm.no_grad())
}

/// A frozen `Linear` from the PyTorch-layout `{name}.weight` `[d_out, d_in]` (LLaMA has no biases).
fn linear<B: Backend>(weights: &mut LlamaWeights, name: &str, d_in: usize, d_out: usize, device: &B::Device) -> Result<Linear<B>> {
    let weight: Tensor<B, 2> = weights.take(&format!("{name}.weight"), [d_out, d_in], device)?;
    Ok(Linear {
        weight: Param::from_tensor(weight.transpose().detach()).set_require_grad(false),
        bias: None,
    })
}

impl<B: Backend> Llama<B> {
    /// Builds the model from `weights`; the injector (if any) adapts the layers it targets, named
    /// as in HF (`model.layers.N.self_attn.q_proj`, …, `model.layers.N.mlp.down_proj`).
    pub fn load(config: &LlamaConfig, mut weights: LlamaWeights, mut injector: Option<Injector>, device: &B::Device) -> Result<Self> {
        let (d, ff, kv) = (config.hidden_size, config.intermediate_size, config.num_kv_heads * config.head_dim());
        let mut embed_tokens = EmbeddingConfig::new(config.vocab_size, d).init(device);
        embed_tokens.weight = Param::from_tensor(weights.take("model.embed_tokens.weight", [config.vocab_size, d], device)?);
        let embed_tokens = embed_tokens.no_grad();
        let mut layers = Vec::with_capacity(config.num_layers);
        for index in 0..config.num_layers {
            let prefix = format!("model.layers.{index}");
            let mut adapted = |name: &str, d_in: usize, d_out: usize| -> Result<PeftLinear<B>> {
                let key = format!("{prefix}.{name}");
                let base = linear(&mut weights, &key, d_in, d_out, device)?;
                Ok(match injector.as_mut() {
                    Some(injector) => injector.linear(&key, base)?,
                    None => PeftLinear::frozen(&key, base),
                })
            };
            let self_attn = Attention {
                q_proj: adapted("self_attn.q_proj", d, d)?,
                k_proj: adapted("self_attn.k_proj", d, kv)?,
                v_proj: adapted("self_attn.v_proj", d, kv)?,
                o_proj: adapted("self_attn.o_proj", d, d)?,
                heads: config.num_heads,
                kv_heads: config.num_kv_heads,
            };
            let mlp = Mlp {
                gate_proj: adapted("mlp.gate_proj", d, ff)?,
                up_proj: adapted("mlp.up_proj", d, ff)?,
                down_proj: adapted("mlp.down_proj", ff, d)?,
            };
            layers.push(DecoderLayer {
                input_layernorm: rms_norm(&mut weights, &format!("{prefix}.input_layernorm.weight"), config, device)?,
                self_attn,
                post_attention_layernorm: rms_norm(&mut weights, &format!("{prefix}.post_attention_layernorm.weight"), config, device)?,
                mlp,
            });
        }
        let norm = rms_norm(&mut weights, "model.norm.weight", config, device)?;
        let lm_head = if config.tie_word_embeddings {
            None
        } else {
            Some(linear(&mut weights, "lm_head", d, config.vocab_size, device)?)
        };
        weights.finish()?;
        Ok(Self {
            embed_tokens,
            layers,
            norm,
            lm_head,
            adapters: injector.map(|injector| injector.finish(device)).transpose()?,
            rope: Rope::new(config.rope_theta, config.rope_scaling, config.head_dim()),
        })
    }

    /// Additive attention mask `[B, 1, T, S]` for `len` new tokens after `past` cached ones: causal,
    /// and keys where `padding` (`[B, S]`, 1 = real token) is 0 are masked.
    fn mask(batch: usize, len: usize, past: usize, padding: Option<&[Vec<u8>]>, device: &B::Device) -> Tensor<B, 4> {
        let keys = past + len;
        let mut values = vec![0f32; batch * len * keys];
        for b in 0..batch {
            for q in 0..len {
                for k in 0..keys {
                    let future = k > past + q;
                    let padded = padding.is_some_and(|p| p[b][k] == 0);
                    if future || padded {
                        values[(b * len + q) * keys + k] = -1e9;
                    }
                }
            }
        }
        Tensor::from_data(TensorData::new(values, [batch, 1, len, keys]), device)
    }

    /// Final normed hidden states `[B, T, D]` for `tokens` `[B, T]`. With a cache, the tokens
    /// continue the cached ones and the cache grows; `padding` (`[B, cached + T]`, 1 = real)
    /// masks padded keys.
    pub fn hidden(&self, tokens: Tensor<B, 2, Int>, mut cache: Option<&mut KvCache<B>>, padding: Option<&[Vec<u8>]>) -> Tensor<B, 3> {
        let [batch, len] = tokens.dims();
        let past = cache.as_ref().map_or(0, |c| c.len());
        let mask = Self::mask(batch, len, past, padding, &tokens.device());
        let mut x = self.embed_tokens.forward(tokens);
        for (index, layer) in self.layers.iter().enumerate() {
            let layer_cache = cache.as_deref_mut().map(|c| (c, index));
            x = layer.forward(x, &self.rope, mask.clone(), past, layer_cache, self.adapters.as_ref());
        }
        norm_f32(&self.norm, x)
    }

    /// Vocabulary logits (f32) of hidden states (the output head, or the tied embedding).
    pub fn logits(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        // One 2-D product over every position; the tied embedding is read transposed in place
        // (a batched product would copy the vocab×D matrix into a contiguous transpose).
        let [batch, len, width] = hidden.dims();
        let rows = hidden.reshape([batch * len, width]);
        let logits = match &self.lm_head {
            Some(head) => head.forward(rows),
            None => rows.matmul(self.embed_tokens.weight.val().transpose()),
        };
        let vocab = logits.dims()[1];
        logits.reshape([batch, len, vocab]).cast(FloatDType::F32)
    }

    /// The model with its embedding, projections, output head and adapters in `precision`
    /// (RMSNorm weights stay f32); a typed error when the backend lacks that precision.
    pub fn with_precision(self, precision: Precision, device: &B::Device) -> Result<Self> {
        precision.check::<B>(device)?;
        let mut cast = CastParams(precision.float_dtype());
        let layers = self
            .layers
            .into_iter()
            .map(|layer| DecoderLayer {
                self_attn: layer.self_attn.map(&mut cast),
                mlp: layer.mlp.map(&mut cast),
                ..layer
            })
            .collect();
        Ok(Self {
            embed_tokens: self.embed_tokens.map(&mut cast),
            layers,
            lm_head: self.lm_head.map(|head| head.map(&mut cast)),
            adapters: self.adapters.map(|bank| bank.map(&mut cast)),
            ..self
        })
    }

    /// Logits `[B, T, vocab]` for `tokens` `[B, T]` (see [`Self::hidden`] for the cache and padding).
    pub fn forward(&self, tokens: Tensor<B, 2, Int>, cache: Option<&mut KvCache<B>>, padding: Option<&[Vec<u8>]>) -> Tensor<B, 3> {
        self.logits(self.hidden(tokens, cache, padding))
    }

    /// A cache sized for this model.
    pub fn new_cache(&self) -> KvCache<B> {
        KvCache::new(self.layers.len())
    }
}
