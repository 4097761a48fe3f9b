//! SentencePiece BPE vocabularies as GGUF stores them (`tokenizer.ggml.model = llama`: Gemma,
//! LLaMA 2, Mistral): tokens and scores but no merges, so the merges are rebuilt from the
//! vocabulary as transformers rebuilds them (every split of a token into two tokens, best first),
//! with `▁` for spaces and byte fallback (`<0x41>`) for what the vocabulary lacks.

use std::collections::HashSet;

use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::replace::Replace;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::pre_tokenizers::split::Split;
use tokenizers::{DecoderWrapper, SplitDelimiterBehavior, Tokenizer};

use crate::error::{LlmError, Result};
use crate::gguf::{GgufFile, MetadataValue};

/// SentencePiece's space.
const SPACE: &str = "\u{2581}";

/// The SentencePiece BPE of `file`, whose vocabulary is `tokens` of `types`.
pub(super) fn from_gguf(file: &GgufFile, tokens: &[String], types: &[Option<usize>]) -> Result<Tokenizer> {
    let error = |reason: String| LlmError::Tokenizer(format!("{}: {reason}", file.path.display()));
    let gemma = file.metadata.get("general.architecture").and_then(MetadataValue::as_str).is_some_and(|arch| arch.starts_with("gemma"));
    // Gemma stores a token of spaces as spaces; its tokenizer looks them up as `▁`s.
    let tokens: Vec<String> = match gemma {
        true => tokens.iter().map(|t| if t.contains(' ') && t.trim().is_empty() { SPACE.repeat(t.chars().count()) } else { t.clone() }).collect(),
        false => tokens.to_vec(),
    };
    // Merge priority: the token's score, except Gemma's, whose scores do not follow its merge
    // order while its file order does.
    let priorities: Vec<f64> = match gemma {
        true => (0..tokens.len()).map(|index| -(index as f64)).collect(),
        false => match file.get("tokenizer.ggml.scores")? {
            MetadataValue::Array(scores) if scores.len() == tokens.len() => scores.iter().map(|s| s.as_f64().unwrap_or(f64::NEG_INFINITY)).collect(),
            _ => return Err(error(format!("`tokenizer.ggml.scores` does not give one score for each of the {} tokens", tokens.len()))),
        },
    };
    let vocab: Vocab = tokens.iter().enumerate().map(|(id, token)| (token.clone(), id as u32)).collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab.clone(), merges(&tokens, &priorities, &vocab))
        .unk_token(unknown(&tokens, types, file))
        .fuse_unk(true)
        .byte_fallback(true)
        .build()
        .map_err(|e| error(format!("`tokenizer.ggml.tokens`: {e}")))?;
    let mut inner = Tokenizer::new(bpe);
    // With a prefix space, transformers' LLaMA tokenizer: `▁` for spaces and before the text unless
    // it starts with one. Without, Gemma's: spaces become `▁` and nothing is prepended.
    let prefix = matches!(file.metadata.get("tokenizer.ggml.add_space_prefix"), Some(MetadataValue::Bool(true)));
    match prefix {
        true => inner.with_pre_tokenizer(Some(Metaspace::new('\u{2581}', PrependScheme::First, false))),
        false => {
            inner.with_normalizer(Some(Replace::new(" ", SPACE).expect("a literal pattern")));
            inner.with_pre_tokenizer(Some(Split::new(" ", SplitDelimiterBehavior::MergedWithPrevious, false).expect("a literal pattern")))
        }
    };
    let mut decoders = vec![
        DecoderWrapper::Replace(Replace::new(SPACE, " ").expect("a literal pattern")),
        DecoderWrapper::ByteFallback(ByteFallback::new()),
        DecoderWrapper::Fuse(Fuse::new()),
    ];
    if prefix {
        decoders.push(DecoderWrapper::Strip(Strip::new(' ', 1, 0)));
    }
    inner.with_decoder(Some(DecoderSequence::new(decoders)));
    Ok(inner)
}

/// The unknown token: the file's `unknown_token_id`, else the token of type 2, else `<unk>`.
fn unknown(tokens: &[String], types: &[Option<usize>], file: &GgufFile) -> String {
    let by_id = file.metadata.get("tokenizer.ggml.unknown_token_id").and_then(MetadataValue::as_usize);
    let by_type = types.iter().position(|kind| *kind == Some(2));
    by_id.or(by_type).and_then(|id| tokens.get(id)).cloned().unwrap_or_else(|| "<unk>".into())
}

/// Every way a token splits into two tokens, best first: by the token's priority, then the
/// longer left piece, then the longer right one (transformers' `generate_merges`); equal ones
/// keep vocabulary order, and a token's own splits are ordered by their pieces' ids. A token
/// listed twice counts once, where it first appears, with its last id's priority (a Python dict).
fn merges(tokens: &[String], priorities: &[f64], vocab: &Vocab) -> Vec<(String, String)> {
    let mut seen = HashSet::new();
    let mut found: Vec<(f64, usize, usize, u32, u32)> = Vec::new();
    for token in tokens.iter().filter(|token| seen.insert(token.as_str())) {
        let priority = priorities[vocab[token] as usize];
        let mut splits: Vec<(u32, u32, usize, usize)> = token
            .char_indices()
            .skip(1)
            .filter_map(|(at, _)| {
                let (left, right) = token.split_at(at);
                Some((*vocab.get(left)?, *vocab.get(right)?, left.chars().count(), right.chars().count()))
            })
            .collect();
        splits.sort_by_key(|&(left, right, ..)| (left, right));
        found.extend(splits.into_iter().map(|(left, right, left_len, right_len)| (priority, left_len, right_len, left, right)));
    }
    // A stable sort, descending on (priority, left length, right length).
    found.sort_by(|a, b| (b.0, b.1, b.2).partial_cmp(&(a.0, a.1, a.2)).expect("finite priorities"));
    found.into_iter().map(|(_, _, _, left, right)| (tokens[left as usize].clone(), tokens[right as usize].clone())).collect()
}
