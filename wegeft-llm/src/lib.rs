//! Decoders (LLaMA, Mistral, Qwen2, Qwen3, Gemma 3: one design, a [`Family`] per model family) with
//! WeGeFT adapters for burn: GGUF (F32, F16, BF16, Q4_0/1, Q5_0/1, Q8_0 and the K-quants Q2_K to
//! Q6_K; the projections, embedding and head optionally kept in their blocks,
//! [`BasePrecision::Stored`]) and Hugging Face checkpoints, their tokenizers (byte-level and
//! SentencePiece BPE) and chat templates, KV-cached generation, and a trainer whose loss never
//! holds the logits whole and whose layers can be recomputed in the backward pass.

#![warn(missing_docs)]

pub mod assets;
pub mod attention;
pub mod base_precision;
pub mod block;
pub mod cache;
pub mod chat;
pub mod config;
pub mod error;
pub mod generate;
pub mod export;
pub mod family;
pub mod gguf;
pub mod mlp;
pub mod model;
pub mod pretrained;
pub mod prompt;
mod rms_norm;
pub mod rope;
pub mod tokenizer;
pub mod train;
pub mod vocab_matrix;

pub use cache::KvCache;
pub use chat::{ChatTemplate, Message};
pub use config::{DecoderConfig, LayerType, NamedShape, RopeScaling};
pub use family::Family;
pub use error::{LlmError, Result};
pub use generate::{generate, Sampling};
pub use model::Decoder;
pub use wegeft::Precision;
pub use base_precision::BasePrecision;
pub use pretrained::{load, load_base, Pretrained};
pub use prompt::{PromptFormat, PromptStyle};
pub use tokenizer::LlmTokenizer;
pub use vocab_matrix::VocabMatrix;
