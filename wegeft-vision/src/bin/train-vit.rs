//! Fine-tunes a ViT on VTAB-1k-style tasks: one task or a whole suite, one or several methods,
//! optionally with the lr × weight-decay search on train800 → val200. Without arguments it runs
//! the CPU demo: DINOv2 ViT-S/14, WeGeFT, the offline suite's `cats_dogs` task (CIFAR-10's cats and dogs).

use std::path::{Path, PathBuf};

use burn::tensor::backend::AutodiffBackend;
use clap::Parser;
use wegeft::io::write_json;
use wegeft::Precision;
use wegeft_backend::{asset_dir, BackendArgs, BackendJob, RunArgs};
use wegeft_vision::assets::{DINOV2_VITS14, VTAB_SUITE};
use wegeft_vision::train::artifacts::load_results;
use wegeft_vision::train::{self, markdown_report, suite_tasks, Method, Preset, RunResults, TrainConfig};
use wegeft_vision::{Result, VisionError, VitConfig};

#[derive(Parser, Clone)]
#[command(about = "Fine-tune a ViT on VTAB-1k-style tasks (WeGeFT, LoRA, linear probe, full)")]
struct Args {
    /// One task directory (VTAB-1k layout: train800.txt, val200.txt, train800val200.txt, test.txt).
    #[arg(long, conflicts_with_all = ["suite", "tasks"], value_parser = wegeft_backend::parse::utf8_path)]
    task: Option<PathBuf>,
    /// A suite directory: each sub-directory with a train800.txt is a task
    /// [default: $WEGEFT_CACHE/assets/vtab, made by `cargo xtask assets vtab`].
    #[arg(long, value_parser = wegeft_backend::parse::utf8_path)]
    suite: Option<PathBuf>,
    /// Only these tasks of the suite (comma-separated) [demo default: cats_dogs].
    #[arg(long, value_delimiter = ',')]
    tasks: Vec<String>,
    /// Methods to run (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "wegeft")]
    methods: Vec<Method>,
    /// The hyper-parameters the other flags override.
    #[arg(long, value_enum, default_value_t = Preset::Demo)]
    preset: Preset,
    /// Adapter rank [default: WeGeFT 16, LoRA and DoRA 8, VeRA 256].
    #[arg(long, value_parser = wegeft_backend::parse::at_least_one)]
    rank: Option<usize>,
    /// Layer-name suffixes to adapt (comma-separated) [default: attn.proj].
    #[arg(long, value_delimiter = ',')]
    targets: Vec<String>,
    #[arg(long, value_parser = wegeft_backend::parse::at_least_one)]
    epochs: Option<usize>,
    #[arg(long)]
    warmup_epochs: Option<usize>,
    #[arg(long, value_parser = wegeft_backend::parse::positive)]
    lr: Option<f64>,
    #[arg(long, value_parser = wegeft_backend::parse::non_negative)]
    weight_decay: Option<f64>,
    /// Square input side (a multiple of the patch size, 14 for DINOv2).
    #[arg(long, value_parser = wegeft_backend::parse::at_least_one)]
    image_size: Option<usize>,
    #[arg(long, value_parser = wegeft_backend::parse::at_least_one)]
    batch_size: Option<usize>,
    #[arg(long, value_parser = wegeft_backend::parse::rate)]
    drop_path: Option<f64>,
    #[arg(long)]
    seed: Option<u64>,
    /// Precision of the frozen backbone's linear layers: half precision halves their memory and
    /// runs their matmuls on a GPU's half-precision units; the adapter, the head and the
    /// optimizer stay f32 (f16 scales the loss).
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    precision: Precision,
    /// Backbone checkpoint (timm-layout safetensors) [default: the converted DINOv2 ViT-S/14].
    #[arg(long, value_parser = wegeft_backend::parse::utf8_path)]
    checkpoint: Option<PathBuf>,
    /// `--out` is the parent of the runs, `<out>/<task>/<method>/`, and of the suite report
    /// `<out>/summary.md` [default: runs].
    #[command(flatten)]
    run: RunArgs,
    /// Pick lr and weight decay on train800 → val200 first (the paper's grid unless narrowed).
    #[arg(long)]
    search: bool,
    /// Epochs of each search run.
    #[arg(long, default_value_t = 50, value_parser = wegeft_backend::parse::at_least_one)]
    search_epochs: usize,
    /// Learning rates of the search (comma-separated) [default: the paper's].
    #[arg(long, value_delimiter = ',', value_parser = wegeft_backend::parse::positive)]
    lr_grid: Vec<f64>,
    /// Weight decays of the search (comma-separated) [default: the paper's].
    #[arg(long, value_delimiter = ',', value_parser = wegeft_backend::parse::non_negative)]
    wd_grid: Vec<f64>,
    /// Train nothing: collect the `results.json` of every run under --out into summary.md.
    #[arg(long)]
    report: bool,
    #[command(flatten)]
    backend: BackendArgs,
}

impl Args {
    fn out(&self) -> PathBuf {
        self.run.out_or("runs")
    }

