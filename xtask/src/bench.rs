//! `cargo xtask bench`: our training steps beside PyTorch's, measured in one invocation.
//!
//! Every configuration runs in its own process (ours, then the reference's, then the next
//! configuration), so each process's peak memory is its own and machine noise hits both sides
//! alike. The bench binaries and `scripts/torch_reference_bench.py` each print one JSON line.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// What `cargo xtask bench` measures.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(value_enum, default_value_t = Suite::All)]
    suite: Suite,
    /// Also run the PyTorch reference script, interleaved, and report our time / PyTorch's.
    #[arg(long)]
    reference: bool,
    /// CPU threads on both sides [default: one per core].
    #[arg(long)]
    threads: Option<usize>,
    /// Image sides of `vit-step`.
    #[arg(long, value_delimiter = ',', default_value = "112,224")]
    sizes: Vec<usize>,
    /// Methods of `vit-step`.
    #[arg(long, value_delimiter = ',', default_value = "linear,lora,dora,vera,wegeft,wegeft-layer,full")]
    methods: Vec<String>,
    /// Methods of `llm-step`.
    #[arg(long, value_delimiter = ',', default_value = "lora,dora,vera,wegeft")]
    llm_methods: Vec<String>,
    /// Models of `llm-step`: `smollm2` (SmolLM2-135M), `gemma3` (Gemma 3 270M).
    #[arg(long, value_delimiter = ',', default_value = "smollm2")]
    llm_models: Vec<LlmModel>,
    /// How `llm-step` holds the frozen base: `f32`, `f16`, `bf16`, `stored` (the GGUF's blocks).
    /// PyTorch's side always runs f32, once per model and method.
    #[arg(long, value_delimiter = ',', default_value = "f32")]
    llm_bases: Vec<String>,
    /// Gradient checkpointing of `llm-step`: `off`, `layers` (`train-llm --checkpointing`), or
    /// both. PyTorch's side runs without.
    #[arg(long, value_delimiter = ',', default_value = "off")]
    llm_checkpointing: Vec<Checkpointing>,
    /// Timed steps per configuration (the median is reported).
    #[arg(long, default_value_t = 3)]
    steps: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Runs both sides on this instruction set, to time on an AVX-512 machine what an AVX2-only
    /// CPU runs: our kernels through `WEGEFT_CPU_CAPABILITY` and gemm built without its AVX-512
    /// kernels; PyTorch's through `ATEN_CPU_CAPABILITY`, `ONEDNN_MAX_CPU_ISA` and
    /// `MKL_ENABLE_INSTRUCTIONS`; glibc's copies on both through `GLIBC_TUNABLES`.
    #[arg(long, value_enum)]
    cpu_capability: Option<CpuCap>,
    /// Also where the time goes: ours under `perf record` (the whole run, by symbol), PyTorch's
    /// one more step under torch.profiler (by op); the report adds each configuration's top 5.
    #[arg(long)]
    profile: bool,
}

/// The instruction-set caps of `--cpu-capability`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CpuCap {
    Avx512,
    Avx2,
}

impl CpuCap {
    /// The variables that cap our kernels, PyTorch's (ATen's, oneDNN's, MKL's) and glibc's.
    fn environment(self) -> Vec<(&'static str, &'static str)> {
        match self {
            Self::Avx512 => vec![("WEGEFT_CPU_CAPABILITY", "avx512"), ("ATEN_CPU_CAPABILITY", "avx512"), ("ONEDNN_MAX_CPU_ISA", "AVX512_CORE"), ("MKL_ENABLE_INSTRUCTIONS", "AVX512")],
            Self::Avx2 => vec![
                ("WEGEFT_CPU_CAPABILITY", "avx2"),
                ("ATEN_CPU_CAPABILITY", "avx2"),
                ("ONEDNN_MAX_CPU_ISA", "AVX2"),
                ("MKL_ENABLE_INSTRUCTIONS", "AVX2"),
                ("GLIBC_TUNABLES", "glibc.cpu.hwcaps=-AVX512F,-AVX512VL,-AVX512BW,-AVX512DQ,-AVX512CD"),
            ],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Avx512 => "AVX-512",
            Self::Avx2 => "AVX2",
        }
    }
}

/// The fetched models `llm-step` runs.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LlmModel {
    /// SmolLM2-135M-Instruct, Q4_1 GGUF (`assets llm`).
    Smollm2,
    /// Gemma 3 270M, Q4_K_M GGUF (`assets gemma3`).
    Gemma3,
}

