//! Fine-tunes a ViT on VTAB-1k-style tasks: one task or a whole suite, one or several methods,
//! optionally with the lr × weight-decay search on train800 → val200. Without arguments it runs
//! the CPU demo: DINOv2 ViT-S/14, WeGeFT, the offline suite's CIFAR-10 task.

use std::path::{Path, PathBuf};

use clap::Parser;
use wegeft_backend::{BackendArgs, BackendJob};
use wegeft_vision::assets::{asset_dir, DINOV2_VITS14, VTAB_SUITE};
use wegeft_vision::train::{self, markdown_report, suite_tasks, Method, RunResults, Session, TrainConfig};
use wegeft_vision::{Result, VitConfig};

#[derive(Parser, Clone)]
#[command(about = "Fine-tune a ViT on VTAB-1k-style tasks (WeGeFT, LoRA, linear probe, full)")]
struct Args {
    /// One task directory (VTAB-1k layout: train800.txt, val200.txt, train800val200.txt, test.txt).
    #[arg(long, conflicts_with = "suite")]
    task: Option<PathBuf>,
    /// A suite directory: each sub-directory with a train800.txt is a task
    /// [default: $WEGEFT_CACHE/assets/vtab, made by `cargo xtask assets vtab`].
    #[arg(long)]
    suite: Option<PathBuf>,
    /// Only these tasks of the suite (comma-separated) [demo default: cifar10].
    #[arg(long, value_delimiter = ',')]
    tasks: Vec<String>,
    /// Methods to run (comma-separated): wegeft, wegeft-layer, lora, linear, full.
    #[arg(long, value_delimiter = ',', default_value = "wegeft")]
    methods: Vec<Method>,
    /// Hyper-parameter set the other flags override: `demo` (a few epochs at 84 px, minutes on
    /// a CPU) or `paper` (100 epochs, 10 warmup, 224 px, batch 32, lr 1e-3, wd 1e-4).
    #[arg(long, default_value = "demo", value_parser = ["demo", "paper"])]
    preset: String,
    /// Adapter rank [default: WeGeFT 16, LoRA 8].
    #[arg(long)]
    rank: Option<usize>,
    /// Layer-name suffixes to adapt (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "attn.proj")]
    targets: Vec<String>,
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long)]
    warmup_epochs: Option<usize>,
    #[arg(long)]
    lr: Option<f64>,
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Square input side (a multiple of the patch size, 14 for DINOv2).
    #[arg(long)]
    image_size: Option<usize>,
    #[arg(long)]
    batch_size: Option<usize>,
    #[arg(long)]
    drop_path: Option<f64>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Backbone checkpoint (timm-layout safetensors) [default: the converted DINOv2 ViT-S/14].
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Where runs go: `<out>/<task>/<method>/`, and the suite report `<out>/summary.md`.
    #[arg(long, default_value = "runs")]
    out: PathBuf,
    /// Continue each run from its last checkpoint.
    #[arg(long)]
    resume: bool,
    /// Stop each run after this many epochs (its schedule still spans --epochs); `--resume` goes on.
    #[arg(long)]
    stop_after: Option<usize>,
    /// Pick lr and weight decay on train800 → val200 first (the paper's grid unless narrowed).
    #[arg(long)]
    search: bool,
    /// Epochs of each search run.
    #[arg(long, default_value_t = 50)]
    search_epochs: usize,
    #[arg(long, value_delimiter = ',')]
    lr_grid: Vec<f64>,
    #[arg(long, value_delimiter = ',')]
    wd_grid: Vec<f64>,
    /// Train nothing: collect the `results.json` of every run under --out into summary.md.
    #[arg(long)]
    report: bool,
    #[command(flatten)]
    backend: BackendArgs,
}

impl Args {
    fn demo(&self) -> bool {
        self.preset == "demo"
    }

    /// The run configuration of `task` with `method`, preset values under explicit flags.
    fn config(&self, task: &Path, method: Method) -> TrainConfig {
        let demo = self.demo();
        let checkpoint = self.checkpoint.clone().unwrap_or_else(|| asset_dir().join(DINOV2_VITS14));
        TrainConfig::new(task.to_path_buf(), VitConfig::dinov2_small(0))
            .with_checkpoint(Some(checkpoint))
            .with_method(method)
            .with_rank(self.rank)
            .with_targets(self.targets.clone())
            .with_epochs(self.epochs.unwrap_or(if demo { 4 } else { 100 }))
            .with_warmup_epochs(self.warmup_epochs.unwrap_or(if demo { 1 } else { 10 }))
            .with_lr(self.lr.unwrap_or(1e-3))
            .with_weight_decay(self.weight_decay.unwrap_or(1e-4))
            .with_image_size(self.image_size.unwrap_or(if demo { 84 } else { 224 }))
            .with_batch_size(self.batch_size.unwrap_or(32))
            .with_drop_path(self.drop_path.unwrap_or(0.1))
            .with_seed(self.seed)
    }

