//! Running cargo from xtask.

use std::path::PathBuf;
use std::process::Command;

/// Runs cargo with `args`; whether it succeeded.
pub fn cargo(args: &[&str]) -> std::io::Result<bool> {
    Ok(cargo_command().args(args).status()?.success())
}

/// The cargo that runs xtask. cudarc needs a CUDA version at build time (no toolkit: the binary
/// loads the driver at run time); unless told otherwise, 13.0, which the lent GPUs run.
pub fn cargo_command() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    if std::env::var_os("CUDARC_CUDA_VERSION").is_none() {
        command.env("CUDARC_CUDA_VERSION", "13000");
    }
    command
}

/// Runs cargo with `args` (a `--no-run` build) and `envs`, and returns each built executable as
/// (target kind, target name, path); `None` when the build failed.
pub fn built_executables(args: &[&str], envs: &[(&str, &str)]) -> std::io::Result<Option<Vec<(String, String, PathBuf)>>> {
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
