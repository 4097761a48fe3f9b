//! The ViT as a classifier for burn's `Learner`: cross-entropy on the class-token logits.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};

use wegeft::train::gradients;

use crate::data::ImageBatch;
use crate::model::VisionTransformer;

impl<B: Backend> VisionTransformer<B> {
    /// Logits and cross-entropy loss of a batch.
    pub fn classify(&self, batch: ImageBatch<B>) -> ClassificationOutput<B> {
        let logits = self.forward(batch.images);
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits.clone(), batch.targets.clone());
        ClassificationOutput::new(loss, logits, batch.targets)
    }
}

impl<B: AutodiffBackend> TrainStep for VisionTransformer<B> {
    type Input = ImageBatch<B>;
    type Output = ClassificationOutput<B>;

    fn step(&self, batch: ImageBatch<B>) -> TrainOutput<ClassificationOutput<B>> {
        let item = self.classify(batch);
        let grads = gradients(item.loss.clone(), self, self.loss_scaler.as_ref());
        TrainOutput { grads, item }
    }
}

impl<B: Backend> InferenceStep for VisionTransformer<B> {
    type Input = ImageBatch<B>;
    type Output = ClassificationOutput<B>;

    fn step(&self, batch: ImageBatch<B>) -> ClassificationOutput<B> {
        self.classify(batch)
    }
}
