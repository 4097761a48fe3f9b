//! `--score`: how well each adapted layer's cluster maps find the object of a generated task,
//! next to two baselines that swap only the clustering head (the activations stay the trained
//! model's): φ as initialised before training, and W's first r principal directions.

use std::fmt::Write as _;
use std::path::Path;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Tensor};
use wegeft_vision::data::{load_object_mask, ImageBatch, ImageBatcher, ImageDataset, TaskInfo};
use wegeft_vision::explain::{clustering_head, cluster_maps_with, normalised, principal_head, ClusterScore, IouTally};
use wegeft_vision::train::{build_model, TrainConfig};
use wegeft_vision::{Result, VisionTransformer};

/// Images per forward pass.
const BATCH: usize = 16;

/// The heads compared, in `explain.json`'s order.
const HEADS: [(&str, &str); 3] = [
    ("trained", "C = W·φ with the run's trained φ"),
    ("random_phi", "C = W·φ with φ as the run's initialiser draws it (same seed), before training"),
    ("principal_w", "C = W's first r principal directions (top eigenvectors of its Gram matrix); weights only"),
];

/// `explain.json`.
#[derive(serde::Serialize)]
pub struct Report {
    run: String,
    task: String,
    split: String,
    images: usize,
    image_size: usize,
    rank: usize,
    threshold: f64,
    /// Mean share of object pixels: the object IoU of a map that covers the whole image.
    object_fraction: f64,
    heads: Vec<HeadReport>,
}

#[derive(serde::Serialize)]
struct HeadReport {
    head: &'static str,
    description: &'static str,
    layers: Vec<LayerReport>,
}

#[derive(serde::Serialize)]
struct LayerReport {
    layer: usize,
    /// ‖C − C₀‖ / ‖C₀‖ against the random-φ head C₀: how far training moved this head.
    change_from_init: f64,
    best_object: Best,
    best_background: Best,
    clusters: Vec<ClusterScore>,
}

#[derive(serde::Serialize)]
struct Best {
    cluster: usize,
    iou: f64,
}

impl LayerReport {
    fn new(layer: usize, change_from_init: f64, clusters: Vec<ClusterScore>) -> Self {
        let best = |iou: fn(&ClusterScore) -> f64| {
            let (cluster, score) = clusters.iter().enumerate().max_by(|a, b| iou(a.1).total_cmp(&iou(b.1))).expect("r ≥ 1 clusters");
            Best { cluster, iou: iou(score) }
        };
        Self { layer, change_from_init, best_object: best(|s| s.object_iou), best_background: best(|s| s.background_iou), clusters }
    }
}

/// Scores the maps of `files` (their masks beside them) at `layers`.
pub fn score<B: Backend>(
    run: &Path,
    config: &TrainConfig,
    task: &TaskInfo,
    model: &VisionTransformer<B>,
    files: &[(std::path::PathBuf, usize)],
    layers: &[usize],
    device: &B::Device,
) -> Result<Report> {
    let size = config.image_size;
    let masks = files.iter().map(|(path, _)| load_object_mask(path, size)).collect::<Result<Vec<_>>>()?;
    let initial = build_model::<B>(config, task, device)?;
    let mut heads: Vec<(usize, Tensor<B, 2>)> = Vec::new();
    for (name, _) in HEADS {
        for &layer in layers {
            let head = match name {
                "trained" => clustering_head(model, layer)?,
                "random_phi" => clustering_head(&initial, layer)?,
                _ => principal_head(model, layer, config.rank().unwrap_or_default())?,
            };
            heads.push((layer, head));
        }
    }
    let rank = heads[0].1.dims()[0];
    let norm = |t: Tensor<B, 2>| t.powf_scalar(2.0).sum().sqrt().into_scalar().elem::<f64>();
    let changes: Vec<f64> = (0..layers.len())
        .map(|i| {
            let (trained, initial) = (heads[i].1.clone(), heads[layers.len() + i].1.clone());
            norm(trained - initial.clone()) / norm(initial).max(f64::MIN_POSITIVE)
        })
        .collect();
    let data = ImageDataset::load(files, size)?;
    let batcher = ImageBatcher::new(config.vit.normalization.clone(), size);
    let mut tallies = vec![IouTally::default(); heads.len()];
    for start in (0..files.len()).step_by(BATCH) {
        let end = (start + BATCH).min(files.len());
        let items = (start..end).filter_map(|index| data.get(index)).collect();
        let batch: ImageBatch<B> = batcher.batch(items, device);
        for (tally, found) in tallies.iter_mut().zip(cluster_maps_with(model, batch.images, &heads)) {
            let maps: Vec<f32> = normalised(found.maps, size, size).into_data().convert::<f32>().to_vec().expect("f32 maps");
            tally.add(&maps, &masks[start..end]);
        }
        eprint!("\rscored {end}/{} images", files.len());
    }
    eprintln!();
    let object_fraction = masks.iter().map(|m| m.iter().filter(|&&o| o).count() as f64 / m.len() as f64).sum::<f64>() / masks.len() as f64;
    let mut tallies = tallies.into_iter();
    let heads = HEADS
        .iter()
        .map(|&(head, description)| HeadReport {
            head,
            description,
            layers: layers.iter().zip(&changes).zip(tallies.by_ref()).map(|((&layer, &change), tally)| LayerReport::new(layer, change, tally.scores())).collect(),
        })
        .collect();
    Ok(Report {
        run: run.display().to_string(),
        task: task.name.clone(),
        split: config.eval_split.to_string(),
        images: files.len(),
        image_size: size,
        rank,
        threshold: 0.5,
        object_fraction,
        heads,
    })
}

impl Report {
    /// A Markdown table: per layer, the best cluster's IoU with the object and the background
    /// under each head.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{} ({} images, r = {}): best IoU of a cluster mask (map ≥ 0.5) over the clusters; a mask covering the whole image scores {:.3} on the object\n\n",
            self.task, self.images, self.rank, self.object_fraction
        );
        out.push_str("| block | ‖C − C₀‖/‖C₀‖ | object: trained | object: random φ | object: principal W | background: trained | background: random φ | background: principal W |\n");
        out.push_str("|---|---|---|---|---|---|---|---|\n");
        for (index, layer) in self.heads[0].layers.iter().enumerate() {
            let cells = |pick: fn(&LayerReport) -> f64| self.heads.iter().map(|head| format!("{:.3}", pick(&head.layers[index]))).collect::<Vec<_>>().join(" | ");
            let _ = writeln!(out, "| {} | {:.3} | {} | {} |", layer.layer, layer.change_from_init, cells(|l| l.best_object.iou), cells(|l| l.best_background.iou));
        }
        out
    }
}