    /// The run configuration of `task` with `method`: the preset, under the explicit flags.
    fn config(&self, task: &Path, method: Method) -> TrainConfig {
        let checkpoint = self.checkpoint.clone().unwrap_or_else(|| asset_dir().join(DINOV2_VITS14));
        let base = TrainConfig::new(task.to_path_buf(), VitConfig::dinov2_small(0))
            .with_checkpoint(Some(checkpoint))
            .with_preset(self.preset)
            .with_method(method)
            .with_rank(self.rank);
        TrainConfig {
            targets: if self.targets.is_empty() { base.targets.clone() } else { self.targets.clone() },
            epochs: self.epochs.unwrap_or(base.epochs),
            warmup_epochs: self.warmup_epochs.unwrap_or(base.warmup_epochs),
            lr: self.lr.unwrap_or(base.lr),
            weight_decay: self.weight_decay.unwrap_or(base.weight_decay),
            image_size: self.image_size.unwrap_or(base.image_size),
            batch_size: self.batch_size.unwrap_or(base.batch_size),
            drop_path: self.drop_path.unwrap_or(base.drop_path),
            seed: self.seed.unwrap_or(base.seed),
            precision: (self.precision != Precision::F32).then_some(self.precision),
            ..base
        }
    }

    fn tasks(&self) -> Result<Vec<PathBuf>> {
        if let Some(task) = &self.task {
            return Ok(vec![task.clone()]);
        }
        let suite = self.suite.clone().unwrap_or_else(|| asset_dir().join(VTAB_SUITE));
        let only = if self.tasks.is_empty() && self.suite.is_none() && self.preset == Preset::Demo {
            vec!["cats_dogs".to_string()]
        } else {
            self.tasks.clone()
        };
        suite_tasks(&suite, &only)
    }
}

impl BackendJob for Args {
    type Output = Result<Vec<RunResults>>;
    const DATA_PARALLEL: bool = true;

    fn run<B: AutodiffBackend>(self, device: B::Device, _description: String) -> Self::Output {
        let devices = wegeft_backend::devices_like(&device, &self.backend.device_indices());
        let out = self.out();
        // Under MPI every rank trains; rank 0 alone writes what lies outside the runs.
        let writes = wegeft::train::world().rank() == 0;
        if self.report && !writes {
            return Ok(Vec::new());
        }
        if self.report {
            let all = collect_results(&out)?;
            write_report(&out, &all)?;
            return Ok(all);
        }
        if let Some(method) = self.methods.iter().enumerate().find_map(|(i, m)| self.methods[..i].contains(m).then_some(m)) {
            return Err(VisionError::InvalidConfig(format!("--methods names {method} twice: each method trains one run per task")));
        }
        let mut all = Vec::new();
        for task in self.tasks()? {
            for &method in &self.methods {
                let mut config = self.config(&task, method);
                let task_name = task.file_name().unwrap_or_default().to_string_lossy().into_owned();
                let run_dir = out.join(&task_name).join(method.to_string());
                if self.search {
                    let lrs = if self.lr_grid.is_empty() { train::PAPER_LR_GRID.to_vec() } else { self.lr_grid.clone() };
                    let wds = if self.wd_grid.is_empty() { train::PAPER_WD_GRID.to_vec() } else { self.wd_grid.clone() };
                    let found = train::search::<B>(&config, (&lrs, &wds), self.search_epochs, &run_dir.join("search"), self.run.session(), &devices)?;
                    println!("{task_name}/{method}: search chose lr {:e}, wd {:e}", found.lr, found.weight_decay);
                    config = config.with_lr(found.lr).with_weight_decay(found.weight_decay);
                    if writes {
                        write_json(&run_dir.join("search.json"), &found)?;
                    }
                }
                if let Some(results) = train::train::<B>(&config, &run_dir, self.run.session(), &devices)? {
                    println!(
                        "{task_name}/{method}: {} accuracy {:.2}% ({} images), merged {}, {} trainable params besides the head, {:.1} train img/s -> {}",
                        results.eval_split,
                        results.eval.accuracy,
                        results.eval.images,
                        results.merged_eval.map_or("-".into(), |m| format!("{:.2}%", m.accuracy)),
                        results.trainable_excluding_head(),
                        results.train_images_per_second,
                        run_dir.display()
                    );
                    all.push(results);
                }
            }
        }
        if !all.is_empty() && writes {
            // Every run under `out`, earlier invocations' included.
            write_report(&out, &collect_results(&out)?)?;
        }
        Ok(all)
    }
}

/// `summary.md` and `summary.json` in `out`, and the table on stdout.
fn write_report(out: &Path, all: &[RunResults]) -> Result<()> {
    let report = markdown_report(all);
    std::fs::create_dir_all(out).map_err(|source| VisionError::Io { path: out.into(), source })?;
    wegeft::io::write_atomic(&out.join("summary.md"), report.as_bytes())?;
    write_json(&out.join("summary.json"), &all)?;
    println!("\n{report}\nreport: {}", out.join("summary.md").display());
    Ok(())
}

/// The results of the finished runs under `out` (`<out>/<task>/<method>/results.json`).
fn collect_results(out: &Path) -> Result<Vec<RunResults>> {
    let runs = std::fs::read_dir(out).map_err(|source| VisionError::Io { path: out.into(), source })?;
    let mut all = Vec::new();
    for task in runs.flatten() {
        let Ok(methods) = std::fs::read_dir(task.path()) else { continue };
        for run in methods.flatten() {
            all.extend(load_results(&run.path())?);
        }
    }
    Ok(all)
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    args.backend.clone().run("train-vit", false, args)
}