    fn tasks(&self) -> Result<Vec<PathBuf>> {
        if let Some(task) = &self.task {
            return Ok(vec![task.clone()]);
        }
        let suite = self.suite.clone().unwrap_or_else(|| asset_dir().join(VTAB_SUITE));
        let only = if self.tasks.is_empty() && self.suite.is_none() && self.demo() {
            vec!["cifar10".to_string()]
        } else {
            self.tasks.clone()
        };
        suite_tasks(&suite, &only)
    }
}

struct Job(Args);

impl BackendJob for Job {
    type Output = Result<Vec<RunResults>>;

    fn run<B: burn::tensor::backend::AutodiffBackend>(self, device: B::Device, description: String) -> Self::Output {
        let args = self.0;
        if args.report {
            let all = collect_results(&args.out)?;
            write_report(&args.out, &all)?;
            return Ok(all);
        }
        println!("backend: {description}");
        let mut all = Vec::new();
        for task in args.tasks()? {
            for &method in &args.methods {
                let mut config = args.config(&task, method);
                let task_name = task.file_name().unwrap_or_default().to_string_lossy().into_owned();
                let run_dir = args.out.join(&task_name).join(method.to_string());
                if args.search {
                    let lrs = if args.lr_grid.is_empty() { train::PAPER_LR_GRID.to_vec() } else { args.lr_grid.clone() };
                    let wds = if args.wd_grid.is_empty() { train::PAPER_WD_GRID.to_vec() } else { args.wd_grid.clone() };
                    let found = train::search::<B>(&config, &lrs, &wds, args.search_epochs, &run_dir.join("search"), &device)?;
                    println!("{task_name}/{method}: search chose lr {:e}, wd {:e}", found.lr, found.weight_decay);
                    config = config.with_lr(found.lr).with_weight_decay(found.weight_decay);
                    let json = serde_json::to_string_pretty(&found).expect("serialisable");
                    wegeft::io::write_atomic(&run_dir.join("search.json"), json.as_bytes())?;
                }
                let session = Session {
                    resume: args.resume,
                    stop_after: args.stop_after,
                };
                if let Some(results) = train::train::<B>(&config, &run_dir, session, &device)? {
                    println!(
                        "{task_name}/{method}: {} accuracy {:.2}% ({} images), merged {}, {} trainable params besides the head, {:.1} train img/s -> {}",
                        results.eval_split,
                        results.eval.accuracy,
                        results.eval.images,
                        results.merged_eval.map_or("-".into(), |m| format!("{:.2}%", m.accuracy)),
                        results.params.trainable_excluding_head,
                        results.train_images_per_second,
                        run_dir.display()
                    );
                    all.push(results);
                }
            }
        }
        if !all.is_empty() {
            write_report(&args.out, &all)?;
        }
        Ok(all)
    }
}

/// `summary.md` and `summary.json` in `out`, and the table on stdout.
fn write_report(out: &Path, all: &[RunResults]) -> Result<()> {
    let report = markdown_report(all);
    std::fs::create_dir_all(out).map_err(|source| wegeft_vision::VisionError::Io { path: out.into(), source })?;
    wegeft::io::write_atomic(&out.join("summary.md"), report.as_bytes())?;
    let json = serde_json::to_string_pretty(all).expect("serialisable");
    wegeft::io::write_atomic(&out.join("summary.json"), json.as_bytes())?;
    println!("\n{report}\nreport: {}", out.join("summary.md").display());
    Ok(())
}

/// The results of the runs under `out` (`<out>/<task>/<method>/results.json`).
fn collect_results(out: &Path) -> Result<Vec<RunResults>> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| wegeft_vision::VisionError::Io { path, source }
    };
    let mut all = Vec::new();
    for task in std::fs::read_dir(out).map_err(io(out))?.flatten() {
        let Ok(methods) = std::fs::read_dir(task.path()) else { continue };
        for run in methods.flatten() {
            let file = run.path().join("results.json");
            if let Ok(text) = std::fs::read_to_string(&file) {
                let results = serde_json::from_str(&text).map_err(|error| wegeft_vision::VisionError::Data {
                    line: Some(error.line()),
                    path: file.clone(),
                    reason: error.to_string(),
                })?;
                all.push(results);
            }
        }
    }
    Ok(all)
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    args.backend.clone().run("train-vit", Job(args))
}
