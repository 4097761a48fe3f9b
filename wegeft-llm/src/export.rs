//! Exports: the adapter merged into the base as a Hugging Face checkpoint (`config.json` +
//! `model.safetensors`, PyTorch layout, f32), and the adapter as an HF PEFT LoRA adapter.

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use wegeft::io::{write_safetensors, StoredTensor};
use wegeft::PeftLinear;

use crate::config::LlamaConfig;
use crate::error::{LlmError, Result};
use crate::model::Llama;

fn vector<B: Backend>(tensor: Tensor<B, 1>) -> StoredTensor {
    let stored = StoredTensor::from_tensor(tensor.unsqueeze::<2>());
    StoredTensor { shape: vec![stored.values.len()], values: stored.values }
}

impl<B: Backend> Llama<B> {
    /// Every adaptable projection with its HF name.
    pub fn projections(&self) -> Vec<&PeftLinear<B>> {
        self.layers
            .iter()
            .flat_map(|l| {
                let (a, m) = (&l.self_attn, &l.mlp);
                [&a.q_proj, &a.k_proj, &a.v_proj, &a.o_proj, &m.gate_proj, &m.up_proj, &m.down_proj]
            })
            .collect()
    }

    /// Writes the model, adapter merged, as an HF `LlamaForCausalLM` checkpoint in `dir`.
    pub fn export_hf(&self, config: &LlamaConfig, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|source| LlmError::Io { path: dir.into(), source })?;
        let mut tensors = BTreeMap::new();
        tensors.insert("model.embed_tokens.weight".to_string(), StoredTensor::from_tensor(self.embed_tokens.weight.val()));
        for layer in self.projections() {
            let merged = match &self.adapters {
                Some(bank) => layer.merged(bank),
                None => layer.base.clone(),
            };
            tensors.insert(format!("{}.weight", layer.name()), StoredTensor::from_tensor(merged.weight.val().transpose()));
        }
        for (index, layer) in self.layers.iter().enumerate() {
            let prefix = format!("model.layers.{index}");
            tensors.insert(format!("{prefix}.input_layernorm.weight"), vector(layer.input_layernorm.gamma.val()));
            tensors.insert(format!("{prefix}.post_attention_layernorm.weight"), vector(layer.post_attention_layernorm.gamma.val()));
        }
        tensors.insert("model.norm.weight".into(), vector(self.norm.gamma.val()));
        if let Some(head) = &self.lm_head {
            tensors.insert("lm_head.weight".into(), StoredTensor::from_tensor(head.weight.val().transpose()));
        }
        write_safetensors(&dir.join("model.safetensors"), &tensors)?;
        let json = serde_json::json!({
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "vocab_size": config.vocab_size,
            "hidden_size": config.hidden_size,
            "intermediate_size": config.intermediate_size,
            "num_hidden_layers": config.num_layers,
            "num_attention_heads": config.num_heads,
            "num_key_value_heads": config.num_kv_heads,
            "rope_theta": config.rope_theta,
            "rope_scaling": if config.rope_scaling == 1.0 { serde_json::Value::Null } else { serde_json::json!({"rope_type": "linear", "factor": config.rope_scaling}) },
            "rms_norm_eps": config.rms_norm_eps,
            "tie_word_embeddings": config.tie_word_embeddings,
            "max_position_embeddings": config.max_position_embeddings,
            "hidden_act": "silu",
            "torch_dtype": "float32",
        });
        let text = serde_json::to_string_pretty(&json).expect("JSON value");
        wegeft::io::write_atomic(&dir.join("config.json"), text.as_bytes())?;
        Ok(())
    }

    /// Writes the adapter as an HF PEFT LoRA adapter (WeGeFT exactly as LoRA: `B = s·W·Φᵀ`).
    pub fn export_peft_lora(&self, dir: &Path) -> Result<()> {
        if let Some(bank) = &self.adapters {
            wegeft::export_peft_lora(bank, &self.projections(), dir)?;
        }
        Ok(())
    }
}
