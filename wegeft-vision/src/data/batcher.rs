//! Stacks decoded images into a normalised `[B, 3, H, W]` batch with its labels.

use burn::data::dataloader::batcher::Batcher;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use crate::config::Normalization;
use crate::data::ImageItem;

/// A batch ready for the model.
#[derive(Clone, Debug)]
pub struct ImageBatch<B: Backend> {
    /// Normalised images `[B, 3, H, W]`.
    pub images: Tensor<B, 4>,
    /// Labels `[B]`.
    pub targets: Tensor<B, 1, Int>,
}

/// Normalises with the checkpoint's mean and std (pixels scaled to [0, 1] first).
#[derive(Clone, Debug)]
pub struct ImageBatcher {
    normalization: Normalization,
    size: usize,
}

impl ImageBatcher {
    /// A batcher for `size`×`size` images and the given normalisation.
    pub fn new(normalization: Normalization, size: usize) -> Self {
        Self { normalization, size }
    }
}

impl<B: Backend> Batcher<B, ImageItem, ImageBatch<B>> for ImageBatcher {
    fn batch(&self, items: Vec<ImageItem>, device: &B::Device) -> ImageBatch<B> {
        let plane = self.size * self.size;
        let mut values = vec![0f32; items.len() * 3 * plane];
        for (image, item) in values.chunks_mut(3 * plane).zip(&items) {
            for (pixel, rgb) in item.pixels.chunks_exact(3).enumerate() {
                for channel in 0..3 {
                    let value = rgb[channel] as f32 / 255.0;
                    let Normalization { mean, std } = &self.normalization;
                    image[channel * plane + pixel] = (value - mean[channel]) / std[channel];
                }
            }
        }
        let labels: Vec<i64> = items.iter().map(|item| item.label as i64).collect();
        let shape = [items.len(), 3, self.size, self.size];
        ImageBatch {
            images: Tensor::from_data(TensorData::new(values, shape), device),
            targets: Tensor::from_data(TensorData::new(labels, [items.len()]), device),
        }
    }
}
