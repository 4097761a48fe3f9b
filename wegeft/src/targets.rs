//! Which linear layers get an adapter: name patterns plus optional layer indices.

use std::fmt;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::error::{PeftError, Result};

/// One way to match a layer name such as `blocks.3.attn.proj`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetPattern {
    /// The whole name.
    Exact(String),
    /// The last dot-separated components (`attn.proj` matches `blocks.3.attn.proj`, not `blocks.3.xattn.proj`).
    Suffix(String),
    /// A regex that must match the whole name (as PEFT's `re.fullmatch`).
    Regex(String),
}

/// The layers to adapt: any pattern matches, and if `layer_indices` is set, only layers whose index
/// (the first numeric component of the name) is listed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    /// Name patterns; a layer is targeted if any matches.
    pub patterns: Vec<TargetPattern>,
    /// Restricts targets to these layer indices.
    #[serde(default)]
    pub layer_indices: Option<Vec<usize>>,
}

impl Targets {
    /// No targets yet; add some with the builder methods.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an exact-name target.
    pub fn exact(mut self, name: impl Into<String>) -> Self {
        self.patterns.push(TargetPattern::Exact(name.into()));
        self
    }

    /// Adds a suffix target.
    pub fn suffix(mut self, suffix: impl Into<String>) -> Self {
        self.patterns.push(TargetPattern::Suffix(suffix.into()));
        self
    }

    /// Adds a full-match regex target.
    pub fn regex(mut self, regex: impl Into<String>) -> Self {
        self.patterns.push(TargetPattern::Regex(regex.into()));
        self
    }

    /// Restricts the targets to these layer indices.
    pub fn layers(mut self, indices: impl IntoIterator<Item = usize>) -> Self {
        self.layer_indices = Some(indices.into_iter().collect());
        self
    }

    pub(crate) fn compile(&self) -> Result<TargetMatcher> {
        let rules = self
            .patterns
            .iter()
            .map(|pattern| match pattern {
                TargetPattern::Exact(name) => Ok(Rule::Exact(name.clone())),
                TargetPattern::Suffix(suffix) => Ok(Rule::Suffix(suffix.clone())),
                TargetPattern::Regex(source) => Regex::new(&format!("^(?:{source})$"))
                    .map(Rule::Regex)
                    .map_err(|error| PeftError::BadPattern {
                        pattern: source.clone(),
                        source: error,
                    }),
            })
            .collect::<Result<Vec<_>>>()?;
        if rules.is_empty() {
            return Err(PeftError::InvalidConfig("no target patterns given".into()));
        }
        Ok(TargetMatcher {
            rules,
            layer_indices: self.layer_indices.clone(),
        })
    }
}

impl fmt::Display for Targets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let patterns: Vec<String> = self
            .patterns
            .iter()
            .map(|pattern| match pattern {
                TargetPattern::Exact(name) => format!("exact `{name}`"),
                TargetPattern::Suffix(suffix) => format!("suffix `{suffix}`"),
                TargetPattern::Regex(regex) => format!("regex `{regex}`"),
            })
            .collect();
        write!(f, "[{}]", patterns.join(", "))?;
        if let Some(indices) = &self.layer_indices {
            write!(f, " in layers {indices:?}")?;
        }
        Ok(())
    }
}

enum Rule {
    Exact(String),
    Suffix(String),
    Regex(Regex),
}

/// Compiled [`Targets`].
pub(crate) struct TargetMatcher {
    rules: Vec<Rule>,
    layer_indices: Option<Vec<usize>>,
}

impl TargetMatcher {
    pub(crate) fn matches(&self, name: &str) -> bool {
        let by_name = self.rules.iter().any(|rule| match rule {
            Rule::Exact(exact) => name == exact,
            Rule::Suffix(suffix) => {
                name == suffix
                    || name
                        .strip_suffix(suffix.as_str())
                        .is_some_and(|head| head.ends_with('.'))
            }
            Rule::Regex(regex) => regex.is_match(name),
        });
        let by_index = match &self.layer_indices {
            None => true,
            Some(indices) => layer_index(name).is_some_and(|index| indices.contains(&index)),
        };
        by_name && by_index
    }
}

/// The layer index of a name: its first all-digit component (`blocks.3.attn.proj` → 3).
pub fn layer_index(name: &str) -> Option<usize> {
    name.split('.').find_map(|part| part.parse().ok())
}

/// The module type of a name: its numeric components wildcarded (`blocks.3.attn.proj` → `blocks.*.attn.proj`).
pub fn module_type(name: &str) -> String {
    name.split('.')
        .map(|part| {
            if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
                "*"
            } else {
                part
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}
