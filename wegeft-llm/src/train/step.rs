//! The decoder as a causal language model for burn's `Learner`: next-token cross-entropy on the
//! response tokens only, padded batches.

use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::module::Module;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use burn::train::{InferenceStep, SequenceOutput, TrainOutput, TrainStep};

use wegeft::train::{gradients, LossScaler};

use crate::model::Decoder;
use crate::train::data::Tokenized;
use crate::train::throughput::LmOutput;

/// Target id of positions without loss (prompt, padding); metrics skip it as their pad token.
pub const IGNORED: u32 = 0;

/// A right-padded batch: inputs, next-token targets, loss mask, key padding.
#[derive(Clone, Debug)]
pub struct LmBatch<B: Backend> {
    /// Input ids `[B, T]`.
    pub tokens: Tensor<B, 2, Int>,
    /// The next token at each position, [`IGNORED`] where there is no loss.
    pub targets: Tensor<B, 2, Int>,
    /// 1 where a position counts towards the loss, else 0.
    pub loss_mask: Tensor<B, 2>,
    /// Per row, 1 for a real token and 0 for padding.
    pub padding: Arc<Vec<Vec<u8>>>,
}

/// Pads with `pad` to the longest sequence of the batch.
#[derive(Clone, Debug)]
pub struct LmBatcher {
    /// The padding token id.
    pub pad: u32,
}

impl<B: Backend> Batcher<B, Tokenized, LmBatch<B>> for LmBatcher {
    fn batch(&self, items: Vec<Tokenized>, device: &B::Device) -> LmBatch<B> {
        let len = items.iter().map(|t| t.ids.len().saturating_sub(1)).max().unwrap_or(1).max(1);
        let (mut tokens, mut targets, mut mask, mut padding) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for item in &items {
            let inputs = &item.ids[..item.ids.len().saturating_sub(1)];
            let mut row_padding = Vec::with_capacity(len);
            for position in 0..len {
                let real = position < inputs.len();
                tokens.push(if real { inputs[position] } else { self.pad } as i64);
                row_padding.push(real as u8);
                // Position p predicts token p + 1, which counts when it belongs to the response.
                let learn = real && position + 1 >= item.prompt_len;
                targets.push(if learn { item.ids[position + 1] } else { IGNORED } as i64);
                mask.push(learn as u8 as f32);
            }
            padding.push(row_padding);
        }
        let shape = [items.len(), len];
        LmBatch {
            tokens: Tensor::from_data(TensorData::new(tokens, shape), device),
            targets: Tensor::from_data(TensorData::new(targets, shape), device),
            loss_mask: Tensor::from_data(TensorData::new(mask, shape), device),
            padding: Arc::new(padding),
        }
    }
}

/// A [`Decoder`] trained as a causal LM.
#[derive(Module, Debug)]
pub struct CausalLm<B: Backend> {
    /// The decoder.
    pub model: Decoder<B>,
    /// Scales the loss of f16 training ([`LossScaler::for_run`]); `None` otherwise.
    #[module(skip)]
    pub loss_scaler: Option<LossScaler>,
}

impl<B: Backend> CausalLm<B> {
    /// Logits and the mean cross-entropy over the masked-in targets.
    pub fn loss(&self, batch: LmBatch<B>) -> LmOutput<SequenceOutput<B>> {
        let tokens = batch.padding.iter().flatten().filter(|&&real| real == 1).count();
        let logits = self.model.forward(batch.tokens, None, Some(&batch.padding));
        let [b, t, _] = logits.dims();
        let picked = log_softmax(logits.clone(), 2).gather(2, batch.targets.clone().reshape([b, t, 1])).reshape([b, t]);
        let count = batch.loss_mask.clone().sum().clamp_min(1.0);
        let loss = (picked * batch.loss_mask).sum().neg() / count;
        LmOutput {
            sequence: SequenceOutput::new(loss, logits, None, batch.targets),
            tokens,
        }
    }
}

impl<B: AutodiffBackend> TrainStep for CausalLm<B> {
    type Input = LmBatch<B>;
    type Output = LmOutput<SequenceOutput<B>>;

    fn step(&self, batch: LmBatch<B>) -> TrainOutput<Self::Output> {
        let item = self.loss(batch);
        let grads = gradients(item.sequence.loss.clone(), self, self.loss_scaler.as_ref());
        TrainOutput { grads, item }
    }
}

impl<B: Backend> InferenceStep for CausalLm<B> {
    type Input = LmBatch<B>;
    type Output = LmOutput<SequenceOutput<B>>;

    fn step(&self, batch: LmBatch<B>) -> Self::Output {
        self.loss(batch)
    }
}
