//! Opening a checkpoint: a GGUF file (weights and tokenizer inside) or a Hugging Face directory
//! (`config.json`, `model.safetensors` or shards, `tokenizer.json`).

use std::path::Path;

use burn::tensor::backend::Backend;
use wegeft::Injector;

use crate::config::LlamaConfig;
use crate::error::Result;
use crate::gguf::GgufFile;
use crate::model::Llama;
use crate::tokenizer::LlmTokenizer;
use crate::weights::LlamaWeights;

/// A model and its tokenizer.
pub struct Loaded<B: Backend> {
    pub config: LlamaConfig,
    pub model: Llama<B>,
    pub tokenizer: LlmTokenizer,
}

/// Loads `path`: a `.gguf` file or an HF model directory; `injector` adds an adapter.
pub fn load<B: Backend>(path: &Path, injector: Option<Injector>, device: &B::Device) -> Result<Loaded<B>> {
    if path.is_dir() {
        let config = LlamaConfig::from_hf_json(&path.join("config.json"))?;
        let weights = LlamaWeights::from_hf_dir(path)?;
        let mut tokenizer = LlmTokenizer::from_file(&path.join("tokenizer.json"))?;
        let json = |file: &str| -> Option<serde_json::Value> { serde_json::from_str(&std::fs::read_to_string(path.join(file)).ok()?).ok() };
        if let Some(generation) = json("generation_config.json").or_else(|| json("config.json")) {
            tokenizer.bos = generation["bos_token_id"].as_u64().map(|v| v as u32);
            tokenizer.eos = generation["eos_token_id"].as_u64().map(|v| v as u32);
        }
        tokenizer.chat_template = json("tokenizer_config.json").and_then(|c| c["chat_template"].as_str().map(String::from));
        let model = Llama::load(&config, weights, injector, device)?;
        return Ok(Loaded { config, model, tokenizer });
    }
    let file = GgufFile::open(path)?;
    let config = LlamaConfig::from_gguf(&file)?;
    let tokenizer = LlmTokenizer::from_gguf(&file)?;
    let weights = LlamaWeights::from_gguf(&file, &config)?;
    drop(file);
    let model = Llama::load(&config, weights, injector, device)?;
    Ok(Loaded { config, model, tokenizer })
}
