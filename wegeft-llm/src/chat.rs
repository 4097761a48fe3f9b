//! Chat templates: the Jinja template a checkpoint ships (`tokenizer_config.json`'s
//! `chat_template`, GGUF's `tokenizer.chat_template`), rendered with minijinja the way
//! `transformers`' `apply_chat_template` renders it: blocks trimmed and left-stripped, Python's
//! string methods available, `raise_exception` failing the render.

use minijinja::syntax::SyntaxConfig;
use minijinja::{context, Environment, Error, ErrorKind, Value};
use serde::{Deserialize, Serialize};

use crate::error::{LlmError, Result};

/// One turn of a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The turn's text.
    pub content: String,
}

impl Message {
    /// A turn of `role` saying `content`.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }

    /// The `{role, content}` mapping templates index.
    fn to_value(&self) -> Value {
        Value::from_pairs([("role", self.role.as_str()), ("content", self.content.as_str())])
    }
}

/// A compiled chat template with the special-token strings it may insert.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

const NAME: &str = "chat_template";

/// Instructions one rendering may execute.
const TEMPLATE_FUEL: u64 = 10_000_000;

fn template_error(error: Error) -> LlmError {
    LlmError::Template(error.to_string())
}

impl ChatTemplate {
    /// Compiles `source`; a syntax error names the template line.
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self> {
        if source.trim().is_empty() {
            return Err(LlmError::Template("the chat template is empty".into()));
        }
        let mut env = Environment::new();
        // A bounded amount of work per rendering: a template with a runaway loop fails with an
        // error instead of hanging (real chat templates use a few thousand instructions).
        env.set_fuel(Some(TEMPLATE_FUEL));
        env.set_syntax(SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).build().map_err(template_error)?);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |message: String| -> std::result::Result<String, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, message))
        });
        env.add_template_owned(NAME, source.to_string()).map_err(template_error)?;
        Ok(Self {
            env,
            bos_token: bos_token.into(),
            eos_token: eos_token.into(),
        })
    }

    /// The conversation as text; `add_generation_prompt` opens the assistant's turn.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let template = self.env.get_template(NAME).map_err(template_error)?;
        template
            .render(context! {
                messages => Value::from(messages.iter().map(Message::to_value).collect::<Vec<_>>()),
                add_generation_prompt,
                bos_token => self.bos_token.as_str(),
                eos_token => self.eos_token.as_str(),
            })
            .map_err(template_error)
    }
}
