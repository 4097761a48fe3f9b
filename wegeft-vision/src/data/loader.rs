//! A data loader whose epoch `e` depends only on (seed, e): the shuffle order, and the backend's
//! random draws (drop_path) through a reseed at the start of the epoch. That is what makes a
//! resumed run retrace the interrupted one exactly.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::data::dataset::Dataset;
use burn::tensor::backend::Backend;

use crate::data::{ImageBatch, ImageBatcher, ImageDataset};
use wegeft::SplitMix64;

/// Batches of an [`ImageDataset`], shuffled per epoch when a seed is given.
pub struct EpochLoader<B: Backend> {
    dataset: Arc<ImageDataset>,
    indices: Arc<[usize]>,
    batcher: ImageBatcher,
    batch_size: usize,
    shuffle_seed: Option<u64>,
    /// The epoch the next `iter()` serves (shared by device copies).
    epoch: Arc<AtomicU64>,
    device: B::Device,
}

impl<B: Backend> Clone for EpochLoader<B> {
    fn clone(&self) -> Self {
        Self {
            dataset: self.dataset.clone(),
            indices: self.indices.clone(),
            batcher: self.batcher.clone(),
            batch_size: self.batch_size,
            shuffle_seed: self.shuffle_seed,
            epoch: self.epoch.clone(),
            device: self.device.clone(),
        }
    }
}

impl<B: Backend> EpochLoader<B> {
    /// In-order batches (evaluation).
    pub fn sequential(dataset: Arc<ImageDataset>, batcher: ImageBatcher, batch_size: usize, device: B::Device) -> Self {
        let indices = (0..dataset.len()).collect();
        Self {
            dataset,
            indices,
            batcher,
            batch_size: batch_size.max(1),
            shuffle_seed: None,
            epoch: Arc::new(AtomicU64::new(0)),
            device,
        }
    }

    /// Shuffled batches; the first `iter()` serves epoch `first_epoch` (0 for a fresh run, the
    /// number of finished epochs for a resumed one).
    pub fn shuffled(mut self, seed: u64, first_epoch: usize) -> Self {
        self.shuffle_seed = Some(seed);
        self.epoch = Arc::new(AtomicU64::new(first_epoch as u64));
        self
    }
}

impl<B: Backend> DataLoader<B, ImageBatch<B>> for EpochLoader<B> {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<ImageBatch<B>> + 'a> {
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst);
        let mut order = self.indices.to_vec();
        if let Some(seed) = self.shuffle_seed {
            let epoch_seed = seed ^ epoch.wrapping_mul(0xA24B_AED4_963E_E407);
            SplitMix64::new(epoch_seed).shuffle(&mut order);
            B::seed(&self.device, epoch_seed);
        }
        Box::new(EpochIter { loader: self, order, position: 0 })
    }

    fn num_items(&self) -> usize {
        self.indices.len()
    }

    fn to_device(&self, device: &B::Device) -> Arc<dyn DataLoader<B, ImageBatch<B>>> {
        let mut loader = self.clone();
        loader.device = device.clone();
        Arc::new(loader)
    }

    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<B, ImageBatch<B>>> {
        let mut loader = self.clone();
        loader.indices = self.indices[start..end.min(self.indices.len())].into();
        Arc::new(loader)
    }
}

struct EpochIter<'a, B: Backend> {
    loader: &'a EpochLoader<B>,
    order: Vec<usize>,
    position: usize,
}

impl<B: Backend> Iterator for EpochIter<'_, B> {
    type Item = ImageBatch<B>;

    fn next(&mut self) -> Option<ImageBatch<B>> {
        let end = (self.position + self.loader.batch_size).min(self.order.len());
        if self.position >= end {
            return None;
        }
        let items = self.order[self.position..end]
            .iter()
            .filter_map(|&index| self.loader.dataset.get(index))
            .collect();
        self.position = end;
        Some(self.loader.batcher.batch(items, &self.loader.device))
    }
}

impl<B: Backend> DataLoaderIterator<ImageBatch<B>> for EpochIter<'_, B> {
    fn progress(&self) -> Progress {
        Progress::new(self.position, self.order.len())
    }
}