impl LlmModel {
    /// Its name for `--model`, its GGUF file, and the step that fetches it.
    fn asset(self) -> (&'static str, &'static str, fn() -> std::io::Result<bool>) {
        match self {
            Self::Smollm2 => ("smollm2", crate::assets::SMOLLM2_GGUF, crate::assets::llm),
            Self::Gemma3 => ("gemma3", crate::assets::GEMMA3_GGUF, crate::assets::gemma3),
        }
    }
}

/// Whether `llm-step` recomputes the decoder layers in the backward pass.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Checkpointing {
    /// Every activation kept.
    Off,
    /// Layer-wise gradient checkpointing.
    Layers,
}

/// The benchmark suites.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Suite {
    /// A ViT-S/16 training step at each `--sizes` and `--methods`.
    VitStep,
    /// An LLM training step for each `--llm-models` and `--llm-methods`.
    LlmStep,
    /// Both step benchmarks.
    All,
    /// The adapter layer stack alone (the core crate's `layer_stack`).
    Layers,
}

impl Suite {
    fn name(self) -> &'static str {
        match self {
            Self::VitStep => "vit-step",
            Self::LlmStep => "llm-step",
            Self::All => "all",
            Self::Layers => "layers",
        }
    }
}

/// One configuration's two sides.
struct Row {
    label: String,
    method: String,
    /// How our side holds the frozen base.
    base: String,
    /// Whether our side recomputes the layers in the backward pass.
    checkpointing: bool,
    ours: Value,
    reference: Option<Value>,
}

