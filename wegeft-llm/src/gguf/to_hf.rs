//! A GGUF file as a Hugging Face checkpoint: its metadata as [`DecoderConfig`], its tensors renamed
//! into a [`WeightStore`] under HF names (dequantised; LLaMA's Q/K rows put back into HF's
//! rotate-half order; Gemma's norms without the 1 llama.cpp adds), so the model is built the same
//! way from either.

use std::collections::BTreeMap;
use std::sync::Arc;

use wegeft::io::{StoredTensor, WeightStore};
use wegeft::PackedWeight;

use super::{dequantize_into, GgufFile, MetadataValue};
use crate::config::{DecoderConfig, RopeScaling};
use crate::family::Family;
use crate::error::{LlmError, Result};

/// GGUF's per-block names and their HF counterparts (`ffn_norm` depends on the family).
const BLOCK_NAMES: [(&str, &str); 12] = [
    ("attn_norm", "input_layernorm"),
    ("post_attention_norm", "post_attention_layernorm"),
    ("post_ffw_norm", "post_feedforward_layernorm"),
    ("attn_q_norm", "self_attn.q_norm"),
    ("attn_k_norm", "self_attn.k_norm"),
    ("attn_q", "self_attn.q_proj"),
    ("attn_k", "self_attn.k_proj"),
    ("attn_v", "self_attn.v_proj"),
    ("attn_output", "self_attn.o_proj"),
    ("ffn_gate", "mlp.gate_proj"),
    ("ffn_up", "mlp.up_proj"),
    ("ffn_down", "mlp.down_proj"),
];

/// GGUF's `general.architecture` values this crate reads, with their families (Mistral's
/// files say `llama`).
const ARCHITECTURES: [(&str, Family); 4] = [("llama", Family::Llama), ("qwen2", Family::Qwen2), ("qwen3", Family::Qwen3), ("gemma3", Family::Gemma3)];

/// llama.cpp's fixed θ of Gemma 3's sliding layers (the file stores only the global one).
const GEMMA3_SLIDING_THETA: f64 = 10_000.0;

