//! Python environments for the committed reference scripts, and `cargo xtask fixtures`.

use std::path::{Path, PathBuf};
use std::process::Command;

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
    "peft==0.21.2",
    "gguf==0.*",
    "pillow",
];

/// The scripts that need transformers 5 (per-layer-type RoPE, Gemma 3, its GGUF tokenizers).
const FIXTURE5_PACKAGES: &[&str] = &["torch==2.15.0", "transformers==5.24.0", "gguf==0.19.0", "numpy==2.*", "safetensors==0.*", "sentencepiece==0.2.*"];

/// The reference benchmark's dependencies, pinned to the versions BENCHMARKS.md was measured with.
pub const BENCH_PACKAGES: &[&str] = &["torch==2.15.0", "timm==1.0.31", "transformers==5.24.0", "peft==0.21.2", "gguf==0.19.0", "numpy==2.*"];

/// The python of a private virtual environment at `dir` with `packages` installed; `None` when
/// python or pip failed (they say why).
pub fn venv(dir: &Path, packages: &[&str]) -> std::io::Result<Option<PathBuf>> {
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

/// A private virtual environment with the scripts' dependencies, then the scripts.
pub fn fixtures() -> std::io::Result<bool> {
    let Some(python) = venv(&std::env::temp_dir().join("wegeft-fixtures-venv"), FIXTURE_PACKAGES)? else {
        return Ok(false);
    };
    let scripts = [
        "wegeft/tests/fixtures/make_fixtures.py",
        "wegeft/tests/fixtures/make_peft_fixtures.py",
        "wegeft-vision/tests/fixtures/make_vit_fixtures.py",
        "wegeft-vision/tests/fixtures/make_cluster_map_fixture.py",
        "wegeft-llm/tests/fixtures/make_llama_fixtures.py",
        "wegeft-llm/tests/fixtures/make_next_token_loss_fixture.py",
        "wegeft-llm/tests/fixtures/make_chat_template_fixtures.py",
    ];
    if !run_all(&python, &scripts)? {
        return Ok(false);
    }
    let Some(python5) = venv(&std::env::temp_dir().join("wegeft-fixtures5-venv"), FIXTURE5_PACKAGES)? else {
        return Ok(false);
    };
    let scripts = [
        "wegeft-llm/tests/fixtures/make_k_quant_fixtures.py",
        "wegeft-llm/tests/fixtures/make_family_fixtures.py",
        "wegeft-llm/tests/fixtures/make_sentencepiece_fixtures.py",
    ];
    if !run_all(&python5, &scripts)? {
        return Ok(false);
    }
    if !crate::assets::gemma3()? || !Command::new(&python5).arg("wegeft-llm/tests/fixtures/make_gemma3_reference.py").status()?.success() {
        return Ok(false);
    }
    let onnx = crate::assets::asset_dir().join("vit_s_focus.onnx");
    if !onnx.exists() && !crate::assets::vit(crate::assets::Profile::Dev)? {
        return Ok(false);
    }
    let script = "wegeft-vision/tests/fixtures/make_dinov2_onnx_fixture.py";
    Ok(Command::new(&python).arg(script).arg(&onnx).status()?.success())
}

/// Runs each script with `python`, stopping at the first that fails.
fn run_all(python: &Path, scripts: &[&str]) -> std::io::Result<bool> {
    for script in scripts {
        if !Command::new(python).arg(script).status()?.success() {
            return Ok(false);
        }
    }
    Ok(true)
}
