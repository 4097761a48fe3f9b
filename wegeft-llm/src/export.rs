//! Exports: the adapter merged into the base as a Hugging Face checkpoint (`config.json` +
//! `model.safetensors`, PyTorch layout, f32), and the adapter as an HF PEFT LoRA adapter.

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use wegeft::io::{write_json, write_safetensors, StoredTensor};
use wegeft::Adapted;

use crate::config::LlamaConfig;
use crate::error::{LlmError, Result};
use crate::model::Llama;

fn vector<B: Backend>(tensor: Tensor<B, 1>) -> StoredTensor {
    let stored = StoredTensor::from_tensor(tensor.unsqueeze::<2>());
    StoredTensor { shape: vec![stored.values.len()], values: stored.values }
}

impl<B: Backend> Llama<B> {
    /// Writes the model, adapter merged, as an HF `LlamaForCausalLM` checkpoint in `dir`.
    pub fn export_hf(&self, config: &LlamaConfig, dir: &Path) -> Result<()> {
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
        write_safetensors(&dir.join("model.safetensors"), &tensors)?;
        write_json(&dir.join("config.json"), &config.to_hf_json())?;
        Ok(())
    }
}
