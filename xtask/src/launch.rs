//! `cargo xtask launch -n N [--hostfile F] -- train-vit|train-llm …`: builds the binary with the
//! `mpi` feature and starts it as N MPI ranks through `mpirun` (OpenMPI's flags).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{cargo, BackendArgs};

/// What to launch and where.
#[derive(clap::Args)]
pub struct LaunchArgs {
    /// Ranks to start (processes; each trains on its part of every batch).
    #[arg(short = 'n', long = "ranks")]
    ranks: usize,
    /// An MPI hostfile naming the machines and their slots; the repository (and so the binary)
    /// must sit at the same path on each [default: this machine only].
    #[arg(long)]
    hostfile: Option<PathBuf>,
    #[command(flatten)]
    backend: BackendArgs,
    /// `train-vit …` or `train-llm …`, with their own flags.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    command: Vec<String>,
}

/// Builds and launches; whether every rank succeeded.
pub fn launch(launch: &LaunchArgs) -> std::io::Result<bool> {
    let (bin, args) = launch.command.split_first().expect("clap requires the command");
    let package = match bin.as_str() {
        "train-vit" => "wegeft-vision",
        "train-llm" => "wegeft-llm",
        other => {
            eprintln!("xtask launch: `{other}` does not train across ranks; launch train-vit or train-llm");
            return Ok(false);
        }
    };
    if !crate::fetch_assets(bin, args)? {
        return Ok(false);
    }
    let features = format!("{},mpi", launch.backend.backend.name());
    let build = ["build", "--release", "-p", package, "--bin", bin, "--features", &features];
    let Some(built) = cargo::built_executables(&build, &[])? else { return Ok(false) };
    let Some((_, _, executable)) = built.into_iter().find(|(kind, name, _)| kind == "bin" && name == bin) else {
        eprintln!("xtask launch: cargo built no `{bin}`");
        return Ok(false);
    };
    let mut mpirun = mpirun(launch.ranks, launch.hostfile.as_deref());
    mpirun.arg(executable).args(launch.backend.flags()).args(args);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpu = matches!(launch.backend.backend, crate::Backend::Flex | crate::Backend::Ndarray);
    if cpu && launch.hostfile.is_none() && !args.iter().any(|arg| arg == "--threads" || arg.starts_with("--threads=")) {
        // The ranks share this machine's cores instead of each taking them all.
        mpirun.args(["--threads".to_string(), (cores / launch.ranks).max(1).to_string()]);
    }
    eprintln!("xtask launch: {mpirun:?}");
    Ok(mpirun.status()?.success())
}

/// `mpirun -n ranks`: as root it must be allowed, and more ranks than cores must be.
fn mpirun(ranks: usize, hostfile: Option<&Path>) -> Command {
    let mut command = Command::new("mpirun");
    if running_as_root() {
        command.arg("--allow-run-as-root");
    }
    match hostfile {
        Some(hostfile) => {
            command.arg("--hostfile").arg(hostfile);
        }
        None if ranks > std::thread::available_parallelism().map_or(1, |n| n.get()) => {
            command.arg("--oversubscribe");
        }
        None => {}
    }
    command.args(["-n", &ranks.to_string()]);
    command
}

fn running_as_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(1) == Some("0"))
}
