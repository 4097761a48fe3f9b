//! Decoder hyper-parameters under the field names (and defaults) of Hugging Face's `config.json`,
//! so the file is read and written by serde alone; a GGUF file's metadata is translated into the
//! same struct (see [`crate::gguf`]).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::LlmError;

/// A LLaMA-family decoder (`LlamaForCausalLM`'s `config.json`; other keys are ignored).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
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
    /// Width of one head; only `hidden_size / num_attention_heads` is supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<usize>,
    /// RoPE base θ [default: 10000].
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    /// RoPE scaling; only linear scaling is supported.
    #[serde(default)]
    pub rope_scaling: Option<RopeScaling>,
    /// RMSNorm's ε [default: 1e-6].
    #[serde(default = "default_rms_norm_eps")]
    pub rms_norm_eps: f64,
    /// Output head shares the token embedding.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Longest sequence the model was trained for [default: 2048].
    #[serde(default = "default_max_position_embeddings")]
    pub max_position_embeddings: usize,
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

fn default_rope_theta() -> f64 {
    10000.0
}

fn default_rms_norm_eps() -> f64 {
    1e-6
}

fn default_max_position_embeddings() -> usize {
    2048
}

impl LlamaConfig {
    /// A config with HF's defaults for everything but the sizes.
    pub fn new(vocab_size: usize, hidden_size: usize, intermediate_size: usize, layers: usize, heads: usize) -> Self {
        Self {
            vocab_size,
            hidden_size,
            intermediate_size,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            num_key_value_heads: None,
            head_dim: None,
            rope_theta: default_rope_theta(),
            rope_scaling: None,
            rms_norm_eps: default_rms_norm_eps(),
            tie_word_embeddings: false,
            max_position_embeddings: default_max_position_embeddings(),
        }
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Key/value heads (the attention heads unless grouped).
    pub fn key_value_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// The factor positions are divided by (1 without scaling).
    pub fn rope_factor(&self) -> f64 {
        self.rope_scaling.as_ref().map_or(1.0, |scaling| scaling.factor)
    }

    /// Checks what the model relies on; errors name `path`.
    pub fn validate(&self, path: &Path) -> crate::Result<()> {
        let heads = self.num_attention_heads;
        let problem = if heads == 0 || !self.hidden_size.is_multiple_of(heads) || self.hidden_size < 2 * heads {
            Some(format!("{heads} heads do not divide hidden size {} into heads of at least 2", self.hidden_size))
        } else if self.vocab_size == 0 || self.num_hidden_layers == 0 || self.intermediate_size == 0 {
            Some("the vocabulary, the layers and the MLP width must not be empty".to_string())
        } else if self.key_value_heads() == 0 || !heads.is_multiple_of(self.key_value_heads()) {
            Some(format!("{} key/value heads do not divide {heads} heads", self.key_value_heads()))
        } else if !self.head_dim().is_multiple_of(2) {
            Some("the head width must be even for rotary embeddings".to_string())
        } else if self.head_dim.is_some_and(|width| width != self.head_dim()) {
            Some("a head_dim other than hidden_size / num_attention_heads is not supported".to_string())
        } else if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps > 0.0) {
            Some(format!("rms_norm_eps must be a positive number, got {}", self.rms_norm_eps))
        } else if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            Some(format!("rope_theta must be a positive number, got {}", self.rope_theta))
        } else if !(self.rope_factor().is_finite() && self.rope_factor() > 0.0) {
            Some(format!("rope_scaling's factor must be a positive number, got {}", self.rope_factor()))
        } else if self.max_position_embeddings == 0 {
            Some("max_position_embeddings (the context length) must not be 0".to_string())
        } else {
            let kind = self.rope_scaling.as_ref().map(|s| s.rope_type.as_str()).filter(|kind| *kind != "linear");
            kind.map(|kind| format!("rope_scaling type `{kind}` is not supported (linear)"))
        };
        problem.map_or(Ok(()), |reason| Err(LlmError::Format { path: path.into(), reason }))
    }

    /// From a Hugging Face `config.json` of a `LlamaForCausalLM`.
    pub fn from_hf_json(path: &Path) -> crate::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| LlmError::Io { path: path.into(), source })?;
        let config: Self = serde_json::from_str(&text).map_err(|e| LlmError::Format {
            path: path.into(),
            reason: e.to_string(),
        })?;
        config.validate(path)?;
        Ok(config)
    }

    /// The `config.json` of this model as `transformers` writes it for f32 weights.
    pub fn to_hf_json(&self) -> serde_json::Value {
        let mut json = serde_json::to_value(self).expect("a config serialises");
        json["num_key_value_heads"] = self.key_value_heads().into();
        json["architectures"] = serde_json::json!(["LlamaForCausalLM"]);
        json["model_type"] = "llama".into();
        json["hidden_act"] = "silu".into();
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
    pub fn config(self) -> LlamaConfig {
        match self {
            Self::Smollm2_135m => LlamaConfig {
                num_key_value_heads: Some(3),
                rope_theta: 100_000.0,
                rms_norm_eps: 1e-5,
                tie_word_embeddings: true,
                max_position_embeddings: 8192,
                ..LlamaConfig::new(49_152, 576, 1536, 30, 9)
            },
        }
    }
}
