//! Decoder hyper-parameters under the field names (and defaults) of Hugging Face's `config.json`,
//! so the file is read and written by serde alone; a GGUF file's metadata is translated into the
//! same struct (see [`crate::gguf`]). `model_type` picks the [`Family`]; the optional keys are the
//! ones only some families have.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::LlmError;
use crate::family::{Activation, Family};

/// A decoder's `config.json` (LLaMA, Mistral, Qwen2, Qwen3, Gemma 3 text; other keys are ignored).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecoderConfig {
    /// The family [default: llama].
    #[serde(default = "default_family")]
    pub model_type: Family,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Model width: the embedding and residual-stream size.
    pub hidden_size: usize,
    /// Width of the MLP's hidden layer.
    pub intermediate_size: usize,
    /// Decoder layers.
    pub num_hidden_layers: usize,
    /// Attention (query) heads.
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention when fewer than the attention heads); HF's
    /// default is one per attention head.
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// Width of one head [default: hidden_size / num_attention_heads].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<usize>,
    /// RoPE base θ [default: 10000]; newer files put it in `rope_parameters`.
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    /// RoPE scaling; only linear scaling is supported.
    #[serde(default)]
    pub rope_scaling: Option<RopeScaling>,
    /// transformers 5's RoPE settings: one set, or one per layer type (Gemma 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_parameters: Option<RopeParameters>,
    /// Gemma 3's θ for sliding layers in transformers 4's files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_local_base_freq: Option<f64>,
    /// RMSNorm's ε [default: 1e-6].
    #[serde(default = "default_rms_norm_eps")]
    pub rms_norm_eps: f64,
    /// Output head shares the token embedding [default: the family's].
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Longest sequence the model was trained for [default: 2048].
    #[serde(default = "default_max_position_embeddings")]
    pub max_position_embeddings: usize,
    /// Biases on the q, k, v and o projections.
    #[serde(default)]
    pub attention_bias: bool,
    /// Keys a sliding layer attends to: the query's own and the `sliding_window − 1` before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sliding_window: Option<usize>,
    /// Which layers slide (`sliding_attention`) and which attend to everything (`full_attention`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_types: Option<Vec<LayerType>>,
    /// Qwen2/3 in transformers 4's files: layers from `max_window_layers` on slide when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_sliding_window: Option<bool>,
    /// See `use_sliding_window`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_window_layers: Option<usize>,
    /// Gemma 3: attention scores are scaled by `query_pre_attn_scalar^-½` instead of `head_dim^-½`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_pre_attn_scalar: Option<f64>,
    /// The MLP's activation: `silu` or `gelu_pytorch_tanh` [default: the family's].
    #[serde(default, alias = "hidden_activation", skip_serializing_if = "Option::is_none")]
    pub hidden_act: Option<String>,
    /// Gemma 2's score and logit soft-capping: refused when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attn_logit_softcapping: Option<f64>,
    /// See `attn_logit_softcapping`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_logit_softcapping: Option<f64>,
}

/// Whether a layer attends within a sliding window or to every earlier token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerType {
    /// Every earlier token.
    FullAttention,
    /// The last `sliding_window` tokens.
    SlidingAttention,
}

/// HF's `rope_scaling`, e.g. `{"rope_type": "linear", "factor": 2.0}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RopeScaling {
    /// `linear` (older files call the key `type`).
    #[serde(alias = "type")]
    pub rope_type: String,
    /// Positions are divided by this factor.
    pub factor: f64,
}

/// One set of transformers 5's `rope_parameters`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RopeSpec {
    /// `default` or `linear`.
    pub rope_type: String,
    /// Base θ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_theta: Option<f64>,
    /// Linear scaling's factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<f64>,
}

/// `rope_parameters`: one set for every layer, or one per [`LayerType`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RopeParameters {
    /// The same for every layer.
    Shared(RopeSpec),
    /// By layer type (Gemma 3: θ 10⁶ for global layers, 10⁴ for sliding ones).
    PerLayerType(BTreeMap<LayerType, RopeSpec>),
}

/// RoPE as one layer applies it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RopeSettings {
    /// Base θ.
    pub theta: f64,
    /// Positions are divided by this (1 without scaling).
    pub factor: f64,
}

fn default_family() -> Family {
    Family::Llama
}

fn default_rope_theta() -> f64 {
    10000.0
}

fn default_rms_norm_eps() -> f64 {
    1e-6
}

fn default_max_position_embeddings() -> usize {
    2048
}

