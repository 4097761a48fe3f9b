//! Tokenizers: Hugging Face `tokenizer.json` files, and the vocabularies stored inside GGUF files
//! (GPT-2's byte-level BPE, SentencePiece's BPE) rebuilt with the `tokenizers` crate.

mod byte_level;
mod sentencepiece;

use std::path::Path;

use tokenizers::{AddedToken, Tokenizer};

use crate::error::{LlmError, Result};
use crate::gguf::{GgufFile, MetadataValue};

/// A tokenizer with the model's special tokens and chat template.
pub struct LlmTokenizer {
    /// The underlying `tokenizers` tokenizer.
    pub inner: Tokenizer,
    /// The beginning-of-sequence token, if known.
    pub bos: Option<u32>,
    /// The end-of-sequence token, if known; generation stops at it.
    pub eos: Option<u32>,
    /// The Jinja chat template, if the checkpoint has one.
    pub chat_template: Option<String>,
    /// Prompts start with BOS (`add_bos_token`): Gemma's and LLaMA 2's do, SmolLM2's do not.
    pub add_bos: bool,
}

fn strings(value: &MetadataValue) -> Vec<String> {
    match value {
        MetadataValue::Array(items) => items.iter().filter_map(|v| v.as_str().map(String::from)).collect(),
        _ => Vec::new(),
    }
}

impl LlmTokenizer {
    /// A Hugging Face `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let inner = Tokenizer::from_file(path).map_err(|e| LlmError::Tokenizer(format!("{}: {e}", path.display())))?;
        Ok(Self {
            inner,
            bos: None,
            eos: None,
            chat_template: None,
            add_bos: false,
        })
    }

    /// The tokenizer inside a GGUF file: `tokenizer.ggml.model` `gpt2` (byte-level BPE) or `llama`
    /// (SentencePiece BPE with byte fallback), its control tokens, BOS/EOS and chat template.
    pub fn from_gguf(file: &GgufFile) -> Result<Self> {
        let kind = file.get("tokenizer.ggml.model")?.as_str().unwrap_or_default();
        let tokens = strings(file.get("tokenizer.ggml.tokens")?);
        let types: Vec<Option<usize>> = match file.metadata.get("tokenizer.ggml.token_type") {
            Some(MetadataValue::Array(types)) => types.iter().map(MetadataValue::as_usize).collect(),
            _ => Vec::new(),
        };
        let mut inner = match kind {
            "gpt2" => byte_level::from_gguf(file, &tokens)?,
            "llama" => sentencepiece::from_gguf(file, &tokens, &types)?,
            _ => {
                let reason = format!("tokenizer.ggml.model `{kind}` is not supported (gpt2 byte-level BPE, llama SentencePiece)");
                return Err(LlmError::Tokenizer(format!("{}: {reason}", file.path.display())));
            }
        };
        // Control tokens (type 3) are matched whole and never split; so are user-defined ones
        // (type 4), which are not special (llama.cpp and transformers alike).
        let added = |wanted: usize, special: bool| -> Vec<AddedToken> {
            let ids = types.iter().enumerate().filter(|(_, kind)| **kind == Some(wanted)).map(|(id, _)| id as u32);
            ids.filter_map(|id| inner.id_to_token(id)).map(|token| AddedToken::from(token, special).normalized(false)).collect()
        };
        let (control, user_defined) = (added(3, true), added(4, false));
        inner.add_special_tokens(&control);
        inner.add_tokens(&user_defined);
        let id = |key: &str| file.metadata.get(key).and_then(MetadataValue::as_usize).map(|v| v as u32);
        let flag = |key: &str| matches!(file.metadata.get(key), Some(MetadataValue::Bool(true)));
        Ok(Self {
            inner,
            bos: id("tokenizer.ggml.bos_token_id"),
            eos: id("tokenizer.ggml.eos_token_id"),
            // SentencePiece files without the flag get BOS, as llama.cpp and transformers give it.
            add_bos: flag("tokenizer.ggml.add_bos_token") || (kind == "llama" && !file.metadata.contains_key("tokenizer.ggml.add_bos_token")),
            chat_template: file.metadata.get("tokenizer.chat_template").and_then(MetadataValue::as_str).map(String::from),
        })
    }

    /// Token ids of `text` (no special tokens added).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self.inner.encode(text, false).map_err(|e| LlmError::Tokenizer(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Token ids of a prompt: [`Self::encode`], after BOS when the tokenizer adds it and the text
    /// (a chat template's, say) does not already start with it.
    pub fn encode_prompt(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = self.encode(text)?;
        if let (true, Some(bos)) = (self.add_bos, self.bos) {
            if ids.first() != Some(&bos) {
                ids.insert(0, bos);
            }
        }
        Ok(ids)
    }

    /// Text of `ids` (special tokens kept).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, false).map_err(|e| LlmError::Tokenizer(e.to_string()))
    }
}
