//! A GGUF file as a Hugging Face checkpoint: its metadata as [`DecoderConfig`], its tensors renamed
//! into a [`WeightStore`] under HF names (dequantised, Q/K rows put back into HF's rotate-half
//! order), so the model is built the same way from either.

use std::collections::BTreeMap;

use wegeft::io::{StoredTensor, WeightStore};

use super::{GgufFile, MetadataValue};
use crate::config::{DecoderConfig, RopeScaling};
use crate::error::{LlmError, Result};

/// GGUF's per-block names and their HF counterparts.
const BLOCK_NAMES: [(&str, &str); 9] = [
    ("attn_norm", "input_layernorm"),
    ("ffn_norm", "post_attention_layernorm"),
    ("attn_q", "self_attn.q_proj"),
    ("attn_k", "self_attn.k_proj"),
    ("attn_v", "self_attn.v_proj"),
    ("attn_output", "self_attn.o_proj"),
    ("ffn_gate", "mlp.gate_proj"),
    ("ffn_up", "mlp.up_proj"),
    ("ffn_down", "mlp.down_proj"),
];

fn hf_name(gguf: &str) -> Option<String> {
    match gguf {
        "token_embd.weight" => return Some("model.embed_tokens.weight".into()),
        "output_norm.weight" => return Some("model.norm.weight".into()),
        "output.weight" => return Some("lm_head.weight".into()),
        _ => {}
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let (name, suffix) = rest.split_once('.')?;
    let (_, hf) = BLOCK_NAMES.iter().find(|(g, _)| *g == name)?;
    Some(format!("model.layers.{layer}.{hf}.{suffix}"))
}

/// llama.cpp stores the rows of each Q/K head as interleaved (even, odd) pairs; HF keeps the
/// two halves apart. Row `h·d + 2i + j` of GGUF is row `h·d + j·d/2 + i` of HF.
fn unpermute_rows(values: &[f32], rows: usize, cols: usize, heads: usize) -> Vec<f32> {
    let head_dim = rows / heads;
    let mut out = vec![0.0; values.len()];
    for gguf_row in 0..rows {
        let (head, within) = (gguf_row / head_dim, gguf_row % head_dim);
        let hf_row = head * head_dim + (within % 2) * (head_dim / 2) + within / 2;
        out[hf_row * cols..(hf_row + 1) * cols].copy_from_slice(&values[gguf_row * cols..(gguf_row + 1) * cols]);
    }
    out
}

impl DecoderConfig {
    /// From GGUF metadata (`general.architecture` must be `llama`); what it lacks takes HF's defaults.
    pub fn from_gguf(file: &GgufFile) -> Result<Self> {
        let architecture = file.get("general.architecture")?.as_str().unwrap_or_default();
        if architecture != "llama" {
            return Err(LlmError::Format {
                path: file.path.clone(),
                reason: format!("architecture `{architecture}` is not supported (llama)"),
            });
        }
        let number = |key: &str| -> Result<usize> {
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
        let mut config = Self::new(
            vocab_size,
            number("embedding_length")?,
            number("feed_forward_length")?,
            number("block_count")?,
            number("attention.head_count")?,
        );
        config.num_key_value_heads = number("attention.head_count_kv").ok();
        config.rope_theta = float("rope.freq_base").unwrap_or(config.rope_theta);
        config.rope_scaling = float("rope.scale_linear").map(|factor| RopeScaling { rope_type: "linear".into(), factor });
        config.rms_norm_eps = float("attention.layer_norm_rms_epsilon").unwrap_or(config.rms_norm_eps);
        config.tie_word_embeddings = !file.tensors.contains_key("output.weight");
        config.max_position_embeddings = number("context_length").unwrap_or(config.max_position_embeddings);
        config.validate(&file.path)?;
        Ok(config)
    }
}

/// The tensors of a GGUF file under HF names, in HF's layout and f32.
pub fn hf_weights(file: &GgufFile, config: &DecoderConfig) -> Result<WeightStore> {
    let mut tensors = BTreeMap::new();
    for name in file.tensors.keys() {
        let Some(hf) = hf_name(name) else {
            if name == "rope_freqs.weight" {
                continue; // derived from the metadata
            }
            return Err(LlmError::Tensor {
                path: file.path.clone(),
                name: name.clone(),
                reason: "not a LLaMA tensor".into(),
            });
        };
        let (shape, mut values) = file.tensor_f32(name)?;
        if let Some(value) = values.iter().find(|value| !value.is_finite()) {
            return Err(LlmError::Tensor { path: file.path.clone(), name: name.clone(), reason: format!("holds {value}") });
        }
        let heads = if hf.ends_with("q_proj.weight") {
            Some(config.num_attention_heads)
        } else if hf.ends_with("k_proj.weight") {
            Some(config.key_value_heads())
        } else {
            None
        };
        if let (Some(heads), [rows, cols]) = (heads, shape.as_slice()) {
            if *rows != heads * config.head_dim() {
                let reason = format!("{rows} rows; {heads} heads of width {} need {}", config.head_dim(), heads * config.head_dim());
                return Err(LlmError::Tensor { path: file.path.clone(), name: name.clone(), reason });
            }
            values = unpermute_rows(&values, *rows, *cols, heads);
        }
        tensors.insert(hf, StoredTensor { shape, values });
    }
    Ok(WeightStore::from_tensors(file.path.clone(), tensors))
}
