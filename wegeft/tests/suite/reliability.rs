//! Nothing lost, nothing silent: run directories, checkpoints and inputs that must fail loudly.

use std::fs;

use burn::backend::NdArray;
use burn::config::Config;
use burn::module::Module;
use burn::nn::LinearConfig;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use wegeft::io::{read_safetensors, write_safetensors, StoredTensor};
use wegeft::train::{checkpoint_bytes, ensure_space, last_checkpoint, start_run, AtomicFileRecorder, Schedule, Session};
use wegeft::{Injector, LoraConfig, PeftError, Targets, WegeftConfig};

use crate::common::temp_dir;

/// A run's settings, as the trainers' configs are.
#[derive(Config, Debug)]
struct RunConfig {
    rank: usize,
    #[config(default = 1e-3)]
    lr: f64,
}

#[test]
fn a_fresh_run_refuses_a_previous_runs_directory_unless_overwriting() {
    let dir = temp_dir("run-exists");
    start_run(&dir, &RunConfig::new(4), Session::default(), &[]).unwrap();
    fs::create_dir_all(dir.join("checkpoint")).unwrap();
    fs::write(dir.join("checkpoint/model-1.mpk"), b"old").unwrap();
    let error = start_run(&dir, &RunConfig::new(8), Session::default(), &[]).unwrap_err();
    assert!(matches!(&error, PeftError::RunExists { dir: d, resumable: false } if *d == dir), "{error}");
    assert!(error.to_string().contains("cannot be resumed"), "{error}");
    assert!(error.to_string().contains("--overwrite"), "{error}");

    // Outputs of the old run: none may survive beside the new run's config.
    fs::write(dir.join("results.json"), b"{}").unwrap();
    fs::create_dir_all(dir.join("adapter")).unwrap();
    let overwrite = Session { overwrite: true, ..Session::default() };
    start_run(&dir, &RunConfig::new(8), overwrite, &[]).unwrap();
    let mut left: Vec<String> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    left.sort();
    assert_eq!(left, [".lock", "config.json", "inputs.json"], "the old run's outputs are gone");
    assert!(fs::read_to_string(dir.join("config.json")).unwrap().contains("\"rank\": 8"));
}

#[test]
fn a_run_directory_is_held_by_one_run_at_a_time() {
    let dir = temp_dir("locked");
    let lock = start_run(&dir, &RunConfig::new(4), Session::default(), &[]).unwrap();
    for session in [Session { overwrite: true, ..Session::default() }, Session { resume: true, ..Session::default() }] {
        let error = start_run(&dir, &RunConfig::new(4), session, &[]).unwrap_err();
        assert!(matches!(&error, PeftError::RunLocked { dir: d } if *d == dir), "{error}");
    }
    assert!(fs::read_to_string(dir.join("config.json")).unwrap().contains("\"rank\": 4"), "the running run's config is untouched");
    drop(lock);
    start_run(&dir, &RunConfig::new(4), Session { resume: true, ..Session::default() }, &[]).unwrap();
}

#[test]
fn a_resume_with_other_settings_names_each_difference_and_keeps_the_config() {
    let dir = temp_dir("resume-mismatch");
    start_run(&dir, &RunConfig::new(4), Session::default(), &[]).unwrap();
    let stored = fs::read_to_string(dir.join("config.json")).unwrap();
    let resume = Session { resume: true, ..Session::default() };
    let error = start_run(&dir, &RunConfig::new(8).with_lr(2e-3), resume, &[]).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, PeftError::ResumeMismatch { .. }), "{message}");
    assert!(message.contains("rank: 4 → 8") && message.contains("lr: 0.001 → 0.002"), "{message}");
    assert_eq!(fs::read_to_string(dir.join("config.json")).unwrap(), stored, "the stored config is untouched");
    start_run(&dir, &RunConfig::new(4), resume, &[]).unwrap();
}

#[test]
fn checkpoints_are_written_whole_and_a_partial_set_is_skipped() {
    type B = NdArray;
    let dir = temp_dir("atomic");
    let checkpoints = dir.join("checkpoint");
    fs::create_dir_all(&checkpoints).unwrap();
    let recorder = AtomicFileRecorder(NamedMpkFileRecorder::<FullPrecisionSettings>::new());
    // Initialised now: a lazily initialised parameter would draw again in each clone.
    let weight = burn::tensor::Tensor::<B, 2>::random([5, 3], burn::tensor::Distribution::Default, &Default::default());
    let layer = burn::nn::Linear { weight: burn::module::Param::from_tensor(weight), bias: None };
    for kind in ["model", "optim", "scheduler"] {
        layer.clone().save_file(checkpoints.join(format!("{kind}-1")), &recorder).unwrap();
    }
    let names: Vec<String> = fs::read_dir(&checkpoints).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(names.iter().all(|name| !name.contains("partial")), "{names:?}");
    let reloaded = LinearConfig::new(5, 3).with_bias(false).init::<B>(&Default::default());
    let reloaded = reloaded.load_file(checkpoints.join("model-1"), &recorder, &Default::default()).unwrap();
    reloaded.weight.val().into_data().assert_eq(&layer.weight.val().into_data(), true);

    // Epoch 2 was killed while writing: its optimizer state is a partial file, never renamed.
    layer.clone().save_file(checkpoints.join("model-2"), &recorder).unwrap();
    fs::write(checkpoints.join("optim-2.partial.mpk"), b"truncat").unwrap();
    assert_eq!(last_checkpoint(&dir).unwrap(), 1);
    assert!(matches!(last_checkpoint(&temp_dir("no-checkpoint")), Err(PeftError::NoCheckpoint { .. })));
}

