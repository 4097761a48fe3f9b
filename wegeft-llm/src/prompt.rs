//! How a conversation becomes model input: the checkpoint's chat template, or Stanford Alpaca's
//! instruction template for base models that have none.

use serde::{Deserialize, Serialize};

use crate::chat::{ChatTemplate, Message};
use crate::error::{LlmError, Result};
use crate::tokenizer::LlmTokenizer;

/// Which format to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PromptStyle {
    /// The chat template when the checkpoint has one, Alpaca otherwise.
    Auto,
    /// The checkpoint's chat template (an error when it has none).
    Chat,
    /// Stanford Alpaca's instruction template.
    Alpaca,
}

const ALPACA_PREAMBLE: &str = "Below is an instruction that describes a task. Write a response that appropriately completes the request.";

/// A resolved prompt format.
pub enum PromptFormat {
    /// The checkpoint's chat template.
    Chat(Box<ChatTemplate>),
    /// Alpaca: a system message replaces the preamble; user turns form the instruction.
    Alpaca,
}

impl PromptFormat {
    /// The format `style` asks for, with `tokenizer`'s template and special tokens.
    pub fn new(style: PromptStyle, tokenizer: &LlmTokenizer) -> Result<Self> {
        match (style, &tokenizer.chat_template) {
            (PromptStyle::Alpaca, _) | (PromptStyle::Auto, None) => Ok(Self::Alpaca),
            (PromptStyle::Chat, None) => Err(LlmError::Template("the checkpoint has no chat template; use the Alpaca template".into())),
            (_, Some(source)) => {
                let token = |id: Option<u32>| id.and_then(|id| tokenizer.inner.id_to_token(id)).unwrap_or_default();
                Ok(Self::Chat(Box::new(ChatTemplate::new(source, &token(tokenizer.bos), &token(tokenizer.eos))?)))
            }
        }
    }

    /// The text the model continues: `messages` and the opening of the assistant's turn.
    pub fn prompt(&self, messages: &[Message]) -> Result<String> {
        match self {
            Self::Chat(template) => template.render(messages, true),
            Self::Alpaca => {
                let preamble = messages.iter().find(|m| m.role == "system").map_or(ALPACA_PREAMBLE, |m| m.content.as_str());
                let instruction: Vec<&str> = messages.iter().filter(|m| m.role != "system").map(|m| m.content.as_str()).collect();
                Ok(format!("{preamble}\n\n### Instruction:\n{}\n\n### Response:\n", instruction.join("\n\n")))
            }
        }
    }

    /// The prompt and the text after it when the assistant answers `response`: with a chat
    /// template the answer carries the template's end-of-turn markup, so the model learns to stop.
    pub fn exchange(&self, messages: &[Message], response: &str) -> Result<(String, String)> {
        let prompt = self.prompt(messages)?;
        if let Self::Chat(template) = self {
            let mut conversation = messages.to_vec();
            conversation.push(Message::new("assistant", response));
            let full = template.render(&conversation, false)?;
            if let Some(answer) = full.strip_prefix(prompt.as_str()) {
                return Ok((prompt, answer.to_string()));
            }
        }
        Ok((prompt, response.to_string()))
    }
}
