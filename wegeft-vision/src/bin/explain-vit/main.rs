//! Shows what a WeGeFT run learned: for the first test images of its task, each adapted
//! `attn.proj`'s r token-cluster maps (see `wegeft_vision::explain`) as heat overlays and as
//! masks thresholded at 0.5, one PNG per image, and an `index.html` that shows them all.
//! `--score` measures them on a generated task's ground-truth masks against two baselines and
//! writes `explain.json`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::tensor::backend::AutodiffBackend;
use clap::Parser;
use image::{Rgb, RgbImage};
use wegeft_backend::{BackendArgs, BackendJob};
use wegeft_vision::data::{read_split, ImageBatch, ImageBatcher, ImageDataset};
use wegeft_vision::explain::{cluster_maps, normalised};
use wegeft_vision::train::load_trained;
use wegeft_vision::{Result, VisionError};

mod score;

#[derive(Parser, Clone)]
#[command(about = "Draw the token-cluster maps of a WeGeFT run's adapted attn.proj layers")]
struct Args {
    /// The run directory (`train-vit` output: config.json, head.safetensors, adapter/).
    run: PathBuf,
    /// Images of the run's evaluation split to draw (the first ones).
    #[arg(long, default_value_t = 4, value_parser = wegeft_backend::parse::at_least_one)]
    images: usize,
    /// Blocks whose `attn.proj` to map (comma-separated) [default: every adapted one].
    #[arg(long, value_delimiter = ',')]
    layers: Vec<usize>,
    /// Where the pictures go [default: <run>/explain].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also score the maps of this many evaluation images (a generated task's, which have object
    /// masks) by IoU against the object and the background, beside random-φ and principal-W
    /// baselines; writes `<out>/explain.json`.
    #[arg(long, num_args = 0..=1, default_missing_value = "200", value_parser = wegeft_backend::parse::at_least_one)]
    score: Option<usize>,
    #[command(flatten)]
    backend: BackendArgs,
}

/// Pixels between tiles.
const GAP: u32 = 2;

impl BackendJob for Args {
    type Output = Result<()>;

    fn run<B: AutodiffBackend>(self, device: B::Device, _description: String) -> Result<()> {
        let (config, task, model) = load_trained::<B::InnerBackend>(&self.run, &device)?;
        let layers = if self.layers.is_empty() { adapted_blocks(&model.adapters) } else { self.layers.clone() };
        if layers.is_empty() {
            return Err(VisionError::Explain(format!("{}: the run adapts no attn.proj layer", self.run.display())));
        }
        let files = read_split(&config.task_dir, config.eval_split, task.classes)?;
        let files = &files[..self.images.min(files.len())];
        let data = ImageDataset::load(files, config.image_size)?;
        let items: Vec<_> = (0..data.len()).filter_map(|index| data.get(index)).collect();
        let batcher = ImageBatcher::new(config.vit.normalization.clone(), config.image_size);
        let batch: ImageBatch<B::InnerBackend> = batcher.batch(items.clone(), &device);
        let size = config.image_size;
        let maps: Vec<Vec<f32>> = cluster_maps(&model, batch.images, &layers)?
            .into_iter()
            .map(|found| normalised(found.maps, size, size).into_data().convert::<f32>().to_vec().expect("f32 maps"))
            .collect();
        let rank = maps[0].len() / (items.len() * size * size);
        let out = self.out.clone().unwrap_or_else(|| self.run.join("explain"));
        std::fs::create_dir_all(&out).map_err(|source| VisionError::Io { path: out.clone(), source })?;
        let mut pictures = Vec::new();
        for (index, (item, (path, label))) in items.iter().zip(files).enumerate() {
            let per_image = size * size * rank;
            let rows: Vec<&[f32]> = maps.iter().map(|layer| &layer[index * per_image..(index + 1) * per_image]).collect();
            let picture = out.join(format!("image-{index}.png"));
            grid(&item.pixels, size, rank, &rows).save(&picture).map_err(|error| VisionError::Data {
                path: picture.clone(),
                line: None,
                reason: error.to_string(),
            })?;
            pictures.push((format!("image-{index}.png"), path.clone(), *label));
        }
        let html = index_page(&self.run, &task.name, &layers, rank, &pictures);
        wegeft::io::write_atomic(&out.join("index.html"), html.as_bytes())?;
        println!("{} images, blocks {layers:?}, {rank} clusters each -> {}", pictures.len(), out.join("index.html").display());
        if let Some(images) = self.score {
            let all = read_split(&config.task_dir, config.eval_split, task.classes)?;
            let report = score::score(&self.run, &config, &task, &model, &all[..images.min(all.len())], &layers, &device)?;
            wegeft::io::write_json(&out.join("explain.json"), &report)?;
            println!("{}", report.table());
            println!("-> {}", out.join("explain.json").display());
        }
        Ok(())
    }
}

