//! Text generation with the KV cache: greedy or temperature / top-p sampling, a batch of prompts
//! (left-padded, padding masked), stopping at EOS or a stop string.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use wegeft::train::SplitMix64;

use crate::error::{LlmError, Result};
use crate::model::Decoder;

/// How the next token is chosen.
#[derive(Clone, Debug)]
pub struct Sampling {
    /// 0 for greedy decoding.
    pub temperature: f64,
    /// Nucleus: sample among the most likely tokens whose probabilities sum to `top_p`.
    pub top_p: f64,
    /// Seed of the sampling draws.
    pub seed: u64,
}

impl Sampling {
    /// Always the most likely token.
    pub fn greedy() -> Self {
        Self { temperature: 0.0, top_p: 1.0, seed: 0 }
    }

    /// Fails unless the temperature is a non-negative number and top-p lies in (0, 1].
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(LlmError::InvalidConfig(format!("temperature must be 0 (greedy) or positive, got {}", self.temperature)));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(LlmError::InvalidConfig(format!("top-p must be in (0, 1], got {}", self.top_p)));
        }
        Ok(())
    }

    fn pick(&self, logits: &[f32], rng: &mut SplitMix64) -> u32 {
        let argmax = || logits.iter().enumerate().fold((0, f32::NEG_INFINITY), |best, (i, &v)| if v > best.1 { (i, v) } else { best }).0 as u32;
        if self.temperature <= 0.0 {
            return argmax();
        }
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let mut probs: Vec<(u32, f64)> = logits.iter().enumerate().map(|(i, &v)| (i as u32, ((v as f64 - max) / self.temperature).exp())).collect();
        probs.sort_by(|a, b| b.1.total_cmp(&a.1));
        let total: f64 = probs.iter().map(|p| p.1).sum();
        let mut kept = 0.0;
        let nucleus: Vec<(u32, f64)> = probs
            .into_iter()
            .take_while(|p| {
                let keep = kept < self.top_p * total;
                kept += p.1;
                keep
            })
            .collect();
        let mut draw = rng.next_f64() * nucleus.iter().map(|p| p.1).sum::<f64>();
        for (token, p) in &nucleus {
            draw -= p;
            if draw <= 0.0 {
                return *token;
            }
        }
        nucleus.last().map_or_else(argmax, |p| p.0)
    }
}

/// Continues each prompt by up to `max_new` tokens, and never past the model's context length;
/// a sequence stops at a token in `stop_ids` or when `stop` says so of its generated ids.
/// Returns the generated ids (prompts excluded); an empty prompt, one that fills the context, an
/// id outside the vocabulary or unusable sampling settings are errors.
pub fn generate<B: Backend>(
    model: &Decoder<B>,
    prompts: &[Vec<u32>],
    max_new: usize,
    stop_ids: &[u32],
    sampling: &Sampling,
    stop: impl Fn(&[u32]) -> bool,
    device: &B::Device,
) -> Result<Vec<Vec<u32>>> {
    sampling.validate()?;
    if let Some(index) = prompts.iter().position(Vec::is_empty) {
        return Err(LlmError::InvalidConfig(format!("prompt {} is empty: generation continues at least one token", index + 1)));
    }
    let vocab = model.embed_tokens.vocab();
    if let Some(id) = prompts.iter().flatten().find(|&&id| id as usize >= vocab) {
        return Err(LlmError::InvalidConfig(format!("token id {id} is outside the model's vocabulary of {vocab}")));
    }
    let context = model.context_length;
    if let Some((index, prompt)) = prompts.iter().enumerate().find(|(_, prompt)| prompt.len() >= context) {
        let problem = format!("prompt {} has {} tokens; the model's context of {context} leaves no room to continue it", index + 1, prompt.len());
        return Err(LlmError::InvalidConfig(problem));
    }
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
    let max_new = max_new.min(context - longest);
    let mut padding: Vec<Vec<u8>> = prompts.iter().map(|p| [vec![0; longest - p.len()], vec![1; p.len()]].concat()).collect();
    let ids: Vec<i64> = prompts.iter().flat_map(|p| std::iter::repeat_n(0, longest - p.len()).chain(p.iter().map(|&t| t as i64))).collect();
    let mut input = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [prompts.len(), longest]), device);
    let mut cache = model.new_cache();
    let mut rng = SplitMix64::new(sampling.seed);
    let mut outputs = vec![Vec::new(); prompts.len()];
    let mut done = vec![false; prompts.len()];
    for _ in 0..max_new {
        // Only the last position's logits are needed: the head is the largest matmul here.
        let hidden = model.hidden(input, Some(&mut cache), Some(&padding));
        let [batch, len, width] = hidden.dims();
        let logits = model.logits(hidden.slice([0..batch, len - 1..len, 0..width]));
        let vocab = logits.dims()[2];
        let last = logits.reshape([batch, vocab]);
        let values = last.into_data().convert::<f32>().to_vec::<f32>().expect("f32 logits");
        let mut next = Vec::with_capacity(batch);
        for (row, output) in outputs.iter_mut().enumerate() {
            let token = sampling.pick(&values[row * vocab..(row + 1) * vocab], &mut rng);
            if !done[row] {
                output.push(token);
                done[row] = stop_ids.contains(&token) || stop(output);
            }
            next.push(token as i64);
            padding[row].push(1);
        }
        if done.iter().all(|&d| d) {
            break;
        }
        input = Tensor::from_data(TensorData::new(next, [batch, 1]), device);
    }
    Ok(outputs)
}
