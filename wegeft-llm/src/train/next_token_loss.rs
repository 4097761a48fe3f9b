//! Next-token cross-entropy through the frozen output head, a tile of the vocabulary at a time:
//! the loss and, for training, its gradient with respect to the hidden states, without the
//! `[positions, vocab]` logits ever existing whole. Whole, they and their softmax and gradient
//! were most of a step's memory: 8 × 64 positions of Gemma 3's 262,144-token vocabulary make
//! 537 MB of logits, twice its packed base.
//!
//! The head is frozen, so the gradient with respect to the hidden states is all the backward
//! needs from it: [`crate::train::step::CausalLm`] hands it to autodiff. The price is one more
//! product with the head (the second pass recomputes each tile's logits).

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Int, Tensor};
use wegeft::precision::autocast;

use crate::vocab_matrix::VocabMatrix;

/// Logits one tile holds at most (16 MiB of f32).
const TILE_LOGITS: usize = 1 << 22;

/// The weighted cross-entropy `Σₙ wₙ·(log Σᵥ exp(hₙ·mᵥ) − hₙ·m_{tₙ})` of hidden states `h`
/// (`[n, width]`) against targets `t` with weights `w` (`[n]`; 0 leaves a position out), over
/// the head's rows `m`; with `gradient`, also its gradient with respect to `h`, in f32.
pub fn next_token_loss<B: Backend>(
    head: &VocabMatrix<B>,
    hidden: Tensor<B, 2>,
    targets: Tensor<B, 1, Int>,
    weights: Tensor<B, 1>,
    gradient: bool,
) -> (Tensor<B, 1>, Option<Tensor<B, 2>>) {
    let tile = TILE_LOGITS / hidden.dims()[0].max(1);
    in_tiles(head, hidden, targets, weights, gradient, tile)
}

/// [`next_token_loss`] with tiles of `tile` vocabulary rows.
fn in_tiles<B: Backend>(
    head: &VocabMatrix<B>,
    hidden: Tensor<B, 2>,
    targets: Tensor<B, 1, Int>,
    weights: Tensor<B, 1>,
    gradient: bool,
    tile: usize,
) -> (Tensor<B, 1>, Option<Tensor<B, 2>>) {
    let [n, _] = hidden.dims();
    let (vocab, device) = (head.vocab(), hidden.device());
    let tile = tile.clamp(1, vocab);
    let tiles = || (0..vocab).step_by(tile).map(move |start| start..(start + tile).min(vocab));
    let x = autocast(hidden.clone(), head.dtype());
    let logits = |rows: Tensor<B, 2>| autocast(x.clone().matmul(rows.transpose()), DType::F32);

    // Pass 1: log Σᵥ exp, kept as a running maximum and a sum scaled to it.
    let mut max = Tensor::<B, 2>::full([n, 1], f32::NEG_INFINITY, &device);
    let mut sum = Tensor::<B, 2>::zeros([n, 1], &device);
    for range in tiles() {
        let logits = logits(head.tile(range, &device));
        let new_max = max.clone().max_pair(logits.clone().max_dim(1));
        sum = sum * (max - new_max.clone()).exp() + (logits - new_max.clone()).exp().sum_dim(1);
        max = new_max;
    }
    let log_sum = sum.log() + max;
    let targets = autocast(head.rows(targets), DType::F32);
    let picked = (autocast(hidden, DType::F32) * targets.clone()).sum_dim(1);
    let weights = weights.reshape([n, 1]);
    let loss = ((log_sum.clone() - picked) * weights.clone()).sum();
    if !gradient {
        return (loss, None);
    }

    // Pass 2: ∂/∂hₙ = wₙ·(Σᵥ softmaxᵥ·mᵥ − m_{tₙ}).
    let mut expected = Tensor::<B, 2>::zeros(targets.dims(), &device);
    for range in tiles() {
        let rows = head.tile(range, &device);
        let probabilities = (logits(rows.clone()) - log_sum.clone()).exp();
        expected = expected + autocast(autocast(probabilities, rows.dtype()).matmul(rows), DType::F32);
    }
    (loss, Some((expected - targets) * weights))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use burn::backend::Flex;
    use burn::tensor::{Int, Tensor, TensorData};
    use wegeft::io::read_safetensors;
    use wegeft::Injector;

    use super::in_tiles;
    use crate::gguf::{hf_weights_packed, GgufFile};
    use crate::{Decoder, DecoderConfig};

    /// Against PyTorch's cross-entropy and autograd (`make_next_token_loss_fixture.py`), for the
    /// f32 `lm_head` and the Q8_0 token embedding kept packed, in one tile, in tiles that do not
    /// divide the vocabulary, and one row at a time.
    #[test]
    fn the_tiled_loss_and_gradient_match_pytorch_on_a_dense_and_a_packed_head() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let golden = read_safetensors(&fixtures.join("next_token_loss.safetensors")).unwrap();
        let device = Default::default();
        let tensor = |name: &str| golden[name].clone();
        let hidden = tensor("hidden");
        let n = hidden.shape[0];
        let hidden = Tensor::<Flex, 2>::from_data(TensorData::new(hidden.values, hidden.shape), &device);
        let targets: Vec<i64> = tensor("targets").values.iter().map(|&t| t as i64).collect();
        let targets = Tensor::<Flex, 1, Int>::from_data(TensorData::new(targets, [n]), &device);
        let weights = Tensor::<Flex, 1>::from_data(TensorData::new(tensor("weights").values, [n]), &device);

        // The fixture's GGUF has no tokenizer, so not through `load_base`.
        let file = GgufFile::open(fixtures.join("tiny_llama.gguf")).unwrap();
        let config = DecoderConfig::from_gguf(&file).unwrap();
        let model = Decoder::<Flex>::load(&config, hf_weights_packed(&file, &config).unwrap(), Injector::none(), &device).unwrap();
        assert!(model.embed_tokens.packed.is_some() && model.lm_head.as_ref().is_some_and(|head| head.packed.is_none()));
        for (name, head) in [("lm_head", model.lm_head.as_ref().unwrap()), ("token_embd", &model.embed_tokens)] {
            let (loss, gradient) = (tensor(&format!("{name}.loss")).values[0], tensor(&format!("{name}.gradient")).values);
            for tile in [300, 64, 7, 1] {
                let (ours, ours_gradient) = in_tiles(head, hidden.clone(), targets.clone(), weights.clone(), true, tile);
                let ours = ours.into_scalar();
                assert!((ours - loss).abs() <= 1e-5 * loss.abs(), "{name}, tiles of {tile}: loss {ours} vs {loss}");
                let ours_gradient = ours_gradient.unwrap().into_data().to_vec::<f32>().unwrap();
                let (diff, norm) = ours_gradient.iter().zip(&gradient).fold((0f32, 0f32), |(d, s), (a, b)| (d + (a - b).powi(2), s + b * b));
                assert!((diff / norm).sqrt() < 1e-5, "{name}, tiles of {tile}: gradient off by {}", (diff / norm).sqrt());
                let (without, none) = in_tiles(head, hidden.clone(), targets.clone(), weights.clone(), false, tile);
                assert!(none.is_none() && (without.into_scalar() - ours).abs() <= 1e-6 * ours.abs());
            }
        }
    }
}
