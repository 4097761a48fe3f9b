//! Accuracy of a model on a decoded split, with its throughput.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Instant;

use burn::data::dataloader::DataLoader;
use burn::tensor::backend::Backend;
use burn::tensor::ElementConversion;

use crate::data::{ImageBatcher, ImageDataset};
use wegeft::train::EpochLoader;
use crate::model::VisionTransformer;

/// Progress on stderr: one updating line on a terminal, a line per quarter otherwise.
struct Progress {
    terminal: bool,
    shown: usize,
}

impl Progress {
    fn show(&mut self, label: &str, seen: usize, total: usize) {
        // Under MPI every rank evaluates; rank 0 tells the progress.
        if wegeft::train::world().rank() != 0 {
            return;
        }
        if self.terminal {
            eprint!("\r{label}: {seen}/{total} images");
            if seen >= total {
                eprintln!();
            }
            let _ = std::io::stderr().flush();
        } else if 4 * seen / total.max(1) > self.shown {
            self.shown = 4 * seen / total.max(1);
            eprintln!("{label}: {seen}/{total} images");
        }
    }
}

/// What an evaluation measured.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub struct Evaluation {
    /// Top-1 accuracy in percent.
    pub accuracy: f64,
    /// Images evaluated.
    pub images: usize,
    /// Images per second (forward only).
    pub images_per_second: f64,
}

/// Top-1 accuracy of `model` on `data`, in order; progress goes to stderr under `label`.
/// Non-finite logits are an error, not a prediction.
pub fn evaluate<B: Backend>(
    model: &VisionTransformer<B>,
    data: Arc<ImageDataset>,
    batcher: ImageBatcher,
    batch_size: usize,
    device: &B::Device,
    label: &str,
) -> crate::Result<Evaluation> {
    let loader = EpochLoader::<B, _, _>::sequential(data, batcher, batch_size, device.clone());
    let total = loader.num_items();
    let start = Instant::now();
    let (mut correct, mut seen) = (0usize, 0usize);
    let mut progress = Progress {
        terminal: std::io::stderr().is_terminal(),
        shown: 0,
    };
    for batch in loader.iter() {
        let logits = model.forward(batch.images);
        let size = batch.targets.dims()[0];
        let non_finite = logits.clone().is_nan().any().into_scalar().elem::<bool>() || logits.clone().is_inf().any().into_scalar().elem::<bool>();
        if non_finite {
            return Err(crate::VisionError::NonFiniteLogits { label: label.into(), first: seen, last: seen + size });
        }
        let predicted = logits.argmax(1).flatten::<1>(0, 1);
        let hits = predicted.equal(batch.targets.clone()).int().sum().into_scalar();
        correct += hits.elem::<i64>().max(0) as usize;
        seen += size;
        progress.show(label, seen, total);
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(Evaluation {
        accuracy: 100.0 * correct as f64 / seen.max(1) as f64,
        images: seen,
        images_per_second: seen as f64 / seconds.max(1e-9),
    })
}
