//! Tokenizers: Hugging Face `tokenizer.json` files, and the byte-level BPE stored inside GGUF
//! files (vocabulary, merges, special tokens) rebuilt with the `tokenizers` crate.

use std::path::Path;

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, PreTokenizerWrapper, Tokenizer};

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
        })
    }

    /// The GPT-2-style byte-level BPE inside a GGUF file (`tokenizer.ggml.model = gpt2`).
    pub fn from_gguf(file: &GgufFile) -> Result<Self> {
        let kind = file.get("tokenizer.ggml.model")?.as_str().unwrap_or_default();
        if kind != "gpt2" {
            return Err(LlmError::Tokenizer(format!("{}: tokenizer model `{kind}` is not supported (gpt2 byte-level BPE)", file.path.display())));
        }
        let tokens = strings(file.get("tokenizer.ggml.tokens")?);
        let merges: Vec<(String, String)> = strings(file.get("tokenizer.ggml.merges")?)
            .iter()
            .filter_map(|merge| merge.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())))
            .collect();
        let vocab: Vocab = tokens.iter().enumerate().map(|(id, token)| (token.clone(), id as u32)).collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| LlmError::Tokenizer(format!("{}: `tokenizer.ggml.tokens` and `tokenizer.ggml.merges`: {e}", file.path.display())))?;
        let mut inner = Tokenizer::new(bpe);
        // llama.cpp's `smollm`/`gpt2`-family pre-tokenisers: digits one by one, then GPT-2's split.
        let digits = matches!(file.metadata.get("tokenizer.ggml.pre").and_then(MetadataValue::as_str), Some("smollm" | "llama3" | "llama-bpe"));
        let byte_level = PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true));
        let pre = if digits {
            PreTokenizerWrapper::Sequence(Sequence::new(vec![PreTokenizerWrapper::Digits(Digits::new(true)), byte_level]))
        } else {
            byte_level
        };
        inner.with_pre_tokenizer(Some(pre));
        inner.with_decoder(Some(ByteLevelDecoder::default()));
        // Control tokens (type 3) are matched whole and never split.
        if let Some(MetadataValue::Array(types)) = file.metadata.get("tokenizer.ggml.token_type") {
            let special: Vec<AddedToken> = types
                .iter()
                .zip(&tokens)
                .filter(|(kind, _)| kind.as_usize() == Some(3))
                .map(|(_, token)| AddedToken::from(token.clone(), true))
                .collect();
            inner.add_special_tokens(&special);
        }
        let id = |key: &str| file.metadata.get(key).and_then(MetadataValue::as_usize).map(|v| v as u32);
        Ok(Self {
            inner,
            bos: id("tokenizer.ggml.bos_token_id"),
            eos: id("tokenizer.ggml.eos_token_id"),
            chat_template: file.metadata.get("tokenizer.chat_template").and_then(MetadataValue::as_str).map(String::from),
        })
    }

    /// Token ids of `text` (no special tokens added).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self.inner.encode(text, false).map_err(|e| LlmError::Tokenizer(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Text of `ids` (special tokens kept).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, false).map_err(|e| LlmError::Tokenizer(e.to_string()))
    }
}