impl DecoderConfig {
    /// A LLaMA config with HF's defaults for everything but the sizes.
    pub fn new(vocab_size: usize, hidden_size: usize, intermediate_size: usize, layers: usize, heads: usize) -> Self {
        Self {
            model_type: Family::Llama,
            vocab_size,
            hidden_size,
            intermediate_size,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            num_key_value_heads: None,
            head_dim: None,
            rope_theta: default_rope_theta(),
            rope_scaling: None,
            rope_parameters: None,
            rope_local_base_freq: None,
            rms_norm_eps: default_rms_norm_eps(),
            tie_word_embeddings: false,
            max_position_embeddings: default_max_position_embeddings(),
            attention_bias: false,
            sliding_window: None,
            layer_types: None,
            use_sliding_window: None,
            max_window_layers: None,
            query_pre_attn_scalar: None,
            hidden_act: None,
            attn_logit_softcapping: None,
            final_logit_softcapping: None,
        }
    }

    /// The decoder family.
    pub fn family(&self) -> Family {
        self.model_type
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// Key/value heads (the attention heads unless grouped).
    pub fn key_value_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// Whether the q, k and v projections have biases.
    pub fn qkv_bias(&self) -> bool {
        self.attention_bias || self.family().qkv_bias()
    }

    /// Attention scores' scale: `query_pre_attn_scalar^-½` (Gemma) or `head_dim^-½`.
    pub fn attention_scale(&self) -> f64 {
        self.query_pre_attn_scalar.unwrap_or(self.head_dim() as f64).powf(-0.5)
    }

    /// The MLP's activation.
    pub fn activation(&self) -> Option<Activation> {
        match self.hidden_act.as_deref() {
            None if self.family() == Family::Gemma3 => Some(Activation::GeluTanh),
            None | Some("silu") => Some(Activation::Silu),
            Some("gelu_pytorch_tanh") => Some(Activation::GeluTanh),
            Some(_) => None,
        }
    }

    /// Layer `layer`'s type: `layer_types` when the file lists them, else the family's rule.
    pub fn layer_type(&self, layer: usize) -> LayerType {
        if let Some(types) = &self.layer_types {
            return types[layer];
        }
        let slides = self.sliding_window.is_some()
            && match self.family() {
                Family::Llama => false,
                Family::Mistral => true,
                Family::Qwen2 | Family::Qwen3 => self.use_sliding_window == Some(true) && layer >= self.max_window_layers.unwrap_or(0),
                // transformers' default pattern: every sixth layer is global.
                Family::Gemma3 => !(layer + 1).is_multiple_of(6),
            };
        if slides { LayerType::SlidingAttention } else { LayerType::FullAttention }
    }

    /// The window of layer `layer`, if it slides.
    pub fn window(&self, layer: usize) -> Option<usize> {
        (self.layer_type(layer) == LayerType::SlidingAttention).then_some(self.sliding_window).flatten()
    }

    /// RoPE for layers of type `kind`.
    pub fn rope(&self, kind: LayerType) -> RopeSettings {
        let spec = match &self.rope_parameters {
            Some(RopeParameters::Shared(spec)) => Some(spec),
            Some(RopeParameters::PerLayerType(specs)) => specs.get(&kind).or_else(|| specs.get(&LayerType::FullAttention)),
            None => None,
        };
        let local = self.rope_local_base_freq.filter(|_| kind == LayerType::SlidingAttention);
        let theta = spec.and_then(|spec| spec.rope_theta).or(local).unwrap_or(self.rope_theta);
        let factor = match spec {
            Some(spec) => spec.factor.filter(|_| spec.rope_type == "linear"),
            None => self.rope_scaling.as_ref().map(|scaling| scaling.factor),
        };
        RopeSettings { theta, factor: factor.unwrap_or(1.0) }
    }

    /// The RoPE types (`rope_scaling`'s or `rope_parameters`') other than `default` and `linear`.
    fn unsupported_rope(&self) -> Option<String> {
        let mut kinds: Vec<&str> = self.rope_scaling.iter().map(|scaling| scaling.rope_type.as_str()).collect();
        match &self.rope_parameters {
            Some(RopeParameters::Shared(spec)) => kinds.push(&spec.rope_type),
            Some(RopeParameters::PerLayerType(specs)) => kinds.extend(specs.values().map(|spec| spec.rope_type.as_str())),
            None => {}
        }
        kinds.into_iter().find(|kind| !matches!(*kind, "default" | "linear")).map(String::from)
    }

    /// Checks what the model relies on; errors name `path`.
    pub fn validate(&self, path: &Path) -> crate::Result<()> {
        let heads = self.num_attention_heads;
        let positive = |value: f64| value.is_finite() && value > 0.0;
        let ropes = [LayerType::FullAttention, LayerType::SlidingAttention].map(|kind| self.rope(kind));
        let problem = if heads == 0 || self.head_dim() < 2 {
            Some(format!("{heads} heads of width {} are not a usable attention", self.head_dim()))
        } else if self.head_dim.is_none() && !self.hidden_size.is_multiple_of(heads) {
            Some(format!("{heads} heads do not divide hidden size {} (and head_dim is not given)", self.hidden_size))
        } else if self.vocab_size == 0 || self.num_hidden_layers == 0 || self.intermediate_size == 0 {
            Some("the vocabulary, the layers and the MLP width must not be empty".to_string())
        } else if self.key_value_heads() == 0 || !heads.is_multiple_of(self.key_value_heads()) {
            Some(format!("{} key/value heads do not divide {heads} heads", self.key_value_heads()))
        } else if !self.head_dim().is_multiple_of(2) {
            Some("the head width must be even for rotary embeddings".to_string())
        } else if !positive(self.rms_norm_eps) {
            Some(format!("rms_norm_eps must be a positive number, got {}", self.rms_norm_eps))
        } else if let Some(rope) = ropes.iter().find(|rope| !positive(rope.theta)) {
            Some(format!("rope_theta must be a positive number, got {}", rope.theta))
        } else if let Some(rope) = ropes.iter().find(|rope| !positive(rope.factor)) {
            Some(format!("rope_scaling's factor must be a positive number, got {}", rope.factor))
        } else if let Some(kind) = self.unsupported_rope() {
            Some(format!("rope type `{kind}` is not supported (default, linear)"))
        } else if self.max_position_embeddings == 0 {
            Some("max_position_embeddings (the context length) must not be 0".to_string())
        } else if self.layer_types.as_ref().is_some_and(|types| types.len() != self.num_hidden_layers) {
            Some(format!("layer_types lists {} layers for num_hidden_layers {}", self.layer_types.as_ref().map_or(0, Vec::len), self.num_hidden_layers))
        } else if self.sliding_window == Some(0) {
            Some("sliding_window must not be 0".to_string())
        } else if self.query_pre_attn_scalar.is_some_and(|scalar| !positive(scalar)) {
            Some("query_pre_attn_scalar must be a positive number".to_string())
        } else if self.activation().is_none() {
            Some(format!("hidden_act `{}` is not supported (silu, gelu_pytorch_tanh)", self.hidden_act.as_deref().unwrap_or_default()))
        } else if self.attn_logit_softcapping.is_some() || self.final_logit_softcapping.is_some() {
            Some("logit soft-capping (Gemma 2) is not supported".to_string())
        } else {
            None
        };
        problem.map_or(Ok(()), |reason| Err(LlmError::Format { path: path.into(), reason }))
    }

    /// From a Hugging Face `config.json` of a supported family.
    pub fn from_hf_json(path: &Path) -> crate::Result<Self> {
        let format = |reason: String| LlmError::Format { path: path.into(), reason };
        let text = std::fs::read_to_string(path).map_err(|source| LlmError::Io { path: path.into(), source })?;
        let mut json: serde_json::Value = serde_json::from_str(&text).map_err(|e| format(e.to_string()))?;
        // The head's tying defaults by family (Gemma ties); nulls mean "default" to transformers.
        if let Some(object) = json.as_object_mut() {
            object.retain(|_, value| !value.is_null());
            if !object.contains_key("tie_word_embeddings") {
                let family = object.get("model_type").cloned().map(serde_json::from_value::<Family>);
                let ties = matches!(family, Some(Ok(family)) if family.ties_embeddings_by_default());
                object.insert("tie_word_embeddings".into(), ties.into());
            }
        }
        let config: Self = serde_json::from_value(json).map_err(|e| format(e.to_string()))?;
        config.validate(path)?;
        Ok(config)
    }

    /// The `config.json` of this model as `transformers` writes it for f32 weights.
    pub fn to_hf_json(&self) -> serde_json::Value {
        let mut json = serde_json::to_value(self).expect("a config serialises");
        json["num_key_value_heads"] = self.key_value_heads().into();
        json["head_dim"] = self.head_dim().into();
        json["architectures"] = serde_json::json!([self.family().architecture()]);
        let activation = match self.activation() {
            Some(Activation::GeluTanh) => "gelu_pytorch_tanh",
            _ => "silu",
        };
        // Gemma's configs name the key `hidden_activation`.
        if self.family() == Family::Gemma3 {
            json.as_object_mut().expect("an object").remove("hidden_act");
            json["hidden_activation"] = activation.into();
        } else {
            json["hidden_act"] = activation.into();
        }
        json["torch_dtype"] = "float32".into();
        json
    }
}

/// Published model shapes, for benchmarks on random weights where the checkpoint is not at hand
/// (a GPU machine without the file): the same step cost as the real model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum NamedShape {
    /// `HuggingFaceTB/SmolLM2-135M`: 30 layers of width 576, 9 heads over 3 key/value heads.
    #[value(name = "smollm2-135m")]
    Smollm2_135m,
}

impl NamedShape {
    /// The shape's `config.json`, as its model card publishes it.
    pub fn config(self) -> DecoderConfig {
        match self {
            Self::Smollm2_135m => DecoderConfig {
                num_key_value_heads: Some(3),
                rope_theta: 100_000.0,
                rms_norm_eps: 1e-5,
                tie_word_embeddings: true,
                max_position_embeddings: 8192,
                ..DecoderConfig::new(49_152, 576, 1536, 30, 9)
            },
        }
    }
}
