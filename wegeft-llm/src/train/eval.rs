//! Exact-match evaluation in the paper's style: generate greedily, extract the answer (the last
//! number for arithmetic, the option letter for multiple choice, or the first line), compare.

use std::time::Instant;

use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::generate::{generate, Sampling};
use crate::model::Decoder;
use crate::tokenizer::LlmTokenizer;
use crate::prompt::PromptFormat;
use crate::train::data::Example;

/// How an answer is read out of a generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Extract {
    /// The last number (arithmetic, GSM8K).
    LastNumber,
    /// The first standalone option letter A–E (multiple choice).
    Choice,
    /// The first answer word of the commonsense suites as LLM-Adapters words them: `true`/`false`,
    /// `solution1`, `answer3`, `ending2`, `option1`, …
    AnswerWord,
    /// The first line, trimmed.
    FirstLine,
}

/// Whether `word` is one of the commonsense suites' answer words.
fn is_answer_word(word: &str) -> bool {
    let lower = word.to_ascii_lowercase();
    if lower == "true" || lower == "false" {
        return true;
    }
    ["solution", "answer", "ending", "option"].iter().any(|stem| {
        lower.strip_prefix(stem).is_some_and(|digit| digit.len() == 1 && digit.chars().all(|c| c.is_ascii_digit()))
    })
}

impl Extract {
    /// The answer in `text`, if any.
    pub fn answer(self, text: &str) -> Option<String> {
        match self {
            Self::LastNumber => {
                let cleaned = text.replace(',', "");
                let mut numbers = Vec::new();
                let mut current = String::new();
                for c in cleaned.chars().chain(std::iter::once(' ')) {
                    if c.is_ascii_digit() || (c == '-' && current.is_empty()) || (c == '.' && !current.contains('.') && !current.is_empty()) {
                        current.push(c);
                    } else if !current.is_empty() {
                        let number = current.trim_end_matches('.').to_string();
                        if number != "-" && !number.is_empty() {
                            numbers.push(number);
                        }
                        current.clear();
                    }
                }
                numbers.pop().map(|n| n.parse::<f64>().map_or(n.clone(), |v| v.to_string()))
            }
            Self::Choice => text
                .split(|c: char| !c.is_ascii_alphanumeric())
                .find(|word| word.len() == 1 && ("A"..="E").contains(word))
                .map(String::from),
            Self::AnswerWord => text
                .split(|c: char| !c.is_ascii_alphanumeric())
                .find(|word| is_answer_word(word))
                .map(str::to_ascii_lowercase),
            Self::FirstLine => text.lines().next().map(|l| l.trim().to_string()),
        }
    }
}

/// One evaluated example.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Prediction {
    /// The question: the example's last user turn.
    pub prompt: String,
    /// The reference response.
    pub expected: String,
    /// The model's generation, without the stop token.
    pub generated: String,
    /// The answer extracted from the generation, if any.
    pub answer: Option<String>,
    /// Whether the answer matches the one extracted from the reference.
    pub correct: bool,
}

/// Accuracy and speed of an evaluation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LmEvaluation {
    /// Exact-match accuracy in percent.
    pub accuracy: f64,
    /// Examples evaluated.
    pub examples: usize,
    /// Generated tokens per second (prompt processing included in the time).
    pub tokens_per_second: f64,
    /// Every example's prediction, in order.
    pub predictions: Vec<Prediction>,
}

/// Greedy generation of up to `max_new` tokens per example, in batches of `batch`.
#[allow(clippy::too_many_arguments)]
pub fn evaluate<B: Backend>(
    model: &Decoder<B>,
    tokenizer: &LlmTokenizer,
    format: &PromptFormat,
    examples: &[Example],
    extract: Extract,
    max_new: usize,
    batch: usize,
    device: &B::Device,
) -> Result<LmEvaluation> {
    let start = Instant::now();
    let (mut predictions, mut generated_tokens) = (Vec::new(), 0);
    let stop_ids: Vec<u32> = tokenizer.eos.into_iter().collect();
    for (chunk_index, chunk) in examples.chunks(batch.max(1)).enumerate() {
        let prompts = chunk.iter().map(|e| tokenizer.encode_prompt(&format.prompt(&e.messages)?)).collect::<Result<Vec<_>>>()?;
        let outputs = generate(model, &prompts, max_new, &stop_ids, &Sampling::greedy(), |_| false, device)?;
        for (example, output) in chunk.iter().zip(outputs) {
            generated_tokens += output.len();
            let ids: Vec<u32> = output.into_iter().filter(|id| !stop_ids.contains(id)).collect();
            let generated = tokenizer.decode(&ids)?;
            let answer = extract.answer(&generated);
            let correct = answer.is_some() && answer == extract.answer(&example.response);
            predictions.push(Prediction {
                prompt: example.question().to_string(),
                expected: example.response.clone(),
                generated,
                answer,
                correct,
            });
        }
        // Under MPI every rank evaluates; rank 0 tells the progress.
        if wegeft::train::world().rank() == 0 {
            eprintln!("eval: {}/{} examples", (chunk_index * batch + chunk.len()).min(examples.len()), examples.len());
        }
    }
    let correct = predictions.iter().filter(|p| p.correct).count();
    Ok(LmEvaluation {
        accuracy: 100.0 * correct as f64 / predictions.len().max(1) as f64,
        examples: predictions.len(),
        tokens_per_second: generated_tokens as f64 / start.elapsed().as_secs_f64().max(1e-9),
        predictions,
    })
}