#[test]
fn a_schedule_without_steps_or_with_a_bad_rate_is_refused() {
    let schedule = Schedule { epochs: 2, steps_per_epoch: 5, warmup_steps: 1, lr: 1e-3, weight_decay: 0.0, seed: 1 };
    schedule.validate().unwrap();
    for (bad, needle) in [
        (Schedule { lr: f64::NAN, ..schedule }, "learning rate"),
        (Schedule { lr: -1e-3, ..schedule }, "learning rate"),
        (Schedule { weight_decay: f64::NAN, ..schedule }, "weight decay"),
        (Schedule { epochs: 0, ..schedule }, "nothing to train"),
        (Schedule { steps_per_epoch: 0, ..schedule }, "nothing to train"),
    ] {
        let error = bad.validate().unwrap_err();
        assert!(matches!(error, PeftError::InvalidConfig(_)) && error.to_string().contains(needle), "{error}");
    }
}

#[test]
fn a_rank_above_the_layer_size_is_refused_before_allocating() {
    type B = NdArray;
    for method in [wegeft::AdapterMethod::from(WegeftConfig::new(100_000_000_000)), LoraConfig::new(13).into()] {
        let mut injector = Injector::new(method, Targets::new().suffix("fc")).unwrap();
        let error = injector.linear("blocks.0.fc", LinearConfig::new(12, 20).init::<B>(&Default::default())).unwrap_err();
        assert!(matches!(&error, PeftError::InvalidConfig(m) if m.contains("blocks.0.fc")), "{error}");
    }
}

#[test]
fn a_stored_nan_is_an_error_naming_the_tensor() {
    let dir = temp_dir("nan");
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join("weights.safetensors");
    let tensor = StoredTensor { shape: vec![2, 2], values: vec![1.0, 2.0, f32::NAN, 4.0] };
    write_safetensors(&path, &[("blocks.0.fc.weight".to_string(), tensor)].into()).unwrap();
    let error = read_safetensors(&path).unwrap_err();
    assert!(matches!(&error, PeftError::NonFiniteTensor { key, index: 2, .. } if key == "blocks.0.fc.weight"), "{error}");
}

#[test]
fn a_disk_without_room_for_the_checkpoints_is_said_before_training() {
    let dir = std::env::temp_dir();
    ensure_space(&dir, 1).unwrap();
    let error = ensure_space(&dir, u64::MAX).unwrap_err();
    assert!(matches!(error, PeftError::DiskFull { needed: u64::MAX, .. }), "{error}");
    // 5×3 + 3 parameters, all trainable: three sets of the model and two AdamW moments.
    let layer = LinearConfig::new(5, 3).init::<burn::backend::Autodiff<NdArray>>(&Default::default());
    assert_eq!(checkpoint_bytes(&layer), 3 * 4 * (18 + 2 * 18) + (8 << 20));
}

#[test]
fn a_resume_refuses_inputs_that_changed_since_the_run_started() {
    let dir = temp_dir("inputs-changed");
    fs::create_dir_all(&dir).unwrap();
    let data = dir.join("train.jsonl");
    fs::write(&data, "one line\n").unwrap();
    let run = dir.join("run");
    drop(start_run(&run, &RunConfig::new(4), Session::default(), &[&data]).unwrap());
    let resume = Session { resume: true, ..Session::default() };
    drop(start_run(&run, &RunConfig::new(4), resume, &[&data]).unwrap());
    fs::write(&data, "one line\nand another\n").unwrap();
    let error = start_run(&run, &RunConfig::new(4), resume, &[&data]).unwrap_err().to_string();
    assert!(error.contains("train.jsonl changed since the run started"), "{error}");
}

#[cfg(unix)]
#[test]
fn an_out_directory_that_is_a_symlink_loop_is_named() {
    let dir = temp_dir("symlink-loop");
    fs::create_dir_all(&dir).unwrap();
    let out = dir.join("out");
    std::os::unix::fs::symlink(&out, &out).unwrap();
    let error = start_run(&out.join("task/method"), &RunConfig::new(4), Session::default(), &[]).unwrap_err().to_string();
    assert!(error.contains("out: exists but is not a directory"), "{error}");
}
