//! Stochastic depth: drops a residual branch per sample while training.

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use wegeft::precision::autocast;

/// Zeroes a sample's branch with probability `prob` and rescales survivors; identity at inference.
#[derive(Module, Clone, Debug)]
pub struct DropPath {
    /// Drop probability.
    pub prob: f64,
}

impl DropPath {
    /// Applies stochastic depth to a branch output `[B, N, D]`.
    pub fn forward<B: Backend>(&self, branch: Tensor<B, 3>) -> Tensor<B, 3> {
        if self.prob == 0.0 || !B::ad_enabled(&branch.device()) {
            return branch;
        }
        let keep = 1.0 - self.prob;
        let batch = branch.dims()[0];
        let mask = Tensor::<B, 3>::random([batch, 1, 1], Distribution::Bernoulli(keep), &branch.device());
        let dtype = branch.dtype();
        branch * autocast(mask.div_scalar(keep), dtype)
    }
}
