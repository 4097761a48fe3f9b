//! `train-llm` as MPI ranks under `mpirun` on this machine (feature `mpi`; CI installs OpenMPI):
//! ranks train the adapter one process trains, disagreeing ranks are refused, a killed or stalled
//! rank ends the job naming it, and `--resume` finishes the interrupted run exactly.
#![cfg(feature = "mpi")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use wegeft::io::read_safetensors;

/// One MPI job at a time: the timeouts below are for jobs that have the cores to themselves.
static ONE_JOB: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wegeft-llm-mpi-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Twelve questions with the same one-token answer (each worker's loss is a mean over its
/// response tokens, so equal answers make the workers weigh as the whole batch does), and runs of
/// the tiny model on them.
struct TinyRun {
    dir: PathBuf,
    args: Vec<String>,
}

impl TinyRun {
    fn new(dir: &Path, epochs: usize, batch: usize) -> Self {
        let data: String = (0..12).map(|i| format!("{{\"instruction\": \"Is {i} a number?\", \"output\": \"yes\"}}\n")).collect();
        let file = dir.join("data.jsonl");
        std::fs::write(&file, &data).unwrap();
        let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny_llama_untied");
        let mut args: Vec<String> = ["--model", model.to_str().unwrap(), "--train", file.to_str().unwrap(), "--test", file.to_str().unwrap()].map(String::from).into();
        args.extend(["--rank", "2", "--eval-limit", "2", "--max-new-tokens", "2", "--threads", "1", "--peer-timeout", "5"].map(String::from));
        args.extend(["--epochs".into(), epochs.to_string(), "--batch-size".into(), batch.to_string()]);
        Self { dir: dir.to_path_buf(), args }
    }

    /// The arguments of the run into `<dir>/name`, with `extra` flags.
    fn args_for(&self, name: &str, extra: &[&str]) -> Vec<String> {
        let mut args = self.args.clone();
        args.extend(["--out".to_string(), self.dir.join(name).to_str().unwrap().to_string()]);
        args.extend(extra.iter().map(|flag| flag.to_string()));
        args
    }
}

/// `mpirun -n ranks train-llm args…`, oversubscribing the cores as a test must.
fn mpirun(ranks: usize, args: &[String]) -> Command {
    let mut command = Command::new("mpirun");
    // Containers run tests as root, which OpenMPI refuses unless told; the flag is harmless otherwise.
    command.args(["--oversubscribe", "--allow-run-as-root", "-n", &ranks.to_string()]);
    command.arg(env!("CARGO_BIN_EXE_train-llm")).args(args);
    command
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn succeed(mut command: Command) -> String {
    let output = command.output().unwrap();
    assert!(output.status.success(), "{}", text(&output));
    text(&output)
}

fn assert_same_adapter(reference: &Path, other: &Path, tolerance: f32) {
    let adapter = |run: &Path| read_safetensors(&run.join("adapter/adapter_model.safetensors")).unwrap();
    let (a, b) = (adapter(reference), adapter(other));
    assert_eq!(a.len(), b.len());
    assert!(!a.is_empty());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        let scale = x.values.iter().fold(0f32, |m, v| m.max(v.abs())).max(1.0);
        let diff = x.values.iter().zip(&y.values).fold(0f32, |m, (p, q)| m.max((p - q).abs()));
        assert!(diff <= tolerance * scale, "{}: {name} differs from {} by {diff} (scale {scale})", other.display(), reference.display());
    }
}

fn world_size(run: &Path) -> u64 {
    let results: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    results["world_size"].as_u64().unwrap()
}

/// The process of `run`'s rank `rank` (MPI launchers tell each rank its number in the environment).
fn rank_process(run: &Path, rank: usize) -> Option<u32> {
    let wanted = format!("OMPI_COMM_WORLD_RANK={rank}");
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let command = std::fs::read(entry.path().join("cmdline")).ok()?;
        let environment = std::fs::read(entry.path().join("environ")).ok()?;
        let ours = String::from_utf8_lossy(&command).contains(run.to_str()?) && !String::from_utf8_lossy(&command).starts_with("mpirun");
        (ours && environment.split(|&b| b == 0).any(|entry| entry == wanted.as_bytes())).then_some(pid)
    })
}

