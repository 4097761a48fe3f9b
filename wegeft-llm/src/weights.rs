//! A decoder's tensors under Hugging Face names, in PyTorch layout and f32, from a GGUF file
//! (renamed, dequantised, Q/K rows put back into HF's rotate-half order) or from HF safetensors
//! (one file or shards with an index). Every tensor must be used exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use half::{bf16, f16};
use safetensors::{Dtype, SafeTensors};

use crate::config::LlamaConfig;
use crate::error::{LlmError, Result};
use crate::gguf::GgufFile;

/// Tensors by HF name, each handed out once.
pub struct LlamaWeights {
    path: PathBuf,
    tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
}

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

impl LlamaWeights {
    /// The tensors of a GGUF file, renamed to HF names.
    pub fn from_gguf(file: &GgufFile, config: &LlamaConfig) -> Result<Self> {
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
            let heads = if hf.ends_with("q_proj.weight") {
                Some(config.num_heads)
            } else if hf.ends_with("k_proj.weight") {
                Some(config.num_kv_heads)
            } else {
                None
            };
            if let (Some(heads), [rows, cols]) = (heads, shape.as_slice()) {
                values = unpermute_rows(&values, *rows, *cols, heads);
            }
            tensors.insert(hf, (shape, values));
        }
        Ok(Self {
            path: file.path.clone(),
            tensors,
        })
    }

    /// `model.safetensors`, or the shards listed in `model.safetensors.index.json`, in `dir`.
    pub fn from_hf_dir(dir: &Path) -> Result<Self> {
        let index = dir.join("model.safetensors.index.json");
        let files: Vec<PathBuf> = if index.exists() {
            let text = std::fs::read_to_string(&index).map_err(|source| LlmError::Io { path: index.clone(), source })?;
            let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| LlmError::Format {
                path: index.clone(),
                reason: e.to_string(),
            })?;
            let shards: BTreeSet<String> = json["weight_map"]
                .as_object()
                .ok_or_else(|| LlmError::Format {
                    path: index.clone(),
                    reason: "no `weight_map`".into(),
                })?
                .values()
                .filter_map(|v| v.as_str().map(String::from))
                .collect();
            shards.into_iter().map(|shard| dir.join(shard)).collect()
        } else {
            vec![dir.join("model.safetensors")]
        };
        let mut tensors = BTreeMap::new();
        for file in &files {
            let bytes = std::fs::read(file).map_err(|source| LlmError::Io { path: file.clone(), source })?;
            let parsed = SafeTensors::deserialize(&bytes).map_err(|e| LlmError::Format {
                path: file.clone(),
                reason: e.to_string(),
            })?;
            for (name, view) in parsed.tensors() {
                let data = view.data();
                let values: Vec<f32> = match view.dtype() {
                    Dtype::F32 => data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect(),
                    Dtype::F16 => data.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
                    Dtype::BF16 => data.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
                    other => {
                        return Err(LlmError::Tensor {
                            path: file.clone(),
                            name,
                            reason: format!("dtype {other:?} is not supported (F32, F16, BF16)"),
                        })
                    }
                };
                tensors.insert(name, (view.shape().to_vec(), values));
            }
        }
        Ok(Self {
            path: dir.to_path_buf(),
            tensors,
        })
    }

    /// Tensor `name` with the expected PyTorch shape, on `device` (moved out: no second copy).
    pub fn take<B: Backend, const D: usize>(&mut self, name: &str, shape: [usize; D], device: &B::Device) -> Result<Tensor<B, D>> {
        let error = |reason: String| LlmError::Tensor {
            path: self.path.clone(),
            name: name.into(),
            reason,
        };
        let (found, values) = self.tensors.remove(name).ok_or_else(|| error("missing".into()))?;
        if found.as_slice() != shape {
            return Err(error(format!("shape {found:?}, the model expects {shape:?}")));
        }
        Ok(Tensor::from_data(TensorData::new(values, shape), device))
    }

    /// Fails if any tensor was not used (a different architecture or size).
    pub fn finish(self) -> Result<()> {
        match self.tensors.into_keys().next() {
            Some(unused) => Err(LlmError::Tensor {
                path: self.path,
                name: unused,
                reason: "not used by the model".into(),
            }),
            None => Ok(()),
        }
    }
}
