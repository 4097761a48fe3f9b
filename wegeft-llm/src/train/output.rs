//! What a step hands burn's `Learner`: the mean loss and the token counts its metrics read. No
//! logits: the loss is computed without them ([`super::next_token_loss`]).

use burn::backend::Flex;
use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Tensor};
use burn::train::metric::{Adaptor, ItemLazy, LossInput};

use super::perplexity::ScoredTokens;
use super::throughput::TokenCount;

/// One step's loss and tokens.
pub struct LmOutput<B: Backend> {
    /// The mean cross-entropy over the targets that count.
    pub loss: Tensor<B, 1>,
    /// Targets the loss averages over.
    pub targets: usize,
    /// Real (unpadded) tokens in the batch.
    pub tokens: usize,
}

impl<B: Backend> ItemLazy for LmOutput<B> {
    // On the host, as burn-train's outputs are, so training and validation feed one metric.
    type ItemSync = LmOutput<Flex>;

    fn sync(self) -> LmOutput<Flex> {
        let loss = Tensor::from_data(self.loss.into_data(), &Default::default());
        LmOutput { loss, targets: self.targets, tokens: self.tokens }
    }
}

impl<B: Backend> Adaptor<LossInput<B>> for LmOutput<B> {
    fn adapt(&self) -> LossInput<B> {
        LossInput::new(self.loss.clone())
    }
}

impl<B: Backend> Adaptor<ScoredTokens> for LmOutput<B> {
    fn adapt(&self) -> ScoredTokens {
        ScoredTokens { loss: self.loss.clone().into_scalar().elem::<f64>(), targets: self.targets }
    }
}

impl<B: Backend> Adaptor<TokenCount> for LmOutput<B> {
    fn adapt(&self) -> TokenCount {
        TokenCount(self.tokens)
    }
}