pub fn bench(backend: &crate::BackendArgs, args: &BenchArgs) -> std::io::Result<bool> {
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let python = match args.reference {
        true => match crate::python::venv(&crate::assets::cache_dir().join("bench-venv"), crate::python::BENCH_PACKAGES)? {
            Some(python) => Some(python),
            None => return Ok(false),
        },
        false => None,
    };
    let backend_name = backend.backend.name();
    let mut common = vec!["--backend".to_string(), backend_name.to_string(), "--threads".into(), threads.to_string()];
    if let Some(device) = backend.device {
        common.extend(["--device".into(), device.to_string()]);
    }
    let steps = ["--steps".to_string(), args.steps.to_string(), "--warmup".into(), args.warmup.to_string()];
    let torch_common = ["--threads".to_string(), threads.to_string()];
    let cap = args.cpu_capability.map_or(String::new(), |cap| {
        format!("; both sides run {} code (`--cpu-capability`: kernels capped, gemm built without AVX-512)", cap.name())
    });
    let mut report = format!(
        "# cargo xtask bench {} --backend {}{} --threads {threads}\n\nCPU: {} ({}), {} cores{cap}\n\n",
        args.suite.name(),
        backend_name,
        if args.reference { " --reference" } else { "" },
        cpu_model(),
        simd_level(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    let environment = args.cpu_capability.map_or(Vec::new(), CpuCap::environment);
    let perf = args.profile && crate::profile::perf_available();
    let suites = match args.suite {
        Suite::All => vec!["vit-step", "llm-step"],
        Suite::Layers => return layers(backend),
        other => vec![other.name()],
    };
    for suite in suites {
        let package = if suite == "vit-step" { "wegeft-vision" } else { "wegeft-llm" };
        let avx2_build = args.cpu_capability == Some(CpuCap::Avx2);
        let Some(binary) = bench_binary(package, &suite.replace('-', "_"), backend_name, avx2_build)? else {
            return Ok(false);
        };
        if suite == "llm-step" {
            for model in &args.llm_models {
                if !(model.asset().2)()? {
                    return Ok(false);
                }
            }
        }
        // Label, method, our flags, and the GGUF the reference loads.
        let configurations: Vec<(String, String, Vec<String>, Option<String>)> = match suite {
            "vit-step" => args
                .sizes
                .iter()
                .flat_map(|size| args.methods.iter().map(move |method| (*size, method)))
                .map(|(size, method)| {
                    (format!("{size} px × 32"), method.clone(), vec!["--size".into(), size.to_string(), "--method".into(), method.clone()], None)
                })
                .collect(),
            _ => args
                .llm_models
                .iter()
                .flat_map(|model| args.llm_checkpointing.iter().map(move |checkpointing| (model.asset(), *checkpointing)))
                .flat_map(|(asset, checkpointing)| args.llm_bases.iter().map(move |base| (asset, checkpointing, base)))
                .flat_map(|(asset, checkpointing, base)| args.llm_methods.iter().map(move |method| (asset, checkpointing, base, method)))
                .map(|((name, gguf, _), checkpointing, base, method)| {
                    let path = crate::assets::asset_dir().join(gguf).display().to_string();
                    let mut config = vec!["--model".into(), name.into(), "--method".into(), method.clone(), "--base-precision".into(), base.clone()];
                    if checkpointing == Checkpointing::Layers {
                        config.push("--checkpointing".into());
                    }
                    (format!("{name} 8 × 64 tokens"), method.clone(), config, Some(path))
                })
                .collect(),
        };
        let mut rows = Vec::new();
        let mut profiles = String::new();
        for (label, method, config, gguf) in configurations {
            let base = config.windows(2).find(|pair| pair[0] == "--base-precision").map_or("f32".to_string(), |pair| pair[1].clone());
            let checkpointing = config.iter().any(|flag| flag == "--checkpointing");
            println!("--- {suite} {label} {method} {base} base{}", if checkpointing { ", layers recomputed" } else { "" });
            let mut command = Command::new(&binary);
            command.envs(environment.iter().copied()).args(&common).args(&config).args(&steps);
            let samples = crate::profile::data_path(rows.len());
            let ours = match perf {
                true => run_json(&mut crate::profile::recorded(&command, &samples))?,
                false => run_json(&mut command)?,
            };
            // PyTorch runs f32 once per model and method; other bases compare against that run.
            let measured = rows.iter().find(|r: &&Row| r.label == label && r.method == method && r.reference.is_some());
            let reference = match (&python, measured) {
                (_, Some(row)) => Some(row.reference.clone()),
                (Some(python), None) => {
                    let mut command = Command::new(python);
                    command.envs(environment.iter().copied());
                    // The reference takes the model as a file, and its base is f32.
                    let config = config.chunks(2).filter(|flag| !["--model", "--base-precision", "--checkpointing"].contains(&flag[0].as_str())).flatten();
                    command.arg("scripts/torch_reference_bench.py").arg(suite).args(&torch_common).args(&steps).args(config);
                    if args.profile {
                        command.args(["--profile", &crate::profile::TOP.to_string()]);
                    }
                    if let Some(gguf) = &gguf {
                        command.arg("--gguf").arg(gguf);
                    }
                    Some(run_json(&mut command)?)
                }
                (None, None) => None,
            };
            let reference = reference.flatten();
            if args.profile {
                let ours = match samples.exists() {
                    true => crate::profile::top_symbols(&samples)?,
                    false => Vec::new(),
                };
                let _ = std::fs::remove_file(&samples);
                let theirs = reference.as_ref().and_then(|r| r["top_ops"].as_array()).map_or(Vec::new(), |ops| {
                    ops.iter().map(|op| (op["name"].as_str().unwrap_or("?").to_string(), op["share"].as_f64().unwrap_or(0.0))).collect()
                });
                profiles.push_str(&crate::profile::table(&format!("{suite} {label} {method}"), &ours, &theirs));
            }
            match ours {
                Some(ours) => rows.push(Row { label, method, base, checkpointing, ours, reference }),
                None => return Ok(false),
            }
        }
        report.push_str(&table(suite, &rows));
        report.push_str(&profiles);
    }
    println!("\n{report}");
    let out = Path::new("runs/bench");
    std::fs::create_dir_all(out)?;
    let file = out.join(format!("{}-{backend_name}.md", args.suite.name()));
    std::fs::write(&file, &report)?;
    println!("written to {}", file.display());
    Ok(true)
}

/// The markdown table of one suite: times, ratios to PyTorch and to our LoRA, peak memory.
fn table(suite: &str, rows: &[Row]) -> String {
    let seconds = |v: &Value| v["median_s"].as_f64();
    let memory = |v: &Value| v["peak_rss_mb"].as_f64().map_or("–".into(), |mb| format!("{mb:.0} MB"));
    let backend = rows.first().and_then(|r| r.ours["backend"].as_str()).unwrap_or("?");
    let torch = rows.iter().find_map(|r| r.reference.as_ref()).map_or(String::new(), |r| {
        let kernels = r["cpu_capability"].as_str().map_or(String::new(), |level| format!(", {level} kernels"));
        format!(", PyTorch {} ({} threads{kernels})", r["torch"].as_str().unwrap_or("?"), r["threads"])
    });
    let mut text = format!("## {suite}: ours on {backend}{torch}\n\n");
    text.push_str("| shape | method | base | ours | PyTorch | ours / PyTorch | ours / our LoRA | peak RSS ours | peak RSS PyTorch | time, RSS / our f32 base |\n");
    text.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    let rss = |v: &Value| v["peak_rss_mb"].as_f64();
    for row in rows {
        let ours = seconds(&row.ours);
        let theirs = row.reference.as_ref().and_then(seconds);
        let alike = |r: &&Row| r.label == row.label && r.checkpointing == row.checkpointing;
        let lora = rows.iter().filter(alike).find(|r| r.base == row.base && r.method == "lora").and_then(|r| seconds(&r.ours));
        let f32_base = rows.iter().filter(alike).find(|r| r.method == row.method && r.base == "f32" && row.base != "f32");
        // Each side reports its own tokens/s (batch × sequence over the median step).
        let fmt = |side: Option<&Value>| match side.and_then(|v| seconds(v).map(|s| (s, v["tokens_per_s"].as_f64()))) {
            Some((s, Some(tokens))) => format!("{s:.3} s ({tokens:.0} tok/s)"),
            Some((s, None)) => format!("{s:.3} s"),
            None => "–".into(),
        };
        let ratio = |a: Option<f64>, b: Option<f64>| a.zip(b).map_or("–".into(), |(a, b)| format!("{:.2}×", a / b));
        let versus_f32 = f32_base.map_or("–".into(), |f| format!("{}, {}", ratio(ours, seconds(&f.ours)), ratio(rss(&row.ours), rss(&f.ours))));
        text.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            row.label,
            row.method,
            if row.checkpointing { format!("{}, layers recomputed", row.base) } else { row.base.clone() },
            fmt(Some(&row.ours)),
            fmt(row.reference.as_ref()),
            ratio(ours, theirs),
            ratio(ours, lora),
            memory(&row.ours),
            row.reference.as_ref().map_or("–".into(), memory),
            versus_f32,
        ));
    }
    text.push('\n');
    text
}

