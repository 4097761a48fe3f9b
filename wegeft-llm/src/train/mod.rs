//! Fine-tuning a decoder on instruction data through burn's `Learner`, and exact-match evaluation.

mod config;
pub mod data;
pub mod eval;
pub mod next_token_loss;
pub mod output;
pub mod perplexity;
mod run;
pub mod step;
pub mod throughput;

pub use config::LlmTrainConfig;
pub use run::{train_llm, LlmResults};
