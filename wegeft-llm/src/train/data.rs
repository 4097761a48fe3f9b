//! Instruction data: JSONL in Alpaca form (`instruction`, `input`, `output`) or chat form
//! (`messages` with `role`/`content`, the last assistant turn being the response), rendered with
//! the model's ChatML turns or the Alpaca template, tokenised with the loss on the response only.

use std::path::Path;

use serde::Deserialize;

use crate::error::{LlmError, Result};
use crate::tokenizer::LlmTokenizer;

/// A prompt and the response the model should learn to give.
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    pub prompt: String,
    pub response: String,
}

#[derive(Deserialize)]
struct Message {
    role: String,
    content: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Line {
    Alpaca {
        instruction: String,
        #[serde(default)]
        input: String,
        output: String,
    },
    Chat {
        messages: Vec<Message>,
    },
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
        let parsed: Line = serde_json::from_str(line)
            .map_err(|e| error(format!("expected {{instruction, input?, output}} or {{messages: [...]}}: {e}")))?;
        examples.push(match parsed {
            Line::Alpaca { instruction, input, output } => Example {
                prompt: if input.is_empty() { instruction } else { format!("{instruction}\n\n{input}") },
                response: output,
            },
            Line::Chat { messages } => {
                let (last, earlier) = messages.split_last().ok_or_else(|| error("`messages` is empty".into()))?;
                if last.role != "assistant" {
                    return Err(error(format!("the last message is from `{}`, not the assistant", last.role)));
                }
                let prompt = earlier.iter().map(|m| m.content.as_str()).collect::<Vec<_>>().join("\n\n");
                Example { prompt, response: last.content.clone() }
            }
        });
    }
    Ok(examples)
}

/// How a prompt is shown to the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Template {
    /// `<|im_start|>user … <|im_end|> <|im_start|>assistant` (SmolLM2, Qwen and other ChatML models).
    ChatMl,
    /// Stanford Alpaca's instruction template.
    Alpaca,
}

impl Template {
    /// ChatML when the tokenizer's chat template uses it, Alpaca otherwise.
    pub fn for_tokenizer(tokenizer: &LlmTokenizer) -> Self {
        match &tokenizer.chat_template {
            Some(template) if template.contains("<|im_start|>") => Self::ChatMl,
            _ => Self::Alpaca,
        }
    }

    /// The text before the response.
    pub fn prompt(self, prompt: &str) -> String {
        match self {
            Self::ChatMl => format!("<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"),
            Self::Alpaca => format!(
                "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n{prompt}\n\n### Response:\n"
            ),
        }
    }
}

/// Token ids of prompt + response + EOS, and how many of them are prompt (no loss there).
#[derive(Clone, Debug)]
pub struct Tokenized {
    pub ids: Vec<u32>,
    pub prompt_len: usize,
}

/// Tokenises `example`, cut to `max_len` tokens.
pub fn tokenize(tokenizer: &LlmTokenizer, template: Template, example: &Example, max_len: usize) -> Result<Tokenized> {
    let mut ids = tokenizer.encode(&template.prompt(&example.prompt))?;
    let prompt_len = ids.len().min(max_len);
    ids.extend(tokenizer.encode(&example.response)?);
    ids.extend(tokenizer.eos);
    ids.truncate(max_len);
    Ok(Tokenized { ids, prompt_len })
}
