//! The VTAB-1k protocol: pick lr × weight decay on train800 → val200, then train the final model
//! on train800val200 and report the test split once.

use std::path::Path;

use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use crate::data::Split;
use crate::error::Result;
use wegeft::train::Session;

use crate::train::{train, RunResults, TrainConfig};

/// The paper's grid (GIFT visual-recognition configs).
pub const PAPER_LR_GRID: [f64; 6] = [1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3];
/// The paper's weight-decay grid.
pub const PAPER_WD_GRID: [f64; 4] = [0.01, 1e-3, 1e-4, 0.0];

/// A grid search and its outcome.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SearchResult {
    /// (lr, weight decay, val200 accuracy) per grid point.
    pub points: Vec<(f64, f64, f64)>,
    /// The chosen point (highest val200 accuracy; the first on ties).
    pub lr: f64,
    /// The chosen weight decay.
    pub weight_decay: f64,
}

/// Trains `config` on train800 for `epochs` at every grid point, scoring on val200; runs go to
/// `dir/lr{lr}-wd{wd}` (resumed or overwritten as `session` says; each runs to its end).
pub fn search<B: AutodiffBackend>(
    config: &TrainConfig,
    grid: (&[f64], &[f64]),
    epochs: usize,
    dir: &Path,
    session: Session,
    devices: &[B::Device],
) -> Result<SearchResult> {
    let (lrs, wds) = grid;
    let session = Session { stop_after: None, ..session };
    let mut points = Vec::new();
    for &lr in lrs {
        for &wd in wds {
            let point = TrainConfig {
                lr,
                weight_decay: wd,
                epochs,
                warmup_epochs: config.warmup_epochs.min(epochs / 2),
                train_split: Split::Train800,
                valid_split: Split::Val200,
                eval_split: Split::Val200,
                ..config.clone()
            };
            let run_dir = dir.join(format!("lr{lr:e}-wd{wd:e}"));
            let results: Option<RunResults> = train::<B>(&point, &run_dir, session, devices)?;
            let accuracy = results.map_or(0.0, |r| r.eval.accuracy);
            println!("search lr {lr:e} wd {wd:e}: val200 {accuracy:.2}%");
            points.push((lr, wd, accuracy));
        }
    }
    let best = points
        .iter()
        .copied()
        .fold(None, |best: Option<(f64, f64, f64)>, p| match best {
            Some(b) if b.2 >= p.2 => Some(b),
            _ => Some(p),
        })
        .expect("a non-empty grid");
    Ok(SearchResult {
        points,
        lr: best.0,
        weight_decay: best.1,
    })
}
