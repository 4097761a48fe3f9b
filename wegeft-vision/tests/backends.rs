//! The `train-vit` binary on WGPU (`--features wgpu`; CI runs it on Mesa's lavapipe): the main
//! job's path, the DINOv2 ViT-S/14 backbone fine-tuned with WeGeFT, end to end on a tiny task.

#![cfg(feature = "wgpu")]

mod common;

use common::{write_task, Scratch};
use wegeft_backend::asset_dir;
use wegeft_vision::assets::DINOV2_VITS14;
use wegeft_vision::train::artifacts::load_results;

#[test]
#[ignore = "needs the DINOv2 backbone: `cargo xtask assets vit`"]
fn train_vit_runs_end_to_end_on_wgpu() {
    let scratch = Scratch::new("wgpu-train-vit");
    let task = write_task(&scratch.0, 2);
    let out = scratch.0.join("runs");
    let checkpoint = asset_dir().join(DINOV2_VITS14);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_train-vit"))
        .arg("--task")
        .arg(&task)
        .arg("--checkpoint")
        .arg(&checkpoint)
        .arg("--out")
        .arg(&out)
        .args(["--backend", "wgpu", "--image-size", "14", "--batch-size", "3", "--epochs", "1", "--warmup-epochs", "0"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "train-vit --backend wgpu failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("backend: wgpu"), "{stdout}");
    let results = load_results(&out.join("colours/wegeft")).unwrap().expect("a finished run has results.json");
    assert_eq!(results.eval.images, 6);
    assert!((0.0..=100.0).contains(&results.eval.accuracy), "{}", results.eval.accuracy);
}
