//! The decoder: embedding, decoder layers, final RMSNorm, output head (or the tied embedding),
//! and its adapter bank; one design for every [`crate::Family`].

use std::path::Path;

use burn::module::Module;
use burn::nn::RmsNorm;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use wegeft::io::WeightStore;
use wegeft::{Adapted, AdapterBank, Injector};

use crate::attention::Positions;
use crate::block::DecoderLayer;
use crate::cache::KvCache;
use crate::config::{DecoderConfig, LayerType};
use crate::error::Result;
use wegeft::precision::{CastParams, Precision};
use crate::rms_norm::{norm_f32, rms_norm};
use crate::rope::Rope;
use crate::vocab_matrix::VocabMatrix;

/// A decoder-only causal language model with HF's structure and names, frozen but for its adapter.
#[derive(Module, Debug)]
pub struct Decoder<B: Backend> {
    /// The token embedding.
    pub embed_tokens: VocabMatrix<B>,
    /// The decoder layers, in order.
    pub layers: Vec<DecoderLayer<B>>,
    /// The final RMSNorm.
    pub norm: RmsNorm<B>,
    /// `lm_head`; `None` when tied to the embedding.
    pub lm_head: Option<VocabMatrix<B>>,
    /// The adapter (empty when nothing is adapted).
    pub adapters: AdapterBank<B>,
    /// The rotary embedding of global layers.
    #[module(skip)]
    pub rope: Rope,
    /// The rotary embedding of sliding layers.
    #[module(skip)]
    pub sliding_rope: Rope,
    /// The window of sliding layers, when the model has any.
    #[module(skip)]
    pub window: Option<usize>,
    /// The factor on token embeddings (√width for Gemma).
    #[module(skip)]
    pub embed_scale: Option<f64>,
    /// The longest sequence the model was trained for (`max_position_embeddings`): generation
    /// and training stay within it.
    #[module(skip)]
    pub context_length: usize,
}

impl<B: Backend> Decoder<B> {
    /// Builds the model from `weights` (HF names, PyTorch layout); the `injector` decides which
    /// projections are adapted ([`Injector::none`] for none), named as in HF
    /// (`model.layers.N.self_attn.q_proj`, …, `model.layers.N.mlp.down_proj`).
    pub fn load(config: &DecoderConfig, mut weights: WeightStore, mut injector: Injector, device: &B::Device) -> Result<Self> {
        config.validate(Path::new("the decoder's config"))?;
        let d = config.hidden_size;
        let mut root = weights.root();
        let mut model = root.sub("model");
        let embed_tokens = VocabMatrix::load(&mut model, "embed_tokens.weight", config.vocab_size, d, device)?;
        let layers = (0..config.num_hidden_layers)
            .map(|index| DecoderLayer::load(&mut model.sub("layers").sub(index), &mut injector, config, index, device))
            .collect::<Result<Vec<_>>>()?;
        let norm = rms_norm(&mut model, "norm", d, config, device)?;
        let lm_head = match config.tie_word_embeddings {
            true => None,
            false => Some(VocabMatrix::load(&mut root, "lm_head.weight", config.vocab_size, d, device)?),
        };
        weights.finish()?;
        Ok(Self {
            embed_tokens,
            layers,
            norm,
            lm_head,
            adapters: injector.finish(device)?,
            rope: Rope::new(config.rope(LayerType::FullAttention), config.head_dim()),
            sliding_rope: Rope::new(config.rope(LayerType::SlidingAttention), config.head_dim()),
            window: (0..config.num_hidden_layers).find_map(|layer| config.window(layer)),
            embed_scale: config.family().scales_embeddings().then(|| (d as f64).sqrt()),
            context_length: config.max_position_embeddings,
        })
    }

