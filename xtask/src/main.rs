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
    /// The main job. Until the ViT crate lands it runs the library example (a user's model with
    /// WeGeFT: train, save, merge, reload).
    TrainVit,
    /// Forward+backward benchmark of WeGeFT vs LoRA vs frozen layers (release build).
    Bench {
        /// Extra arguments for the benchmark (`--rounds R --layers L --tokens N`).
        #[arg(trailing_var_arg = true)]
        args: Vec<String>,
    },
    /// Regenerates the golden fixtures with the committed Python script (needs python3 and pip).
    Fixtures,
}

fn main() -> ExitCode {
    let status = match Cli::parse().task {
        Task::TrainVit => cargo(&["run", "--release", "-p", "wegeft-examples", "--bin", "custom-model"]),
        Task::Bench { args } => {
            let mut command = vec!["bench", "-p", "wegeft", "--bench", "layer_stack", "--"];
            command.extend(args.iter().map(String::as_str));
            cargo(&command)
        }
        Task::Fixtures => fixtures(),
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
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    Ok(Command::new(cargo).args(args).status()?.success())
}

/// A private virtual environment with the script's pinned dependencies, then the script.
fn fixtures() -> std::io::Result<bool> {
    let venv = std::env::temp_dir().join("wegeft-fixtures-venv");
    let python = venv.join("bin/python");
    if !python.exists() && !Command::new("python3").arg("-m").arg("venv").arg(&venv).status()?.success() {
        return Ok(false);
    }
    let pinned = ["numpy==2.*", "autograd==1.*", "safetensors==0.*"];
    let installed = Command::new(&python)
        .args(["-m", "pip", "install", "-q"])
        .args(pinned)
        .status()?;
    Ok(installed.success()
        && Command::new(&python)
            .arg("wegeft/tests/fixtures/make_fixtures.py")
            .status()?
            .success())
}
