//! AdamW without weight decay on vector-like parameters (biases, norms, LayerScale, class
//! token), as timm's parameter groups do: decaying a LayerNorm gain towards 0 is not
//! regularisation. burn's AdamW decays every parameter it steps, so two run side by side.

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, GradientsParams, MultiGradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;
use burn::optim::LearningRate;

type AdaptorRecord<M, B> = <OptimizerAdaptor<AdamW, M, B> as Optimizer<M, B>>::Record;

/// Two AdamW instances: one with the configured weight decay, one with none.
#[derive(Clone)]
pub struct SelectiveDecayAdamW<M: AutodiffModule<B>, B: AutodiffBackend> {
    decayed: OptimizerAdaptor<AdamW, M, B>,
    undecayed: OptimizerAdaptor<AdamW, M, B>,
}

impl<M: AutodiffModule<B>, B: AutodiffBackend> SelectiveDecayAdamW<M, B> {
    /// PyTorch's AdamW defaults (β 0.9/0.999, ε 1e-8) with `weight_decay` on matrices only.
    pub fn new(weight_decay: f64) -> Self {
        let config = |decay: f64| AdamWConfig::new().with_epsilon(1e-8).with_weight_decay(decay as f32);
        Self {
            decayed: config(weight_decay).init(),
            undecayed: config(0.0).init(),
        }
    }
}

/// Moves the gradients of vector-like parameters (at most one dimension above 1) out of `all`.
struct VectorGradients<'a> {
    all: &'a mut GradientsParams,
    vectors: GradientsParams,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for VectorGradients<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let vector_like = param.val().dims().iter().filter(|&&d| d > 1).count() <= 1;
        if vector_like {
            if let Some(grad) = self.all.remove::<B::InnerBackend, D>(param.id) {
                self.vectors.register::<B::InnerBackend, D>(param.id, grad);
            }
        }
    }
}

impl<M: AutodiffModule<B>, B: AutodiffBackend> Optimizer<M, B> for SelectiveDecayAdamW<M, B> {
    type Record = (AdaptorRecord<M, B>, AdaptorRecord<M, B>);

    fn step(&mut self, lr: LearningRate, module: M, mut grads: GradientsParams) -> M {
        let mut split = VectorGradients {
            all: &mut grads,
            vectors: GradientsParams::new(),
        };
        module.visit(&mut split);
        let vectors = split.vectors;
        let module = self.decayed.step(lr, module, grads);
        self.undecayed.step(lr, module, vectors)
    }

    fn step_multi(&mut self, _lr: LearningRate, _module: M, _grads: MultiGradientsParams) -> M {
        unimplemented!("SelectiveDecayAdamW drives single-device training only")
    }

    fn to_record(&self) -> Self::Record {
        (self.decayed.to_record(), self.undecayed.to_record())
    }

    fn load_record(self, (decayed, undecayed): Self::Record) -> Self {
        Self {
            decayed: self.decayed.load_record(decayed),
            undecayed: self.undecayed.load_record(undecayed),
        }
    }
}