/// The widest SIMD the CPU offers to the kernels chosen at run time: CPU ratios differ by it
/// (gemm's AVX-512 kernels do twice AVX2's work per instruction), so tables are kept per level.
fn simd_level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "AVX-512";
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return "AVX2";
        }
        "SSE"
    }
    #[cfg(target_arch = "aarch64")]
    {
        "NEON"
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        "scalar"
    }
}

/// The CPU's model name (Linux's `/proc/cpuinfo`), or "unknown CPU".
fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let name = info.lines().find_map(|line| line.strip_prefix("model name").and_then(|rest| rest.split_once(':')).map(|(_, name)| name.trim().to_string()));
    name.unwrap_or_else(|| "unknown CPU".into())
}

/// Runs `command`, echoing its stderr, and parses the last line of its stdout as JSON; `None`
/// (with the reason printed) when it failed.
fn run_json(command: &mut Command) -> std::io::Result<Option<Value>> {
    let output = command.stderr(std::process::Stdio::inherit()).output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let parsed = stdout.lines().rev().find_map(|line| serde_json::from_str::<Value>(line).ok());
    if !output.status.success() || parsed.is_none() {
        eprintln!("xtask: {:?} failed ({}): {}", command.get_program(), output.status, stdout.trim());
        return Ok(None);
    }
    println!("{}", stdout.lines().last().unwrap_or_default());
    Ok(parsed)
}

/// Builds `package`'s bench target `name` (cargo's bench profile) with `backend`'s feature and
/// returns its executable; `avx2` leaves out gemm's AVX-512 kernels (the default `avx512` feature).
fn bench_binary(package: &str, name: &str, backend: &str, avx2: bool) -> std::io::Result<Option<PathBuf>> {
    let mut args = vec!["bench", "-p", package, "--bench", name, "--no-run", "--features", backend];
    if avx2 {
        args.push("--no-default-features");
    }
    Ok(crate::cargo::built_executables(&args, &[])?.and_then(|built| built.into_iter().find(|(_, target, _)| target == name).map(|(_, _, path)| path)))
}

/// The adapter layer stack alone (the core crate's `layer_stack` bench). Both CPU backends are
/// always in the core crate's benches; the GPU backends are features.
fn layers(backend: &crate::BackendArgs) -> std::io::Result<bool> {
    let mut command = vec!["bench", "-p", "wegeft", "--bench", "layer_stack"];
    let backend_name = backend.backend.name();
    if matches!(backend_name, "wgpu" | "cuda") {
        command.extend(["--features", backend_name]);
    }
    command.extend(["--", "--backend", backend_name]);
    let device = backend.device.map(|d| d.to_string());
    if let Some(device) = &device {
        command.extend(["--device", device]);
    }
    crate::cargo::cargo(&command)
}
