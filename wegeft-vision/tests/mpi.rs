//! ViT fine-tuning as MPI ranks (feature `mpi`; CI installs OpenMPI): this test binary starts
//! itself under `mpirun`, each rank running [`rank_of_a_job`], which trains through the same
//! `train` the `train-vit` binary calls (the binary's MPI wiring is tested on `train-llm`).
#![cfg(feature = "mpi")]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use burn::backend::{Autodiff, Flex};
use common::{tiny_config, write_task, Scratch};
use wegeft::io::read_safetensors;
use wegeft::train::{MpiSession, Session};
use wegeft::MethodName;
use wegeft_vision::train::{train, Method, TrainConfig};

type B = Autodiff<Flex>;

/// The tiny ViT on all 24 training images in one batch (every worker count sees the same batch),
/// without drop_path draws.
fn config(task: &Path) -> TrainConfig {
    tiny_config(task, Method::Adapter(MethodName::Wegeft)).with_batch_size(24).with_drop_path(0.0)
}

/// One rank of a job [`ranks_train_the_adapter_and_head_one_process_trains`] starts; run
/// directly, it has nothing to do.
#[test]
fn rank_of_a_job() {
    let (Ok(task), Ok(run), Ok(devices)) = (std::env::var("WEGEFT_TEST_TASK"), std::env::var("WEGEFT_TEST_RUN"), std::env::var("WEGEFT_TEST_DEVICES")) else {
        return;
    };
    let session = MpiSession::start(Duration::from_secs(60)).unwrap();
    let devices = vec![Default::default(); devices.parse().unwrap()];
    train::<B>(&config(Path::new(&task)), Path::new(&run), Session::default(), &devices).unwrap().unwrap();
    drop(session);
}

#[test]
fn ranks_train_the_adapter_and_head_one_process_trains() {
    let scratch = Scratch::new("mpi");
    let task = write_task(&scratch.0, 4);
    train::<B>(&config(&task), &scratch.0.join("one"), Session::default(), &[Default::default()]).unwrap().unwrap();
    for (name, ranks, devices, workers) in [("ranks", 2, 1, 2), ("devices", 1, 2, 2), ("both", 2, 2, 4)] {
        let run = scratch.0.join(name);
        let output = Command::new("mpirun")
            .args(["--oversubscribe", "--allow-run-as-root", "-n", &ranks.to_string()])
            .arg(std::env::current_exe().unwrap())
            .args(["rank_of_a_job", "--exact", "--nocapture", "--test-threads", "1"])
            .env("WEGEFT_TEST_TASK", &task)
            .env("WEGEFT_TEST_RUN", &run)
            .env("WEGEFT_TEST_DEVICES", devices.to_string())
            .output()
            .unwrap();
        let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success(), "{name}: {said}");
        let results: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
        assert_eq!(results["world_size"].as_u64(), Some(workers), "{name}");
        for file in ["adapter/adapter_model.safetensors", "head.safetensors"] {
            let (a, b) = (read_safetensors(&scratch.0.join("one").join(file)).unwrap(), read_safetensors(&run.join(file)).unwrap());
            assert_eq!(a.len(), b.len());
            for (key, tensor) in &a {
                let scale = tensor.values.iter().fold(0f32, |m, v| m.max(v.abs()));
                let diff = tensor.values.iter().zip(&b[key].values).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
                assert!(diff <= 1e-5 * scale.max(1.0), "{name}, {key}: differs from one process by {diff} (scale {scale})");
            }
        }
    }
}
