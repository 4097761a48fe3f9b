//! The `generate` binary on WGPU (`--features wgpu`; CI runs it on Mesa's lavapipe): it starts,
//! and greedy decoding of the tiny fixture gives the tokens Flex gives.

#![cfg(feature = "wgpu")]

use std::process::Command;

/// The generated lines (`prompt|text`) of `generate` on `backend`; fails with its stderr.
fn generated(backend: &str) -> Vec<String> {
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tiny_llama_untied");
    let output = Command::new(env!("CARGO_BIN_EXE_generate"))
        .args(["--model", model, "--prompt", "hello world", "--prompt", "abc", "--max-new-tokens", "6", "--backend", backend])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "generate --backend {backend} failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains(&format!("backend: {backend}")), "{stdout}");
    stdout.lines().filter(|line| line.contains('|')).map(String::from).collect()
}

#[test]
fn generate_on_wgpu_decodes_what_flex_decodes() {
    let wgpu = generated("wgpu");
    assert_eq!(wgpu.len(), 2, "{wgpu:?}");
    assert_eq!(wgpu, generated("flex"));
}
