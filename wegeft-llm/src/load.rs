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
        let json = |file: &str| -> serde_json::Value {
            std::fs::read_to_string(path.join(file)).ok().and_then(|text| serde_json::from_str(&text).ok()).unwrap_or_default()
        };
        let (tokenizer_config, generation) = (json("tokenizer_config.json"), json("generation_config.json"));
        let model_config = json("config.json");
        // The token strings of tokenizer_config.json win; otherwise the ids of
        // generation_config.json or config.json (the first of a list, as Llama 3 has).
        let special = |token: &str, id: &str| {
            let text = &tokenizer_config[token];
            text.as_str()
                .or(text["content"].as_str())
                .and_then(|t| tokenizer.inner.token_to_id(t))
                .or_else(|| [&generation[id], &model_config[id]].into_iter().find_map(|v| v.as_u64().or(v[0].as_u64())).map(|v| v as u32))
        };
        (tokenizer.bos, tokenizer.eos) = (special("bos_token", "bos_token_id"), special("eos_token", "eos_token_id"));
        // A string, or named templates of which `default` is the chat one.
        let templates = &tokenizer_config["chat_template"];
        tokenizer.chat_template = templates
            .as_str()
            .or_else(|| templates.as_array()?.iter().find(|t| t["name"] == "default")?["template"].as_str())
            .map(String::from);
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
