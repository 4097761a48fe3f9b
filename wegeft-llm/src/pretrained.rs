//! Opening a checkpoint: a GGUF file (weights and tokenizer inside) or a Hugging Face directory
//! (`config.json`, `model.safetensors` or shards, `tokenizer.json`).

use std::path::Path;

use std::path::PathBuf;

use burn::tensor::backend::Backend;
use wegeft::io::WeightStore;
use wegeft::Injector;

use crate::config::DecoderConfig;
use crate::error::{LlmError, Result};
use crate::base_precision::BasePrecision;
use crate::gguf::{hf_weights, hf_weights_packed, GgufFile};
use crate::model::Decoder;
use crate::tokenizer::LlmTokenizer;

/// A pretrained checkpoint opened for use: its config, the model and its tokenizer.
pub struct Pretrained<B: Backend> {
    /// The decoder's hyper-parameters.
    pub config: DecoderConfig,
    /// The model, with its adapter.
    pub model: Decoder<B>,
    /// The tokenizer, with its special tokens and chat template.
    pub tokenizer: LlmTokenizer,
}

/// The safetensors files of an HF model directory: `model.safetensors`, or the shards that
/// `model.safetensors.index.json` lists.
pub fn hf_shards(dir: &Path) -> Result<Vec<PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    if !index.exists() {
        return Ok(vec![dir.join("model.safetensors")]);
    }
    let text = std::fs::read_to_string(&index).map_err(|source| LlmError::Io { path: index.clone(), source })?;
    let format = |reason: String| LlmError::Format { path: index.clone(), reason };
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| format(e.to_string()))?;
    let shards: std::collections::BTreeSet<String> = json["weight_map"]
        .as_object()
        .ok_or_else(|| format("no `weight_map`".into()))?
        .values()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    Ok(shards.into_iter().map(|shard| dir.join(shard)).collect())
}

/// Loads `path`: a `.gguf` file or an HF model directory, in f32; `injector` decides what is
/// adapted ([`Injector::none`] for nothing).
pub fn load<B: Backend>(path: &Path, injector: Injector, device: &B::Device) -> Result<Pretrained<B>> {
    load_base(path, injector, BasePrecision::F32, device)
}

/// [`load`] with the frozen base held as `base` says: in half precision (a typed error when the
/// backend lacks it), or with a GGUF file's quantised projections kept in their blocks.
pub fn load_base<B: Backend>(path: &Path, injector: Injector, base: BasePrecision, device: &B::Device) -> Result<Pretrained<B>> {
    let mut loaded = load_f32(path, injector, base.keeps_blocks(), device)?;
    loaded.model = loaded.model.with_precision(base.precision(), device)?;
    Ok(loaded)
}

fn load_f32<B: Backend>(path: &Path, injector: Injector, keep_blocks: bool, device: &B::Device) -> Result<Pretrained<B>> {
    if path.is_dir() {
        let config = DecoderConfig::from_hf_json(&path.join("config.json"))?;
        let weights = WeightStore::safetensors(&hf_shards(path)?)?;
        let mut tokenizer = LlmTokenizer::from_file(&path.join("tokenizer.json"))?;
        let (tokenizer_config, generation) = (optional_json(&path.join("tokenizer_config.json"))?, optional_json(&path.join("generation_config.json"))?);
        let model_config = optional_json(&path.join("config.json"))?;
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
        let template = templates.as_str().or_else(|| templates.as_array()?.iter().find(|t| t["name"] == "default")?["template"].as_str());
        if template.is_none() && !templates.is_null() {
            return Err(LlmError::Format {
                path: path.join("tokenizer_config.json"),
                reason: "`chat_template` is neither a string nor a list of named templates with a `default`".into(),
            });
        }
        tokenizer.chat_template = template.map(String::from);
        tokenizer.add_bos = tokenizer_config["add_bos_token"].as_bool().unwrap_or(false);
        check_vocabulary(path, &tokenizer, &config)?;
        let model = Decoder::load(&config, weights, injector, device)?;
        return Ok(Pretrained { config, model, tokenizer });
    }
    let file = GgufFile::open(path)?;
    let config = DecoderConfig::from_gguf(&file)?;
    let tokenizer = LlmTokenizer::from_gguf(&file)?;
    check_vocabulary(path, &tokenizer, &config)?;
    let weights = if keep_blocks { hf_weights_packed(&file, &config)? } else { hf_weights(&file, &config)? };
    drop(file);
    let model = Decoder::load(&config, weights, injector, device)?;
    Ok(Pretrained { config, model, tokenizer })
}

/// A JSON file beside the checkpoint: `Null` when absent, an error naming it when unreadable.
fn optional_json(path: &Path) -> Result<serde_json::Value> {
    match std::fs::read_to_string(path) {
        Err(source) if source.kind() == std::io::ErrorKind::NotFound => Ok(serde_json::Value::Null),
        Err(source) => Err(LlmError::Io { path: path.into(), source }),
        Ok(text) => serde_json::from_str(&text).map_err(|e| LlmError::Format { path: path.into(), reason: e.to_string() }),
    }
}

/// Fails when the tokenizer can produce ids, or names special tokens, the embedding has no row for.
fn check_vocabulary(path: &Path, tokenizer: &LlmTokenizer, config: &DecoderConfig) -> Result<()> {
    let tokens = tokenizer.inner.get_vocab_size(true);
    let rows = config.vocab_size;
    let beyond = [("BOS", tokenizer.bos), ("EOS", tokenizer.eos)].into_iter().find_map(|(name, id)| id.filter(|&id| id as usize >= rows).map(|id| (name, id)));
    let reason = if tokens > rows {
        format!("the tokenizer has {tokens} tokens but the embedding only {rows} rows")
    } else if let Some((name, id)) = beyond {
        format!("the {name} token id {id} is beyond the vocabulary of {rows}")
    } else {
        return Ok(());
    };
    Err(LlmError::Format { path: path.to_path_buf(), reason })
}
