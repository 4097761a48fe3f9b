//! A data loader whose epoch `e` depends only on (seed, e): the shuffle order, and the backend's
//! random draws (dropout, drop_path) through a reseed at the start of the epoch. That is what
//! makes a resumed run retrace the interrupted one exactly (burn's own loader restarts its
//! shuffle stream on resume).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::data::dataset::Dataset;
use burn::tensor::backend::Backend;

use crate::train::SplitMix64;

/// Batches of `O` made from a dataset of `I`, shuffled per epoch when a seed is given.
pub struct EpochLoader<B: Backend, I, O> {
    dataset: Arc<dyn Dataset<I>>,
    indices: Arc<[usize]>,
    batcher: Arc<dyn Batcher<B, I, O>>,
    batch_size: usize,
    shuffle_seed: Option<u64>,
    /// Mixed into the backend's seed, so MPI ranks draw their own dropout masks (0 on rank 0).
    rank_salt: u64,
    /// The epoch the next `iter()` serves (shared by device copies).
    epoch: Arc<AtomicU64>,
    device: B::Device,
}

impl<B: Backend, I, O> Clone for EpochLoader<B, I, O> {
    fn clone(&self) -> Self {
        Self {
            dataset: self.dataset.clone(),
            indices: self.indices.clone(),
            batcher: self.batcher.clone(),
            batch_size: self.batch_size,
            shuffle_seed: self.shuffle_seed,
            rank_salt: self.rank_salt,
            epoch: self.epoch.clone(),
            device: self.device.clone(),
        }
    }
}

impl<B: Backend, I, O> EpochLoader<B, I, O> {
    /// In-order batches (evaluation).
    pub fn sequential<D, Bt>(dataset: Arc<D>, batcher: Bt, batch_size: usize, device: B::Device) -> Self
    where
        D: Dataset<I> + 'static,
        Bt: Batcher<B, I, O> + 'static,
    {
        let indices = (0..dataset.len()).collect();
        Self {
            dataset,
            indices,
            batcher: Arc::new(batcher),
            batch_size: batch_size.max(1),
            shuffle_seed: None,
            rank_salt: 0,
            epoch: Arc::new(AtomicU64::new(0)),
            device,
        }
    }

    /// The shard of every batch that each of `workers` data-parallel workers takes: the batch
    /// must split evenly, so the global batch stays what the run asked for. The data is cut to a
    /// multiple of `workers` (the last items), so every worker's shard, and so its step count, is
    /// the same: workers that ran out early would leave the others stepping alone.
    pub fn sharded(mut self, workers: usize) -> crate::Result<Self> {
        if !self.batch_size.is_multiple_of(workers) {
            let problem = format!("a batch of {} does not split evenly over {workers} devices", self.batch_size);
            return Err(crate::PeftError::InvalidConfig(problem));
        }
        let kept = self.indices.len() / workers * workers;
        if kept == 0 {
            let problem = format!("{} training items cannot be shared by {workers} devices", self.indices.len());
            return Err(crate::PeftError::InvalidConfig(problem));
        }
        self.indices = self.indices[..kept].into();
        self.batch_size /= workers;
        Ok(self)
    }

    /// Rank `rank`'s part of a loader [`Self::sharded`] over every rank's workers: the `rank`-th
    /// of `ranks` contiguous runs of shards, which its own workers then split as on one process.
    /// Worker `w` of all ranks so trains on the shard the `w`-th device would in one process.
    /// Each rank draws its own masks (a rank-salted seed), still a function of (seed, epoch).
    pub fn rank_part(mut self, rank: usize, ranks: usize) -> Self {
        let part = self.indices.len() / ranks.max(1);
        self.indices = self.indices[rank * part..(rank + 1) * part].into();
        self.rank_salt = (rank as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self
    }

    /// Optimizer steps one epoch takes (each worker takes as many, on its own shard).
    pub fn steps_per_epoch(&self, workers: usize) -> usize {
        (self.indices.len() / workers).div_ceil(self.batch_size)
    }

    /// Shuffled batches; the first `iter()` serves epoch `first_epoch` (0 for a fresh run, the
    /// number of finished epochs for a resumed one).
    pub fn shuffled(mut self, seed: u64, first_epoch: usize) -> Self {
        self.shuffle_seed = Some(seed);
        self.epoch = Arc::new(AtomicU64::new(first_epoch as u64));
        self
    }
}

impl<B: Backend, I: Send + Sync + 'static, O: Send + 'static> DataLoader<B, O> for EpochLoader<B, I, O> {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<O> + 'a> {
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst);
        let mut order = self.indices.to_vec();
        if let Some(seed) = self.shuffle_seed {
            let epoch_seed = seed ^ epoch.wrapping_mul(0xA24B_AED4_963E_E407);
            SplitMix64::new(epoch_seed).shuffle(&mut order);
            B::seed(&self.device, epoch_seed ^ self.rank_salt);
        }
        Box::new(EpochIter { loader: self, order, position: 0 })
    }

    fn num_items(&self) -> usize {
        self.indices.len()
    }

    fn to_device(&self, device: &B::Device) -> Arc<dyn DataLoader<B, O>> {
        let mut loader = self.clone();
        loader.device = device.clone();
        Arc::new(loader)
    }

    /// A worker's shard: its own epoch counter (each shard's `iter()` is one epoch), starting
    /// where this loader stands.
    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<B, O>> {
        let mut loader = self.clone();
        loader.indices = self.indices[start..end.min(self.indices.len())].into();
        loader.epoch = Arc::new(AtomicU64::new(self.epoch.load(Ordering::SeqCst)));
        Arc::new(loader)
    }
}

struct EpochIter<'a, B: Backend, I, O> {
    loader: &'a EpochLoader<B, I, O>,
    order: Vec<usize>,
    position: usize,
}

impl<B: Backend, I, O> Iterator for EpochIter<'_, B, I, O> {
    type Item = O;

    fn next(&mut self) -> Option<O> {
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

impl<B: Backend, I, O> DataLoaderIterator<O> for EpochIter<'_, B, I, O> {
    fn progress(&self) -> Progress {
        Progress::new(self.position, self.order.len())
    }
}
