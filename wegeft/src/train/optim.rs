//! AdamW without weight decay on vector-like parameters (biases, norms, LayerScale, class
//! token), as timm's parameter groups do: decaying a LayerNorm gain towards 0 is not
//! regularisation. burn's AdamW decays every parameter it steps, so two run side by side.
//!
//! With several workers (burn's multi-device Learner), the gradients arrive summed over the
//! workers; each worker's loss is the mean over its shard of the global batch, so dividing by the
//! number of workers gives the gradient of the global batch's mean loss: training on n devices
//! takes the steps one device would take on the whole batch. Across ranks (MPI), each step
//! first sums the gradients over the ranks ([`crate::train::replicas`]), and the workers counted
//! are every rank's.

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, GradientsParams, MultiGradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;
use burn::optim::LearningRate;
use std::sync::Arc;

use crate::train::replicas::{sum_gradients, StepGradients};
use crate::train::Collective;

type AdaptorRecord<M, B> = <OptimizerAdaptor<AdamW, M, B> as Optimizer<M, B>>::Record;

/// Two AdamW instances: one with the configured weight decay, one with none.
#[derive(Clone)]
pub struct SelectiveDecayAdamW<M: AutodiffModule<B>, B: AutodiffBackend> {
    decayed: OptimizerAdaptor<AdamW, M, B>,
    undecayed: OptimizerAdaptor<AdamW, M, B>,
    /// Data-parallel workers whose gradients are summed into each step, over all ranks.
    workers: usize,
    /// The ranks whose gradients each step sums; `None` in a single process.
    world: Option<Arc<dyn Collective>>,
}

impl<M: AutodiffModule<B>, B: AutodiffBackend> SelectiveDecayAdamW<M, B> {
    /// PyTorch's AdamW defaults (β 0.9/0.999, ε 1e-8) with `weight_decay` on matrices only.
    pub fn new(weight_decay: f64) -> Self {
        let config = |decay: f64| AdamWConfig::new().with_epsilon(1e-8).with_weight_decay(decay as f32);
        Self {
            decayed: config(weight_decay).init(),
            undecayed: config(0.0).init(),
            workers: 1,
            world: None,
        }
    }

    /// For gradients summed over `workers` data-parallel workers: each step averages them.
    pub fn with_workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// Sums each step's gradients over the ranks of `world` first (nothing to do for one rank).
    pub fn with_world(mut self, world: Arc<dyn Collective>) -> Self {
        self.world = (world.size() > 1).then_some(world);
        self
    }

    /// Moves the gradients of vector-like parameters out of `grads` and into the returned set,
    /// averaging every gradient over the workers on the way.
    fn split(&self, module: &M, grads: &mut GradientsParams) -> GradientsParams {
        let mut split = SplitGradients {
            all: grads,
            vectors: GradientsParams::new(),
            scale: 1.0 / self.workers as f64,
        };
        module.visit(&mut split);
        split.vectors
    }
}

/// Moves the gradients of vector-like parameters (at most one dimension above 1) out of `all`,
/// scaling every gradient by `scale`.
struct SplitGradients<'a> {
    all: &'a mut GradientsParams,
    vectors: GradientsParams,
    scale: f64,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for SplitGradients<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let vector_like = param.val().dims().iter().filter(|&&d| d > 1).count() <= 1;
        // On one worker a matrix's gradient stays where it is: nothing to move or scale.
        if !vector_like && self.scale == 1.0 {
            return;
        }
        let Some(grad) = self.all.remove::<B::InnerBackend, D>(param.id) else { return };
        let grad = if self.scale == 1.0 { grad } else { grad.mul_scalar(self.scale) };
        let target = if vector_like { &mut self.vectors } else { &mut *self.all };
        target.register::<B::InnerBackend, D>(param.id, grad);
    }
}

impl<M: AutodiffModule<B>, B: AutodiffBackend> Optimizer<M, B> for SelectiveDecayAdamW<M, B> {
    type Record = (AdaptorRecord<M, B>, AdaptorRecord<M, B>);

    fn step(&mut self, lr: LearningRate, module: M, mut grads: GradientsParams) -> M {
        if let Some(world) = &self.world {
            sum_gradients(&**world, &module, StepGradients::Single(&mut grads));
        }
        let vectors = self.split(&module, &mut grads);
        let module = self.decayed.step(lr, module, grads);
        self.undecayed.step(lr, module, vectors)
    }

    /// Sharded multi-device steps: each device's gradients split the same way; burn's adaptors
    /// then sum every parameter's gradients on the device that owns its update.
    fn step_multi(&mut self, lr: LearningRate, module: M, mut grads: MultiGradientsParams) -> M {
        if let Some(world) = &self.world {
            sum_gradients(&**world, &module, StepGradients::Multi(&mut grads));
        }
        let vectors = MultiGradientsParams {
            grads: grads.grads.iter_mut().map(|(slot, device)| (self.split(&module, slot), *device)).collect(),
        };
        let module = self.decayed.step_multi(lr, module, grads);
        self.undecayed.step_multi(lr, module, vectors)
    }

    fn to_record(&self) -> Self::Record {
        (self.decayed.to_record(), self.undecayed.to_record())
    }

    fn load_record(self, (decayed, undecayed): Self::Record) -> Self {
        Self {
            decayed: self.decayed.load_record(decayed),
            undecayed: self.undecayed.load_record(undecayed),
            workers: self.workers,
            world: self.world,
        }
    }
}