/// Waits until `run` has written a checkpoint (so a resume has an epoch to start from), then
/// sends `signal` to its rank 1; returns when it was sent.
fn signal_rank1_mid_run(run: &Path, child: &mut Child, signal: &str) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(120);
    let has_checkpoint = || {
        let files = std::fs::read_dir(run.join("checkpoint")).into_iter().flatten().flatten();
        files.filter_map(|file| file.file_name().to_str()?.strip_prefix("model-")?.strip_suffix(".mpk")?.parse::<usize>().ok()).any(|epoch| epoch >= 2)
    };
    while !has_checkpoint() {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before its second checkpoint");
        assert!(Instant::now() < deadline, "no checkpoint after 120 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = rank_process(run, 1).expect("rank 1 is running");
    assert!(Command::new("kill").args([signal, &pid.to_string()]).status().unwrap().success());
    Instant::now()
}

/// Waits for `child` to end, at most `limit` after `since`; its exit status and output.
fn ended_within(mut child: Child, since: Instant, limit: Duration) -> (bool, String) {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let output = child.wait_with_output().unwrap();
            return (status.success(), text(&output));
        }
        if since.elapsed() > limit {
            let _ = child.kill();
            panic!("the job still ran {limit:?} after rank 1 stopped: {}", text(&child.wait_with_output().unwrap()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn two_ranks_and_four_workers_train_the_adapter_one_process_trains() {
    let _one = ONE_JOB.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = scratch("equal");
    // One global batch of all twelve examples (every worker count sees the same batch), no dropout.
    let tiny = TinyRun::new(&dir, 3, 12);
    let mut one = Command::new(env!("CARGO_BIN_EXE_train-llm"));
    one.args(tiny.args_for("one", &["--dropout", "0"]));
    succeed(one);
    let output = succeed(mpirun(2, &tiny.args_for("ranks", &["--dropout", "0"])));
    // Rank 0 alone reports: one summary line, not two.
    assert_eq!(output.matches("exact match 0.0% ->").count(), 1, "{output}");
    succeed(mpirun(1, &tiny.args_for("devices", &["--dropout", "0", "--devices", "0,0"])));
    succeed(mpirun(2, &tiny.args_for("both", &["--dropout", "0", "--devices", "0,0"])));
    for (name, workers) in [("ranks", 2), ("devices", 2), ("both", 4)] {
        assert_same_adapter(&dir.join("one"), &dir.join(name), 1e-5);
        assert_eq!(world_size(&dir.join(name)), workers, "{name}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// On a GPU backend the gradients go through the host: two ranks on WGPU (lavapipe in CI) train
/// what one WGPU process trains.
#[cfg(feature = "wgpu")]
#[test]
fn two_ranks_on_wgpu_train_the_adapter_one_wgpu_process_trains() {
    let _one = ONE_JOB.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = scratch("wgpu");
    let tiny = TinyRun::new(&dir, 2, 12);
    let flags = ["--dropout", "0", "--backend", "wgpu"];
    let mut one = Command::new(env!("CARGO_BIN_EXE_train-llm"));
    one.args(tiny.args_for("one", &flags));
    succeed(one);
    let output = succeed(mpirun(2, &tiny.args_for("ranks", &flags)));
    assert!(output.contains("backend: wgpu") && output.contains("MPI: 2 ranks"), "{output}");
    assert_same_adapter(&dir.join("one"), &dir.join("ranks"), 1e-5);
    assert_eq!(world_size(&dir.join("ranks")), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ranks_started_on_different_configs_are_refused_on_every_rank() {
    let _one = ONE_JOB.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = scratch("disagree");
    let args = TinyRun::new(&dir, 1, 12).args_for("run", &[]);
    let mut command = mpirun(1, &args);
    command.args(["--lr", "0.001", ":", "-n", "1", env!("CARGO_BIN_EXE_train-llm")]).args(&args).args(["--lr", "0.002"]);
    let output = command.output().unwrap();
    let said = text(&output);
    assert!(!output.status.success(), "{said}");
    for rank in ["rank 0 of 2", "rank 1 of 2"] {
        assert!(said.contains(&format!("{rank}): rank 1 differs from rank 0 on `config`: lr: 0.001 on rank 0, 0.002 there")), "{rank}: {said}");
    }
    assert!(!dir.join("run").exists(), "nothing is written before the ranks agree");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_killed_rank_ends_the_job_and_resume_finishes_the_uninterrupted_runs_adapter() {
    let _one = ONE_JOB.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = scratch("killed");
    // Dropout on (the default), so the resumed epochs must replay the same draws.
    let tiny = TinyRun::new(&dir, 200, 4);
    succeed(mpirun(2, &tiny.args_for("straight", &[])));
    let interrupted = dir.join("interrupted");
    let mut child = mpirun(2, &tiny.args_for("interrupted", &[])).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let killed = signal_rank1_mid_run(&interrupted, &mut child, "-KILL");
    let (success, said) = ended_within(child, killed, Duration::from_secs(5));
    assert!(!success && said.contains("rank 1") && !interrupted.join("results.json").exists(), "{said}");
    let resumed = succeed(mpirun(2, &tiny.args_for("interrupted", &["--resume"])));
    assert!(resumed.contains("resuming after epoch"), "{resumed}");
    assert_same_adapter(&dir.join("straight"), &interrupted, 1e-6);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_stalled_rank_is_named_within_the_peer_timeout() {
    let _one = ONE_JOB.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = scratch("stalled");
    let run = dir.join("run");
    let mut child = mpirun(2, &TinyRun::new(&dir, 200, 4).args_for("run", &[])).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let stopped = signal_rank1_mid_run(&run, &mut child, "-STOP");
    // --peer-timeout 5, and a few seconds for MPI to take the job down.
    let (success, said) = ended_within(child, stopped, Duration::from_secs(15));
    if let Some(pid) = rank_process(&run, 1) {
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    }
    assert!(!success, "{said}");
    // Stopped between two steps, rank 1 is named at rank 0's check-in; stopped inside the
    // all-reduce it already joined, rank 0 can only say the operation did not complete.
    let named = said.contains("rank 0 of 2: rank 1 did not reach the gradient all-reduce");
    let unnamed = said.contains("rank 0 of 2: the gradient all-reduce did not complete") && said.contains("a rank died or stalled");
    assert!((named || unnamed) && said.contains("within 5 s (--peer-timeout)"), "{said}");
    std::fs::remove_dir_all(&dir).unwrap();
}
