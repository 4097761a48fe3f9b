//! `cargo xtask gpu-bundle`: what `scripts/gpu-check.sh` runs on a GPU machine.

use std::path::Path;
use std::process::Command;

use crate::cargo::built_executables;

/// Builds the core crate's release tests and benchmarks and the ViT and LLM training-step
/// benchmarks with `--features cuda,wgpu` (stripped, gzipped) into `.gpu-bundle/`, with the
/// fixtures and the PyTorch reference script.
pub fn bundle() -> std::io::Result<bool> {
    let bundle = Path::new(".gpu-bundle");
    let _ = std::fs::remove_dir_all(bundle);
    std::fs::create_dir_all(bundle.join("tests"))?;
    let core = ["test", "-p", "wegeft", "--release", "--features", "cuda,wgpu", "--tests", "--benches", "--no-run"];
    let vit = ["bench", "-p", "wegeft-vision", "--bench", "vit_step", "--features", "cuda,wgpu", "--no-run"];
    let llm = ["bench", "-p", "wegeft-llm", "--bench", "llm_step", "--features", "cuda,wgpu", "--no-run"];
    // Stripped binaries travel faster (and fit small upload limits).
    let strip = [("CARGO_PROFILE_RELEASE_STRIP", "symbols"), ("CARGO_PROFILE_BENCH_STRIP", "symbols")];
    let mut executables = Vec::new();
    for (args, only_benches) in [(&core[..], false), (&vit[..], true), (&llm[..], true)] {
        let Some(built) = built_executables(args, &strip)? else {
            return Ok(false);
        };
        executables.extend(built.into_iter().filter(|(kind, _, _)| !only_benches || kind == "bench"));
    }
    for (kind, name, executable) in executables {
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
    copy_dir(Path::new("wegeft/tests/fixtures"), &bundle.join("fixtures"))?;
    std::fs::copy("scripts/torch_reference_bench.py", bundle.join("torch_reference_bench.py"))?;
    println!("bundle ready: copy .gpu-bundle/ and scripts/gpu-check.sh to the GPU machine");
    Ok(true)
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
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