fn hf_name(gguf: &str, family: Family) -> Option<String> {
    match gguf {
        "token_embd.weight" => return Some("model.embed_tokens.weight".into()),
        "output_norm.weight" => return Some("model.norm.weight".into()),
        "output.weight" => return Some("lm_head.weight".into()),
        _ => {}
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let (name, suffix) = rest.split_once('.')?;
    let hf = match name {
        // Before the MLP: the second norm of a plain layer, the third of a sandwich.
        "ffn_norm" if family.sandwich_norms() => "pre_feedforward_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        _ => BLOCK_NAMES.iter().find(|(g, _)| *g == name)?.1,
    };
    Some(format!("model.layers.{layer}.{hf}.{suffix}"))
}

/// llama.cpp stores the rows of each Q/K head as interleaved (even, odd) pairs; HF keeps the
/// two halves apart. Row `h·d + 2i + j` of GGUF is row `h·d + j·d/2 + i` of HF. A row is `width`
/// elements: values, or a packed row's bytes.
fn unpermute_rows<T: Copy + Default>(values: &[T], rows: usize, width: usize, heads: usize) -> Vec<T> {
    let head_dim = rows / heads;
    let mut out = vec![T::default(); values.len()];
    for gguf_row in 0..rows {
        let (head, within) = (gguf_row / head_dim, gguf_row % head_dim);
        let hf_row = head * head_dim + (within % 2) * (head_dim / 2) + within / 2;
        out[hf_row * width..(hf_row + 1) * width].copy_from_slice(&values[gguf_row * width..(gguf_row + 1) * width]);
    }
    out
}

impl DecoderConfig {
    /// From GGUF metadata (`general.architecture` names the family and the prefix of its keys);
    /// what it lacks takes HF's defaults.
    pub fn from_gguf(file: &GgufFile) -> Result<Self> {
        let architecture = file.get("general.architecture")?.as_str().unwrap_or_default();
        let Some(&(_, family)) = ARCHITECTURES.iter().find(|(name, _)| *name == architecture) else {
            let known: Vec<&str> = ARCHITECTURES.iter().map(|(name, _)| *name).collect();
            return Err(LlmError::Format {
                path: file.path.clone(),
                reason: format!("general.architecture `{architecture}` is not supported ({})", known.join(", ")),
            });
        };
        let number = |key: &str| -> Result<usize> {
            file.get(&format!("{architecture}.{key}"))?.as_usize().ok_or_else(|| LlmError::Format {
                path: file.path.clone(),
                reason: format!("metadata `{architecture}.{key}` is not an unsigned integer"),
            })
        };
        let float = |key: &str| file.metadata.get(&format!("{architecture}.{key}")).and_then(MetadataValue::as_f64);
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
        config.model_type = family;
        config.num_key_value_heads = number("attention.head_count_kv").ok();
        config.head_dim = number("attention.key_length").ok();
        config.rope_theta = float("rope.freq_base").unwrap_or(config.rope_theta);
        config.rope_scaling = float("rope.scale_linear").map(|factor| RopeScaling { rope_type: "linear".into(), factor });
        config.rms_norm_eps = float("attention.layer_norm_rms_epsilon").unwrap_or(config.rms_norm_eps);
        config.tie_word_embeddings = !file.tensors.contains_key("output.weight");
        config.max_position_embeddings = number("context_length").unwrap_or(config.max_position_embeddings);
        config.sliding_window = number("attention.sliding_window").ok();
        if family == Family::Gemma3 {
            config.rope_local_base_freq = Some(GEMMA3_SLIDING_THETA);
        }
        config.validate(&file.path)?;
        Ok(config)
    }
}

/// The tensors of a GGUF file under HF names, in HF's layout and f32.
pub fn hf_weights(file: &GgufFile, config: &DecoderConfig) -> Result<WeightStore> {
    weights(file, config, false)
}

/// [`hf_weights`], but the matrices stored in quantisation blocks (projections, embedding, output
/// head) stay in them, as [`PackedWeight`]s: the base then takes about the file's size in memory.
pub fn hf_weights_packed(file: &GgufFile, config: &DecoderConfig) -> Result<WeightStore> {
    weights(file, config, true)
}

fn weights(file: &GgufFile, config: &DecoderConfig, keep_blocks: bool) -> Result<WeightStore> {
    let mut tensors = BTreeMap::new();
    let mut packed = BTreeMap::new();
    for (name, info) in &file.tensors {
        let Some(hf) = hf_name(name, config.family()) else {
            if name == "rope_freqs.weight" {
                continue; // derived from the metadata
            }
            return Err(LlmError::Tensor {
                path: file.path.clone(),
                name: name.clone(),
                reason: format!("not a tensor of a {:?} decoder", config.family()),
            });
        };
        // Only llama.cpp's LLaMA conversion interleaves the Q/K rows.
        let heads = match config.family() {
            Family::Llama if hf.ends_with("q_proj.weight") => Some(config.num_attention_heads),
            Family::Llama if hf.ends_with("k_proj.weight") => Some(config.key_value_heads()),
            _ => None,
        };
        let shape = info.shape();
        if let (Some(heads), [rows, _]) = (heads, shape.as_slice()) {
            if *rows != heads * config.head_dim() {
                let reason = format!("{rows} rows; {heads} heads of width {} need {}", config.head_dim(), heads * config.head_dim());
                return Err(LlmError::Tensor { path: file.path.clone(), name: name.clone(), reason });
            }
        }
        let blocks = info.ggml_type.block_values() > 1;
        if let (true, [d_out, d_in]) = (keep_blocks && blocks, shape.as_slice()) {
            let mut bytes = file.tensor_bytes(name)?.to_vec();
            if let Some(heads) = heads {
                bytes = unpermute_rows(&bytes, *d_out, bytes.len() / d_out, heads);
            }
            let kind = info.ggml_type;
            let decode = Arc::new(move |row: &[u8], out: &mut [f32]| dequantize_into(kind, row, out));
            let weight = PackedWeight::new(kind.name(), *d_in, *d_out, bytes, decode).map_err(|e| LlmError::Tensor {
                path: file.path.clone(),
                name: name.clone(),
                reason: e.to_string(),
            })?;
            packed.insert(hf, Arc::new(weight));
            continue;
        }
        let (shape, mut values) = file.tensor_f32(name)?;
        if let Some(value) = values.iter().find(|value| !value.is_finite()) {
            return Err(LlmError::Tensor { path: file.path.clone(), name: name.clone(), reason: format!("holds {value}") });
        }
        if hf.ends_with("norm.weight") {
            // llama.cpp stores Gemma's norms with the 1 of (1 + w) added.
            values.iter_mut().for_each(|value| *value -= config.family().norm_offset());
        }
        if let (Some(heads), [rows, cols]) = (heads, shape.as_slice()) {
            values = unpermute_rows(&values, *rows, *cols, heads);
        }
        tensors.insert(hf, StoredTensor { shape, values });
    }
    Ok(WeightStore::from_tensors(file.path.clone(), tensors).with_packed(packed))
}
