//! Decoder hyper-parameters, from a GGUF file's metadata or a Hugging Face `config.json`.

use std::path::Path;

use burn::config::Config;

use crate::error::LlmError;
use crate::gguf::{GgufFile, MetadataValue};

/// A LLaMA-family decoder.
#[derive(Config, Debug, PartialEq)]
pub struct LlamaConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    /// Key/value heads (grouped-query attention when fewer than `num_heads`).
    pub num_kv_heads: usize,
    #[config(default = 10000.0)]
    pub rope_theta: f64,
    /// Linear RoPE scaling: positions are divided by this factor.
    #[config(default = 1.0)]
    pub rope_scaling: f64,
    #[config(default = 1e-5)]
    pub rms_norm_eps: f64,
    /// Output head shares the token embedding.
    #[config(default = false)]
    pub tie_word_embeddings: bool,
    #[config(default = 2048)]
    pub max_position_embeddings: usize,
}

impl LlamaConfig {
    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_heads
    }

    /// Checks sizes that the model relies on.
    pub fn validate(&self, path: &Path) -> crate::Result<()> {
        let problem = if self.num_heads == 0 || !self.hidden_size.is_multiple_of(self.num_heads) {
            Some(format!("{} heads do not divide hidden size {}", self.num_heads, self.hidden_size))
        } else if self.num_kv_heads == 0 || !self.num_heads.is_multiple_of(self.num_kv_heads) {
            Some(format!("{} key/value heads do not divide {} heads", self.num_kv_heads, self.num_heads))
        } else if !self.head_dim().is_multiple_of(2) {
            Some("the head width must be even for rotary embeddings".to_string())
        } else {
            None
        };
        problem.map_or(Ok(()), |reason| Err(LlmError::Format { path: path.into(), reason }))
    }

    /// From GGUF metadata (`general.architecture` must be `llama`).
    pub fn from_gguf(file: &GgufFile) -> crate::Result<Self> {
        let architecture = file.get("general.architecture")?.as_str().unwrap_or_default();
        if architecture != "llama" {
            return Err(LlmError::Format {
                path: file.path.clone(),
                reason: format!("architecture `{architecture}` is not supported (llama)"),
            });
        }
        let number = |key: &str| -> crate::Result<usize> {
            file.get(&format!("llama.{key}"))?.as_usize().ok_or_else(|| LlmError::Format {
                path: file.path.clone(),
                reason: format!("metadata `llama.{key}` is not an unsigned integer"),
            })
        };
        let float = |key: &str| file.metadata.get(&format!("llama.{key}")).and_then(MetadataValue::as_f64);
        let vocab_size = match number("vocab_size") {
            Ok(size) => size,
            Err(_) => match file.get("tokenizer.ggml.tokens")? {
                MetadataValue::Array(tokens) => tokens.len(),
                _ => 0,
            },
        };
        let heads = number("attention.head_count")?;
        let config = Self::new(
            vocab_size,
            number("embedding_length")?,
            number("feed_forward_length")?,
            number("block_count")?,
            heads,
            number("attention.head_count_kv").unwrap_or(heads),
        )
        .with_rope_theta(float("rope.freq_base").unwrap_or(10000.0))
        .with_rope_scaling(float("rope.scale_linear").unwrap_or(1.0))
        .with_rms_norm_eps(float("attention.layer_norm_rms_epsilon").unwrap_or(1e-5))
        .with_tie_word_embeddings(!file.tensors.contains_key("output.weight"))
        .with_max_position_embeddings(number("context_length").unwrap_or(2048));
        config.validate(&file.path)?;
        Ok(config)
    }

    /// From a Hugging Face `config.json` of a `LlamaForCausalLM`.
    pub fn from_hf_json(path: &Path) -> crate::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| LlmError::Io { path: path.into(), source })?;
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| LlmError::Format {
            path: path.into(),
            reason: e.to_string(),
        })?;
        let number = |key: &str| -> crate::Result<usize> {
            json[key].as_u64().map(|v| v as usize).ok_or_else(|| LlmError::Format {
                path: path.into(),
                reason: format!("`{key}` is missing or not an unsigned integer"),
            })
        };
        let heads = number("num_attention_heads")?;
        let scaling = match &json["rope_scaling"] {
            serde_json::Value::Null => 1.0,
            scaling => {
                let kind = scaling["rope_type"].as_str().or(scaling["type"].as_str()).unwrap_or("?");
                if kind != "linear" {
                    return Err(LlmError::Format {
                        path: path.into(),
                        reason: format!("rope_scaling type `{kind}` is not supported (linear)"),
                    });
                }
                scaling["factor"].as_f64().unwrap_or(1.0)
            }
        };
        if json["head_dim"].as_u64().is_some_and(|d| d as usize * heads != number("hidden_size").unwrap_or(0)) {
            return Err(LlmError::Format {
                path: path.into(),
                reason: "a head_dim other than hidden_size / num_attention_heads is not supported".into(),
            });
        }
        let config = Self::new(
            number("vocab_size")?,
            number("hidden_size")?,
            number("intermediate_size")?,
            number("num_hidden_layers")?,
            heads,
            number("num_key_value_heads").unwrap_or(heads),
        )
        .with_rope_theta(json["rope_theta"].as_f64().unwrap_or(10000.0))
        .with_rope_scaling(scaling)
        .with_rms_norm_eps(json["rms_norm_eps"].as_f64().unwrap_or(1e-6))
        .with_tie_word_embeddings(json["tie_word_embeddings"].as_bool().unwrap_or(false))
        .with_max_position_embeddings(number("max_position_embeddings").unwrap_or(2048));
        config.validate(path)?;
        Ok(config)
    }
}
