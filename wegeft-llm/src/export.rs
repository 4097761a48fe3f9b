//! Exports: the adapter merged into the base as a Hugging Face checkpoint (`config.json`,
//! `model.safetensors` in PyTorch layout and f32, and the tokenizer files, so `generate` and
//! `transformers` load it as it is), and the adapter as an HF PEFT LoRA adapter.

use std::collections::BTreeMap;
use std::path::Path;

use burn::nn::RmsNorm;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use wegeft::io::{write_json, write_safetensors, StoredTensor};
use wegeft::Adapted;

use crate::config::DecoderConfig;
use crate::error::{LlmError, Result};
use crate::model::Decoder;
use crate::tokenizer::LlmTokenizer;

fn vector<B: Backend>(tensor: Tensor<B, 1>) -> StoredTensor {
    let stored = StoredTensor::from_tensor(tensor.unsqueeze::<2>());
    StoredTensor { shape: vec![stored.values.len()], values: stored.values }
}

impl<B: Backend> Decoder<B> {
    /// Writes the model, adapter merged, as an HF checkpoint of its family in `dir`, with
    /// `tokenizer`'s files. A merged tensor that is not finite is an error naming it.
    pub fn export_hf(&self, config: &DecoderConfig, tokenizer: &LlmTokenizer, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|source| LlmError::Io { path: dir.into(), source })?;
        let merged = self.clone().densified().merged();
        let mut tensors = BTreeMap::new();
        tensors.insert("model.embed_tokens.weight".to_string(), StoredTensor::from_tensor(merged.embed_tokens.dense()));
        // Every projection, under the HF name it was loaded by.
        for (name, weight) in merged.linear_weights() {
            tensors.insert(format!("{name}.weight"), StoredTensor::from_tensor(weight.transpose()));
        }
        // Norms as the family stores them (Gemma's without the 1 added at load).
        let offset = config.family().norm_offset();
        let norm = |norm: &RmsNorm<B>| vector(norm.gamma.val() - offset);
        for (index, layer) in merged.layers.iter().enumerate() {
            let prefix = format!("model.layers.{index}");
            let attention = &layer.self_attn;
            let norms = [
                ("input_layernorm", Some(&layer.input_layernorm)),
                ("post_attention_layernorm", Some(&layer.post_attention_layernorm)),
                ("pre_feedforward_layernorm", layer.pre_feedforward_layernorm.as_ref()),
                ("post_feedforward_layernorm", layer.post_feedforward_layernorm.as_ref()),
                ("self_attn.q_norm", attention.q_norm.as_ref()),
                ("self_attn.k_norm", attention.k_norm.as_ref()),
            ];
            for (name, found) in norms {
                if let Some(found) = found {
                    tensors.insert(format!("{prefix}.{name}.weight"), norm(found));
                }
            }
            let projections = [("q_proj", &attention.q_proj), ("k_proj", &attention.k_proj), ("v_proj", &attention.v_proj), ("o_proj", &attention.o_proj)];
            for (name, projection) in projections {
                if let Some(bias) = &projection.base.bias {
                    tensors.insert(format!("{prefix}.self_attn.{name}.bias"), vector(bias.val()));
                }
            }
        }
        tensors.insert("model.norm.weight".into(), norm(&merged.norm));
        if let Some(head) = &merged.lm_head {
            tensors.insert("lm_head.weight".into(), StoredTensor::from_tensor(head.dense()));
        }
        let weights = dir.join("model.safetensors");
        for (name, tensor) in &tensors {
            if let Some(value) = tensor.values.iter().find(|value| !value.is_finite()) {
                let reason = format!("holds {value} after merging: the adapter's values are too large to merge");
                return Err(LlmError::Tensor { path: weights, name: name.clone(), reason });
            }
        }
        write_safetensors(&weights, &tensors)?;
        write_json(&dir.join("config.json"), &config.to_hf_json())?;
        let tokenizer_file = dir.join("tokenizer.json");
        tokenizer.inner.save(&tokenizer_file, false).map_err(|e| LlmError::Tokenizer(format!("{}: {e}", tokenizer_file.display())))?;
        let token = |id: Option<u32>| id.and_then(|id| tokenizer.inner.id_to_token(id));
        let mut tokenizer_config = serde_json::json!({"bos_token": token(tokenizer.bos), "eos_token": token(tokenizer.eos), "add_bos_token": tokenizer.add_bos});
        if let Some(template) = &tokenizer.chat_template {
            tokenizer_config["chat_template"] = template.as_str().into();
        }
        write_json(&dir.join("tokenizer_config.json"), &tokenizer_config)?;
        Ok(())
    }
}