/// The blocks whose `attn.proj` the adapter covers.
fn adapted_blocks<B: burn::tensor::backend::Backend>(bank: &wegeft::AdapterBank<B>) -> Vec<usize> {
    let Some(plan) = bank.plan() else { return Vec::new() };
    plan.layers
        .iter()
        .filter_map(|layer| layer.name.strip_prefix("blocks.")?.strip_suffix(".attn.proj")?.parse().ok())
        .collect()
}

/// One row per block: the image, its r heat overlays, then its r masks.
fn grid(pixels: &[u8], size: usize, rank: usize, rows: &[&[f32]]) -> RgbImage {
    let side = size as u32;
    let columns = 1 + 2 * rank as u32;
    let mut canvas = RgbImage::from_pixel(columns * (side + GAP), rows.len() as u32 * (side + GAP), Rgb([255, 255, 255]));
    for (row, maps) in rows.iter().enumerate() {
        let top = row as u32 * (side + GAP);
        for column in 0..columns {
            let left = column * (side + GAP);
            for y in 0..side {
                for x in 0..side {
                    let pixel = (y * side + x) as usize;
                    let original = [pixels[3 * pixel], pixels[3 * pixel + 1], pixels[3 * pixel + 2]];
                    let colour = match column as usize {
                        0 => original,
                        c if c <= rank => blend(original, heat(maps[(c - 1) * size * size + pixel])),
                        c => match maps[(c - 1 - rank) * size * size + pixel] >= 0.5 {
                            true => original,
                            false => original.map(|v| v / 4),
                        },
                    };
                    canvas.put_pixel(left + x, top + y, Rgb(colour));
                }
            }
        }
    }
    canvas
}

/// A blue → cyan → yellow → red scale for a value in [0, 1].
fn heat(value: f32) -> [u8; 3] {
    let channel = |centre: f32| ((1.5 - (4.0 * value - centre).abs()).clamp(0.0, 1.0) * 255.0) as u8;
    [channel(3.0), channel(2.0), channel(1.0)]
}

fn blend(a: [u8; 3], b: [u8; 3]) -> [u8; 3] {
    [0, 1, 2].map(|i| ((a[i] as u16 + b[i] as u16) / 2) as u8)
}

fn index_page(run: &Path, task: &str, layers: &[usize], rank: usize, pictures: &[(String, PathBuf, usize)]) -> String {
    let mut html = String::from("<!doctype html>\n<meta charset=\"utf-8\">\n");
    let _ = writeln!(html, "<title>WeGeFT token clusters: {}</title>", run.display());
    let _ = writeln!(html, "<h1>WeGeFT token clusters of {} ({task})</h1>", run.display());
    let _ = writeln!(
        html,
        "<p>One row per block ({}): the image, then the {rank} cluster maps C<sup>T</sup>X<sup>T</sup> of its \
         adapted <code>attn.proj</code> as heat (blue low, red high; bilinear, min-max normalised), then the same \
         maps thresholded at 0.5.</p>",
        layers.iter().map(|l| format!("block {l}")).collect::<Vec<_>>().join(", ")
    );
    for (file, source, label) in pictures {
        let _ = writeln!(html, "<h2>{} (label {label})</h2>\n<img src=\"{file}\" alt=\"clusters of {}\">", source.display(), source.display());
    }
    html
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    args.backend.clone().run("explain-vit", false, args)
}
