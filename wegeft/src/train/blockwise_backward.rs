//! The backward pass one block at a time, for layer-wise gradient checkpointing: the forward
//! keeps only each block's input, and the backward recomputes one block under autodiff, takes its
//! gradients given its output's, and moves down. A step then holds one block's activations
//! instead of every block's. Gradients of parameters several blocks share (WeGeFT's shared pair,
//! VeRA's matrices) are summed over the blocks.

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{DType, Tensor};

use super::LossScaler;
use crate::precision::autocast;

/// A module's gradients gathered block by block, from the top of the network down.
pub struct BlockwiseBackward<'a, B: AutodiffBackend, M: AutodiffModule<B>> {
    module: &'a M,
    scaler: Option<&'a LossScaler>,
    /// The scale the top's gradient is multiplied by (f16's loss scaling; 1 otherwise).
    scale: f64,
    grads: GradientsParams,
    _backend: std::marker::PhantomData<B>,
}

impl<'a, B: AutodiffBackend, M: AutodiffModule<B>> BlockwiseBackward<'a, B, M> {
    /// A backward pass for `module`'s parameters, through `scaler` where training scales its loss.
    pub fn new(module: &'a M, scaler: Option<&'a LossScaler>) -> Self {
        let scale = scaler.map_or(1.0, LossScaler::scale);
        Self { module, scaler, scale, grads: GradientsParams::new(), _backend: std::marker::PhantomData }
    }

    /// The backward of the top, `loss` (computed from `input`, a tracked leaf): its parameters'
    /// gradients, and `input`'s gradient, returned for the block below.
    pub fn top<const D: usize>(&mut self, loss: Tensor<B, 1>, input: &Tensor<B, D>) -> Tensor<B::InnerBackend, D> {
        let grads = loss.mul_scalar(self.scale).backward();
        let below = input.grad(&grads).unwrap_or_else(|| input.clone().inner().zeros_like());
        self.add(GradientsParams::from_grads(grads, self.module));
        below
    }

    /// The backward of one recomputed block, whose `output` has the gradient `output_grad`: its
    /// parameters' gradients, and the gradient of its `input` (a tracked leaf), returned for
    /// the block below.
    pub fn block<const D: usize>(&mut self, output: Tensor<B, D>, output_grad: Tensor<B::InnerBackend, D>, input: &Tensor<B, D>) -> Tensor<B::InnerBackend, D> {
        let grads = surrogate(output, output_grad).backward();
        let below = input.grad(&grads).unwrap_or_else(|| input.clone().inner().zeros_like());
        self.add(GradientsParams::from_grads(grads, self.module));
        below
    }

    /// The gradients of every block, summed (and divided back by the loss scale).
    pub fn finish(self) -> GradientsParams {
        match self.scaler {
            Some(scaler) => scaler.unscale(self.grads, self.scale, self.module),
            None => self.grads,
        }
    }

    fn add(&mut self, more: GradientsParams) {
        let mut sum = Sum { total: &mut self.grads, more, _backend: std::marker::PhantomData::<B> };
        self.module.visit(&mut sum);
    }
}

/// `Σ y·g`, whose gradient at `y` is exactly `g`: how a gradient computed outside autodiff (a
/// block's output's, a frozen head's loss's) enters it. Taken in f32, so that f16 training's loss
/// scale multiplies `g` before the cast back to `y`'s precision.
pub fn surrogate<B: AutodiffBackend, const D: usize>(y: Tensor<B, D>, g: Tensor<B::InnerBackend, D>) -> Tensor<B, 1> {
    let g = Tensor::<B, D>::from_inner(autocast(g, DType::F32));
    (autocast(y, DType::F32) * g).sum()
}

/// Adds each parameter's gradient in `more` to its gradient in `total`.
struct Sum<'a, B> {
    total: &'a mut GradientsParams,
    more: GradientsParams,
    _backend: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Sum<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let Some(grad) = self.more.remove::<B::InnerBackend, D>(param.id) else { return };
        let sum = match self.total.remove::<B::InnerBackend, D>(param.id) {
            Some(total) => total + grad,
            None => grad,
        };
        self.total.register::<B::InnerBackend, D>(param.id, sum);
    }
}
