//! Dynamic loss scaling for f16 training, as PyTorch's `GradScaler` does it: the loss is
//! multiplied by a large scale before the backward pass, so that small activation gradients do
//! not flush to zero in f16, and the parameter gradients are divided by it afterwards. A step
//! whose gradients overflowed is skipped and the scale halves; after a run of clean steps it
//! doubles again.

use std::sync::{Arc, Mutex};

use burn::module::{AutodiffModule, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor};

use crate::error::{PeftError, Result};
use crate::Precision;

/// The scaler's state, shared by the clones burn makes of a model (`Arc`), so a step's outcome
/// carries over to the next step whichever clone takes it.
#[derive(Clone, Debug)]
pub struct LossScaler {
    state: Arc<Mutex<ScaleState>>,
}

#[derive(Debug)]
struct ScaleState {
    scale: f64,
    clean_steps: usize,
    skipped_steps: usize,
}

impl LossScaler {
    /// PyTorch's defaults: 2¹⁶, halved on overflow, doubled after 2000 clean steps.
    const INITIAL_SCALE: f64 = 65536.0;
    const GROWTH_INTERVAL: usize = 2000;

    /// A scaler at PyTorch's initial scale.
    pub fn new() -> Self {
        Self::with_scale(Self::INITIAL_SCALE)
    }

    /// The scaler a run in `precision` with `workers` data-parallel workers needs: one for f16,
    /// none otherwise. f16 on several workers is refused: each worker would decide alone whether
    /// a step overflowed, and their summed gradients would mix skipped and taken steps.
    pub fn for_run(precision: Precision, workers: usize) -> Result<Option<Self>> {
        match (precision.needs_loss_scaling(), workers) {
            (false, _) => Ok(None),
            (true, 1) => Ok(Some(Self::new())),
            (true, _) => Err(PeftError::InvalidConfig(format!("{precision} training runs on one device (its loss scaling is per worker); use bf16 with several"))),
        }
    }

    /// A scaler starting at `scale`.
    pub fn with_scale(scale: f64) -> Self {
        Self { state: Arc::new(Mutex::new(ScaleState { scale, clean_steps: 0, skipped_steps: 0 })) }
    }

    /// The current scale.
    pub fn scale(&self) -> f64 {
        self.lock().scale
    }

    /// Steps skipped so far because their gradients overflowed.
    pub fn skipped_steps(&self) -> usize {
        self.lock().skipped_steps
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ScaleState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The gradients of `loss` for `module`'s parameters, computed through the scaled loss and
    /// divided back. When any of them is not finite, none are returned: burn's optimizers leave
    /// a parameter without a gradient, and its moments, as they are, so the step is skipped.
    pub fn backward<B: AutodiffBackend, M: AutodiffModule<B>>(&self, loss: Tensor<B, 1>, module: &M) -> GradientsParams {
        let scale = self.scale();
        let grads = GradientsParams::from_grads(loss.mul_scalar(scale).backward(), module);
        self.unscale(grads, scale, module)
    }

    /// Gradients taken through a loss multiplied by `scale` (this scaler's at the step's start),
    /// divided back; none when any of them is not finite, as [`Self::backward`].
    pub fn unscale<B: AutodiffBackend, M: AutodiffModule<B>>(&self, mut grads: GradientsParams, scale: f64, module: &M) -> GradientsParams {
        let mut unscale = Unscale { grads: &mut grads, factor: 1.0 / scale, probe: None };
        module.visit(&mut unscale);
        // One read for the whole step: 0·g is NaN exactly where g is infinite or NaN.
        let finite = unscale.probe.is_none_or(|probe| probe.into_scalar().elem::<f64>().is_finite());
        let mut state = self.lock();
        if finite {
            state.clean_steps += 1;
            if state.clean_steps == Self::GROWTH_INTERVAL {
                state.scale *= 2.0;
                state.clean_steps = 0;
            }
            grads
        } else {
            state.scale /= 2.0;
            state.clean_steps = 0;
            state.skipped_steps += 1;
            log::warn!("f16 gradients overflowed: step skipped, loss scale now {}", state.scale);
            GradientsParams::new()
        }
    }
}

impl Default for LossScaler {
    fn default() -> Self {
        Self::new()
    }
}

/// Divides each parameter's gradient by the scale and sums 0·gradient into one probe.
struct Unscale<'a, B: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    factor: f64,
    probe: Option<Tensor<B::InnerBackend, 1>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Unscale<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let id: ParamId = param.id;
        let Some(grad) = self.grads.remove::<B::InnerBackend, D>(id) else { return };
        let grad = grad.mul_scalar(self.factor);
        let zero = grad.clone().mul_scalar(0.0).sum().cast(burn::tensor::FloatDType::F32);
        self.probe = Some(match self.probe.take() {
            Some(probe) => probe + zero,
            None => zero,
        });
        self.grads.register::<B::InnerBackend, D>(id, grad);
    }
}

/// The gradients of `loss` for `module`'s parameters: through `scaler` where training scales
/// the loss (f16), a plain backward pass otherwise.
pub fn gradients<B: AutodiffBackend, M: AutodiffModule<B>>(loss: Tensor<B, 1>, module: &M, scaler: Option<&LossScaler>) -> GradientsParams {
    match scaler {
        Some(scaler) => scaler.backward(loss, module),
        None => GradientsParams::from_grads(loss.backward(), module),
    }
}
