//! Linear warmup then cosine decay, per iteration (the paper's VTAB-1k recipe: 10 warmup epochs
//! of 100, warmup from 1e-7, cosine down to 1e-6). burn's composed scheduler multiplies
//! schedules rather than chaining them, hence this.

use burn::lr_scheduler::LrScheduler;
use burn::tensor::backend::Backend;
use burn::optim::LearningRate;

/// `warmup_lr → base_lr` linearly over `warmup` steps, then `base_lr → min_lr` along a cosine
/// until `total` steps (and `min_lr` after).
#[derive(Clone, Debug)]
pub struct WarmupCosine {
    base_lr: LearningRate,
    warmup_lr: LearningRate,
    min_lr: LearningRate,
    warmup: usize,
    total: usize,
    /// Steps taken so far; the scheduler's whole state.
    steps: usize,
}

impl WarmupCosine {
    /// A schedule over `total` steps whose first `warmup` ramp up.
    pub fn new(base_lr: LearningRate, warmup: usize, total: usize) -> Self {
        Self {
            base_lr,
            warmup_lr: base_lr.min(1e-7),
            min_lr: base_lr.min(1e-6),
            warmup: warmup.min(total),
            total: total.max(1),
            steps: 0,
        }
    }

    /// The rate at step `step` (0-based).
    pub fn at(&self, step: usize) -> LearningRate {
        if step < self.warmup {
            return self.warmup_lr + (self.base_lr - self.warmup_lr) * step as f64 / self.warmup as f64;
        }
        let span = (self.total - self.warmup).max(1) as f64;
        let progress = ((step - self.warmup) as f64 / span).min(1.0);
        self.min_lr + 0.5 * (self.base_lr - self.min_lr) * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

impl LrScheduler for WarmupCosine {
    type Record<B: Backend> = usize;

    fn step(&mut self) -> LearningRate {
        let lr = self.at(self.steps);
        self.steps += 1;
        lr
    }

    fn to_record<B: Backend>(&self) -> usize {
        self.steps
    }

    fn load_record<B: Backend>(mut self, steps: usize) -> Self {
        self.steps = steps;
        self
    }
}
