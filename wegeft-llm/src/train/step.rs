//! The decoder as a causal language model for burn's `Learner`: next-token cross-entropy on the
//! response tokens only, padded batches.

use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::module::{AutodiffModule, Module};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use burn::train::{InferenceStep, TrainOutput, TrainStep};
use wegeft::kernels::{record_masks, replay_masks};
use wegeft::train::{gradients, surrogate, BlockwiseBackward, LossScaler};

use crate::model::Decoder;
use crate::train::data::Tokenized;
use crate::train::next_token_loss::next_token_loss;
use crate::train::output::LmOutput;

/// Target id of positions without loss (prompt, padding); their loss weight is 0.
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
    /// Positions that count towards the loss.
    pub counted: usize,
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
            counted: mask.iter().filter(|&&learn| learn == 1.0).count(),
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
    /// Layer-wise gradient checkpointing: the forward keeps each decoder layer's input only, and
    /// the backward recomputes one layer at a time (one more forward pass, one layer's
    /// activations instead of all of them).
    #[module(skip)]
    pub recompute_layers: bool,
}

impl<B: Backend> CausalLm<B> {
    /// The final hidden states, a row per position (`[B·T, D]`).
    fn hidden_rows(&self, batch: &LmBatch<B>) -> Tensor<B, 2> {
        let hidden = self.model.hidden(batch.tokens.clone(), None, Some(&batch.padding));
        let [b, t, d] = hidden.dims();
        hidden.reshape([b * t, d])
    }

    /// Each position's share of the mean: 1/count where it counts, else 0.
    fn loss_weights(batch: &LmBatch<B>) -> Tensor<B, 1> {
        let [b, t] = batch.loss_mask.dims();
        batch.loss_mask.clone().reshape([b * t]) / batch.counted.max(1) as f64
    }

    fn output(batch: &LmBatch<B>, loss: Tensor<B, 1>) -> LmOutput<B> {
        let tokens = batch.padding.iter().flatten().filter(|&&real| real == 1).count();
        LmOutput { loss, targets: batch.counted, tokens }
    }

    /// The mean cross-entropy over the batch's masked-in targets.
    pub fn loss(&self, batch: LmBatch<B>) -> LmOutput<B> {
        let [b, t] = batch.targets.dims();
        let targets = batch.targets.clone().reshape([b * t]);
        let (loss, _) = next_token_loss(self.model.head(), self.hidden_rows(&batch), targets, Self::loss_weights(&batch), false);
        Self::output(&batch, loss)
    }
}

impl<B: AutodiffBackend> TrainStep for CausalLm<B> {
    type Input = LmBatch<B>;
    type Output = LmOutput<B>;

    fn step(&self, batch: LmBatch<B>) -> TrainOutput<Self::Output> {
        if self.recompute_layers {
            return self.step_recomputing_layers(batch);
        }
        let hidden = self.hidden_rows(&batch);
        let (loss, surrogate) = self.loss_and_surrogate(&batch, hidden);
        let grads = gradients(surrogate, self, self.loss_scaler.as_ref());
        TrainOutput { grads, item: Self::output(&batch, loss) }
    }
}

impl<B: AutodiffBackend> CausalLm<B> {
    /// The loss of `hidden` (`[B·T, D]`, tracked), and a [`surrogate`] whose gradient at
    /// `hidden` is the loss's: the head is frozen, so that gradient is all autodiff needs.
    fn loss_and_surrogate(&self, batch: &LmBatch<B>, hidden: Tensor<B, 2>) -> (Tensor<B, 1>, Tensor<B, 1>) {
        let [b, t] = batch.targets.dims();
        let targets = batch.targets.clone().reshape([b * t]).inner();
        let head = self.model.head().valid();
        let (loss, gradient) = next_token_loss(&head, hidden.clone().inner(), targets, Self::loss_weights(batch).inner(), true);
        (Tensor::from_inner(loss), surrogate(hidden, gradient.expect("asked for")))
    }

    /// [`TrainStep::step`] with [`Self::recompute_layers`]: the forward runs each layer untracked,
    /// recording its dropout masks; the backward recomputes the
    /// layers from the top down, each with its own masks replayed, so the gradients are exactly
    /// those of the whole graph.
    fn step_recomputing_layers(&self, batch: LmBatch<B>) -> TrainOutput<LmOutput<B>> {
        let model = &self.model;
        let (mut x, positions) = model.inputs(batch.tokens.clone(), 0, Some(&batch.padding));
        // With no parameter tracked, the first forward leaves no graph behind (dropout is still
        // on: the backend is the autodiff one).
        let untracked = model.clone().no_grad();
        let mut saved = Vec::with_capacity(model.layers.len());
        for layer in &untracked.layers {
            let (output, masks) = record_masks(|| layer.forward(x.clone(), &positions, None, &untracked.adapters));
            saved.push((x, masks));
            x = output;
        }
        let top = x.require_grad();
        let hidden = model.final_norm(top.clone());
        let [b, t, d] = hidden.dims();
        let (loss, surrogate) = self.loss_and_surrogate(&batch, hidden.reshape([b * t, d]));
        let mut backward = BlockwiseBackward::new(self, self.loss_scaler.as_ref());
        let mut grad = backward.top(surrogate, &top);
        for (layer, (input, masks)) in model.layers.iter().zip(saved).rev() {
            let input = input.require_grad();
            let output = replay_masks(masks, || layer.forward(input.clone(), &positions, None, &model.adapters));
            grad = backward.block(output, grad, &input);
        }
        TrainOutput { grads: backward.finish(), item: Self::output(&batch, loss) }
    }
}

impl<B: Backend> InferenceStep for CausalLm<B> {
    type Input = LmBatch<B>;
    type Output = LmOutput<B>;

    fn step(&self, batch: LmBatch<B>) -> Self::Output {
        self.loss(batch)
    }
}
