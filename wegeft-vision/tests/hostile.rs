//! Hostile command lines for the `train-vit` and `eval-vit` binaries: each is refused with a
//! message naming the flag, path or setting at fault, and an error exit code, never a panic's.

mod common;

use std::path::Path;
use std::process::Command;

use common::{write_task, Scratch};

/// Runs `binary` with `args`: (exit code, stdout and stderr).
fn run(binary: &str, dir: &Path, args: &[&std::ffi::OsStr]) -> (i32, String) {
    let output = Command::new(binary).current_dir(dir).args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn bad_command_lines_are_refused_by_name_without_panicking() {
    let scratch = Scratch::new("hostile-cli");
    let task = write_task(&scratch.0, 1);
    let task = task.as_os_str();
    let os = |text: &'static str| std::ffi::OsStr::new(text);
    let train_vit = env!("CARGO_BIN_EXE_train-vit");
    let mut cases: Vec<(Vec<&std::ffi::OsStr>, &str)> = vec![
        (vec![os("--task"), task, os("--tasks"), os("cats_dogs")], "cannot be used with"),
        (vec![os("--task"), task, os("--methods"), os("wegeft,wegeft")], "--methods names wegeft twice"),
        (vec![os("--task"), task, os("--image-size"), os("100002")], "image_size must be 1 to 2048"),
        (vec![os("--task"), task, os("--checkpoint"), os("missing.safetensors")], "missing.safetensors"),
    ];
    #[cfg(unix)]
    let not_utf8 = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"task-\xff");
    #[cfg(unix)]
    cases.push((vec![os("--task"), not_utf8], "invalid UTF-8"));
    for (args, expected) in cases {
        let (code, text) = run(train_vit, &scratch.0, &args);
        assert!(code != 0 && code != 101 && !text.contains("panicked"), "{args:?} exited {code}: {text}");
        assert!(text.contains(expected), "{args:?}: {text}");
    }
}

#[test]
fn eval_vit_on_a_run_whose_relative_task_dir_is_elsewhere_says_so() {
    let scratch = Scratch::new("hostile-eval");
    let run_dir = scratch.0.join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    let config = wegeft_vision::train::TrainConfig::new("colours".into(), wegeft_vision::VitConfig::new(8, 4, 16, 2, 2, 0));
    std::fs::write(run_dir.join("config.json"), config.to_string()).unwrap();
    let (code, text) = run(env!("CARGO_BIN_EXE_eval-vit"), &scratch.0, &[run_dir.as_os_str()]);
    assert!(code != 0 && code != 101 && !text.contains("panicked"), "exited {code}: {text}");
    assert!(text.contains("task_dir `colours` is not a directory here") && text.contains("run from the directory train-vit ran in"), "{text}");
}
