//! Exports: the adapter merged into the base as a Hugging Face checkpoint (`config.json`,
//! `model.safetensors` in PyTorch layout and f32, and the tokenizer files, so `generate` and
//! `transformers` load it as it is), and the adapter as an HF PEFT LoRA adapter.

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use wegeft::io::{write_json, write_safetensors, StoredTensor};
use wegeft::Adapted;

use crate::config::LlamaConfig;
use crate::error::{LlmError, Result};
use crate::model::Llama;
use crate::tokenizer::LlmTokenizer;

fn vector<B: Backend>(tensor: Tensor<B, 1>) -> StoredTensor {
    let stored = StoredTensor::from_tensor(tensor.unsqueeze::<2>());
    StoredTensor { shape: vec![stored.values.len()], values: stored.values }
}

impl<B: Backend> Llama<B> {
    /// Writes the model, adapter merged, as an HF `LlamaForCausalLM` checkpoint in `dir`, with
    /// `tokenizer`'s files. A merged tensor that is not finite is an error naming it.
    pub fn export_hf(&self, config: &LlamaConfig, tokenizer: &LlmTokenizer, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|source| LlmError::Io { path: dir.into(), source })?;
        let merged = self.clone().merged();
        let mut tensors = BTreeMap::new();
        tensors.insert("model.embed_tokens.weight".to_string(), StoredTensor::from_tensor(merged.embed_tokens.weight.val()));
        // Every projection, under the HF name it was loaded by.
        for (name, weight) in merged.linear_weights() {
            tensors.insert(format!("{name}.weight"), StoredTensor::from_tensor(weight.transpose()));
        }
        for (index, layer) in merged.layers.iter().enumerate() {
            let prefix = format!("model.layers.{index}");
            tensors.insert(format!("{prefix}.input_layernorm.weight"), vector(layer.input_layernorm.gamma.val()));
            tensors.insert(format!("{prefix}.post_attention_layernorm.weight"), vector(layer.post_attention_layernorm.gamma.val()));
        }
        tensors.insert("model.norm.weight".into(), vector(merged.norm.gamma.val()));
        if let Some(head) = &merged.lm_head {
            tensors.insert("lm_head.weight".into(), StoredTensor::from_tensor(head.weight.val().transpose()));
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
        let mut tokenizer_config = serde_json::json!({"bos_token": token(tokenizer.bos), "eos_token": token(tokenizer.eos)});
        if let Some(template) = &tokenizer.chat_template {
            tokenizer_config["chat_template"] = template.as_str().into();
        }
        write_json(&dir.join("tokenizer_config.json"), &tokenizer_config)?;
        Ok(())
    }
}
