//! GPT-2's byte-level BPE as GGUF stores it (`tokenizer.ggml.model = gpt2`): tokens and merges.

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{PreTokenizerWrapper, Tokenizer};

use super::strings;
use crate::error::{LlmError, Result};
use crate::gguf::{GgufFile, MetadataValue};

/// The byte-level BPE of `file`, whose vocabulary is `tokens`.
pub(super) fn from_gguf(file: &GgufFile, tokens: &[String]) -> Result<Tokenizer> {
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
    Ok(inner)
}
