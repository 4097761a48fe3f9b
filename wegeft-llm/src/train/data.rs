//! Instruction data: JSONL in Alpaca form (`instruction`, `input`, `output`) or chat form
//! (`messages` with `role`/`content`, the last assistant turn being the response), rendered with
//! a [`PromptFormat`] and tokenised with the loss on the response only.

use std::path::Path;

use serde::Deserialize;

use crate::chat::Message;
use crate::error::{LlmError, Result};
use crate::prompt::PromptFormat;
use crate::tokenizer::LlmTokenizer;

/// A conversation and the response the model should learn to give.
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    /// The turns before the response (Alpaca lines become one user turn).
    pub messages: Vec<Message>,
    /// The assistant's answer, the part that is learnt.
    pub response: String,
}

impl Example {
    /// The last user turn: what a prediction file shows as the question.
    pub fn question(&self) -> &str {
        self.messages.iter().rev().find(|m| m.role == "user").map_or("", |m| m.content.as_str())
    }
}

/// An Alpaca line (other keys, such as an id, are ignored).
#[derive(Deserialize)]
struct AlpacaLine {
    instruction: String,
    #[serde(default)]
    input: String,
    output: String,
}

/// A chat line.
#[derive(Deserialize)]
struct ChatLine {
    messages: Vec<Message>,
}

/// The examples of a JSONL file; a malformed line is an error naming the file and line.
pub fn read_jsonl(path: &Path) -> Result<Vec<Example>> {
    let text = std::fs::read_to_string(path).map_err(|source| LlmError::Io { path: path.into(), source })?;
    let mut examples = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let error = |reason: String| LlmError::Format {
            path: path.into(),
            reason: format!("line {}: {reason}", index + 1),
        };
        // The form is decided by its key, so serde's error names what that form lacks.
        let value: serde_json::Value = serde_json::from_str(line).map_err(|e| error(e.to_string()))?;
        let chat = value.get("messages").is_some();
        let form = if chat { "a chat line {messages: [...]}" } else { "an Alpaca line {instruction, input?, output}" };
        let malformed = |e: serde_json::Error| error(format!("as {form}: {e}"));
        examples.push(if !chat {
            let AlpacaLine { instruction, input, output } = serde_json::from_value(value).map_err(malformed)?;
            Example {
                messages: vec![Message::new("user", if input.is_empty() { instruction } else { format!("{instruction}\n\n{input}") })],
                response: output,
            }
        } else {
            let ChatLine { messages } = serde_json::from_value(value).map_err(malformed)?;
            let (last, earlier) = messages.split_last().ok_or_else(|| error("`messages` is empty".into()))?;
            if last.role != "assistant" {
                return Err(error(format!("the last message is from `{}`, not the assistant", last.role)));
            }
            Example {
                messages: earlier.to_vec(),
                response: last.content.clone(),
            }
        });
    }
    Ok(examples)
}

/// Token ids of prompt + response + EOS, and how many of them are prompt (no loss there).
#[derive(Clone, Debug)]
pub struct Tokenized {
    /// Prompt, response and EOS token ids.
    pub ids: Vec<u32>,
    /// How many of `ids` are prompt.
    pub prompt_len: usize,
}

/// Tokenises `example`, cut to `max_len` tokens; the answer ends with EOS unless the template's
/// end-of-turn markup already contains it.
pub fn tokenize(tokenizer: &LlmTokenizer, format: &PromptFormat, example: &Example, max_len: usize) -> Result<Tokenized> {
    let (prompt, answer) = format.exchange(&example.messages, &example.response)?;
    let mut ids = tokenizer.encode_prompt(&prompt)?;
    let prompt_len = ids.len().min(max_len);
    let answer = tokenizer.encode(&answer)?;
    let ends_turn = tokenizer.eos.is_some_and(|eos| answer.contains(&eos));
    ids.extend(answer);
    if !ends_turn {
        ids.extend(tokenizer.eos);
    }
    ids.truncate(max_len);
    Ok(Tokenized { ids, prompt_len })
}