    /// Additive attention mask `[B, 1, T, S]` for `len` new tokens after `past` cached ones: causal,
    /// keys where `padding` (`[B, S]`, 1 = real token) is 0 are masked, and with a `window` so are
    /// keys `window` or more positions back.
    fn mask(batch: usize, len: usize, past: usize, padding: Option<&[Vec<u8>]>, window: Option<usize>, device: &B::Device) -> Tensor<B, 4> {
        let keys = past + len;
        let mut values = vec![0f32; batch * len * keys];
        for b in 0..batch {
            for q in 0..len {
                for k in 0..keys {
                    let future = k > past + q;
                    let padded = padding.is_some_and(|p| p[b][k] == 0);
                    let outside = window.is_some_and(|window| k + window <= past + q);
                    if future || padded || outside {
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
        let past = cache.as_ref().map_or(0, |c| c.len());
        let (mut x, positions) = self.inputs(tokens, past, padding);
        for (index, layer) in self.layers.iter().enumerate() {
            let layer_cache = cache.as_deref_mut().map(|c| (c, index));
            x = layer.forward(x, &positions, layer_cache, &self.adapters);
        }
        self.final_norm(x)
    }

    /// What the first layer takes for `tokens` after `past` cached ones: their (scaled)
    /// embeddings `[B, T, D]`, and the positions every layer shares.
    pub fn inputs(&self, tokens: Tensor<B, 2, Int>, past: usize, padding: Option<&[Vec<u8>]>) -> (Tensor<B, 3>, Positions<'_, B>) {
        let [batch, len] = tokens.dims();
        let device = tokens.device();
        let positions = Positions {
            rope: &self.rope,
            sliding_rope: &self.sliding_rope,
            mask: Self::mask(batch, len, past, padding, None, &device),
            sliding_mask: self.window.map(|window| Self::mask(batch, len, past, padding, Some(window), &device)),
            offset: past,
        };
        let x = self.embed_tokens.rows(tokens.reshape([batch * len])).reshape([batch, len, self.embed_tokens.width()]);
        match self.embed_scale {
            Some(scale) => (x * scale, positions),
            None => (x, positions),
        }
    }

    /// The final RMSNorm of the last layer's output.
    pub fn final_norm(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        norm_f32(&self.norm, x)
    }

    /// The output head: `lm_head`, or the tied embedding.
    pub fn head(&self) -> &VocabMatrix<B> {
        self.lm_head.as_ref().unwrap_or(&self.embed_tokens)
    }

    /// Vocabulary logits (f32) of hidden states, as one 2-D product over every position.
    pub fn logits(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        let [batch, len, width] = hidden.dims();
        let logits = self.head().logits(hidden.reshape([batch * len, width]));
        logits.reshape([batch, len, self.head().vocab()])
    }

    /// The model with its embedding, projections and output head in `precision` (RMSNorm
    /// weights and the adapter stay f32: the adapter is cast where it is used, so it trains in
    /// f32); a typed error when the backend lacks that precision.
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
            ..self
        })
    }

    /// Logits `[B, T, vocab]` for `tokens` `[B, T]` (see [`Self::hidden`] for the cache and padding).
    pub fn forward(&self, tokens: Tensor<B, 2, Int>, cache: Option<&mut KvCache<B>>, padding: Option<&[Vec<u8>]>) -> Tensor<B, 3> {
        self.logits(self.hidden(tokens, cache, padding))
    }

    /// The model with every packed projection decoded to f32 ([`wegeft::PeftLinear::densified`]): what
    /// merging and exporting take.
    pub fn densified(self) -> Self {
        let layers = self.layers.into_iter().map(DecoderLayer::densified).collect();
        Self { layers, ..self }
    }

    /// A cache sized for this model.
    pub fn new_cache(&self) -> KvCache<B> {
        KvCache::new(self.layers.len())
    }
}

impl<B: Backend> Adapted<B> for Decoder<B> {
    fn bank(&self) -> &AdapterBank<B> {
        &self.adapters
    }

    fn bank_mut(&mut self) -> &mut AdapterBank<B> {
        &mut self.adapters
    }

    fn packed_values(&self) -> usize {
        let layers = self.layers.iter().flat_map(DecoderLayer::projections).filter_map(|layer| layer.packed.as_ref());
        let vocab = [Some(&self.embed_tokens), self.lm_head.as_ref()].into_iter().flatten().filter_map(|matrix| matrix.packed.as_ref());
        layers.chain(vocab).map(|packed| packed.dims().iter().product::<usize>()).sum()
    }
}
