//! Training through burn's Learner on a tiny task: outputs, exact resume, what each method
//! trains, the optimizer's decay groups, the schedule, and the suite report.

mod common;

use burn::backend::{Autodiff, Flex};
use burn::lr_scheduler::LrScheduler;
use burn::module::AutodiffModule;
use burn::nn::LinearConfig;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::{ElementConversion, Tensor};
use common::{tiny_config, write_task, Scratch};
use wegeft::io::read_safetensors;
use wegeft_vision::data::{Split, TaskInfo};
use burn::module::Module;
use wegeft::train::{SelectiveDecayAdamW, Session, WarmupCosine};
use wegeft::{MethodName, ParamReport, Precision};
use wegeft_vision::train::{build_model, load_trained, markdown_report, train, Method, RunResults};

type B = Autodiff<Flex>;

/// Flex's random generator is one global: every test here that seeds or draws from it (init,
/// drop_path) holds this lock, or a concurrent test would reseed it in the middle of a run.
static GLOBAL_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_run_writes_every_output_and_reloads_to_the_same_accuracy() {
    let _rng = GLOBAL_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new("run-outputs");
    let task = write_task(&scratch.0, 4);
    let config = tiny_config(&task, Method::Adapter(MethodName::Wegeft));
    let run = scratch.0.join("run");
    let results = train::<B>(&config, &run, Session::default(), &[Default::default()]).unwrap().unwrap();

    for file in ["config.json", "head.safetensors", "adapter/adapter_config.json", "metrics.csv", "results.json"] {
        assert!(run.join(file).is_file(), "missing {file}");
    }
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert!(csv.contains("3,train,Loss,") && csv.contains("3,valid,Accuracy,"), "{csv}");
    let head = read_safetensors(&run.join("head.safetensors")).unwrap();
    assert_eq!(head["head.weight"].shape, [3, 16]);
    assert_eq!(results.eval.images, 12);
    assert_eq!(results.trainable_excluding_head(), 2 * (2 * 2 * 16));
    let merged = results.merged_eval.expect("an adapter run evaluates merged too");
    assert_eq!(merged.accuracy, results.eval.accuracy);

    let (_, task_info, model) = load_trained::<Flex>(&run, &Default::default()).unwrap();
    let test = wegeft_vision::train::load_split(&config, &task_info, Split::Test).unwrap();
    let batcher = wegeft_vision::data::ImageBatcher::new(config.vit.normalization.clone(), 8);
    let again = wegeft_vision::train::evaluate(&model, test, batcher, 4, &Default::default(), "reloaded").unwrap();
    assert_eq!(again.accuracy, results.eval.accuracy);
}

#[test]
fn dora_and_vera_runs_train_merge_and_reload_to_the_same_accuracy() {
    let _rng = GLOBAL_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new("dora-vera");
    let task = write_task(&scratch.0, 4);
    for name in [MethodName::Dora, MethodName::Vera] {
        let config = tiny_config(&task, Method::Adapter(name)).with_epochs(2);
        let run = scratch.0.join(name.to_string());
        let results = train::<B>(&config, &run, Session::default(), &[Default::default()]).unwrap().unwrap();
        let merged = results.merged_eval.expect("an adapter run evaluates merged too");
        assert_eq!(merged.accuracy, results.eval.accuracy, "{name}");
        // The tensors that start at zero (LoRA's B under DoRA, VeRA's b) have moved.
        let saved = read_safetensors(&run.join("adapter/adapter_model.safetensors")).unwrap();
        let started_at_zero = saved.iter().filter(|(key, _)| key.ends_with("lora_B.weight") || key.ends_with("vera_lambda_b"));
        assert!(started_at_zero.clone().count() == 4 && started_at_zero.flat_map(|(_, t)| &t.values).any(|&v| v != 0.0), "{name}: the adapter did not train");
        let (_, task_info, model) = load_trained::<Flex>(&run, &Default::default()).unwrap();
        let test = wegeft_vision::train::load_split(&config, &task_info, Split::Test).unwrap();
        let batcher = wegeft_vision::data::ImageBatcher::new(config.vit.normalization.clone(), 8);
        let again = wegeft_vision::train::evaluate(&model, test, batcher, 4, &Default::default(), "reloaded").unwrap();
        assert_eq!(again.accuracy, results.eval.accuracy, "{name}");
    }
}

#[test]
fn a_resumed_run_retraces_the_interrupted_one() {
    let _rng = GLOBAL_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new("resume");
    let task = write_task(&scratch.0, 4);
    let config = tiny_config(&task, Method::Adapter(MethodName::Lora));
    let device: burn::tensor::Device<B> = Default::default();
    let straight = train::<B>(&config, &scratch.0.join("straight"), Session::default(), &[device.clone()]).unwrap().unwrap();
    let interrupted = scratch.0.join("interrupted");
    let stopped = train::<B>(&config, &interrupted, Session { stop_after: Some(1), ..Session::default() }, &[device.clone()]).unwrap();
    assert!(stopped.is_none());
    let resume = Session { resume: true, ..Session::default() };
    let resumed = train::<B>(&config, &interrupted, resume, &[device.clone()]).unwrap().unwrap();
    assert_eq!(resumed.eval.accuracy, straight.eval.accuracy);
    // The metric history is the uninterrupted run's: every epoch once, under its own number.
    let epochs = |dir: &str| {
        let csv = std::fs::read_to_string(scratch.0.join(dir).join("metrics.csv")).unwrap();
        let mut rows: Vec<String> = csv.lines().skip(1).map(|row| row.rsplit_once(',').unwrap().0.to_string()).collect();
        rows.sort();
        rows
    };
    assert_eq!(epochs("interrupted"), epochs("straight"));
    assert!(epochs("straight").iter().any(|row| row.starts_with("3,train,Loss")));
    // Resuming a finished run changes nothing: its results stand.
    let again = train::<B>(&config, &interrupted, resume, &[device.clone()]).unwrap().unwrap();
    assert_eq!(again.train_seconds, resumed.train_seconds);

    let weights = |dir: &str| read_safetensors(&scratch.0.join(dir).join("adapter/adapter_model.safetensors")).unwrap();
    let (a, b) = (weights("straight"), weights("interrupted"));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (key, tensor) in &a {
        let max_diff = tensor.values.iter().zip(&b[key].values).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(max_diff <= 1e-6, "{key}: resumed differs by {max_diff}");
    }
    let changed = a.values().any(|t| t.values.iter().any(|v| *v != 0.0));
    assert!(changed, "LoRA's B starts at zero and must have trained");
}

#[test]
fn a_half_precision_run_trains_an_f32_adapter_and_resumes_exactly() {
    let _rng = GLOBAL_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new("half");
    let task = write_task(&scratch.0, 2);
    let device: burn::tensor::Device<B> = Default::default();
    let adapter = |run: &std::path::Path| read_safetensors(&run.join("adapter/adapter_model.safetensors")).unwrap();
    // f16 scales the loss, bf16 does not; both keep the adapter, the head and AdamW's moments in f32.
    for precision in [Precision::F16, Precision::Bf16] {
        let config = tiny_config(&task, Method::Adapter(MethodName::Wegeft)).with_precision(Some(precision));
        let straight = scratch.0.join(format!("{precision}-straight"));
        let results = train::<B>(&config, &straight, Session::default(), &[device.clone()]).unwrap().unwrap();
        assert!((0.0..=100.0).contains(&results.eval.accuracy));
        let interrupted = scratch.0.join(format!("{precision}-interrupted"));
        assert!(train::<B>(&config, &interrupted, Session { stop_after: Some(1), ..Session::default() }, &[device.clone()]).unwrap().is_none());
        let resumed = train::<B>(&config, &interrupted, Session { resume: true, ..Session::default() }, &[device.clone()]).unwrap().unwrap();
        assert_eq!(resumed.eval.accuracy, results.eval.accuracy);
        // The resumed run reloads its blocks in half precision: the same adapter, to the bit.
        let (a, b) = (adapter(&straight), adapter(&interrupted));
        for (key, tensor) in &a {
            assert_eq!(tensor.values, b[key].values, "{precision} {key}: the resumed run differs");
            assert!(tensor.values.iter().all(|v| v.is_finite()), "{precision} {key}");
        }
        assert!(a.values().any(|t| t.values.iter().any(|v| *v != 0.0)), "{precision}: ψ starts at zero and must have trained");
        let (_, _, model) = load_trained::<Flex>(&straight, &device).unwrap();
        assert_eq!(model.blocks[0].mlp.fc1.base.weight.val().dtype(), precision.float_dtype().into(), "evaluated in {precision}");
    }
    let error = train::<B>(&tiny_config(&task, Method::Full).with_precision(Some(Precision::Bf16)), &scratch.0.join("full"), Session::default(), &[device.clone()]).unwrap_err();
    assert!(error.to_string().contains("trains the backbone"), "{error}");
    let error = build_model::<burn::backend::NdArray>(&tiny_config(&task, Method::Adapter(MethodName::Wegeft)).with_precision(Some(Precision::F16)), &TaskInfo::of_dir(&task).unwrap(), &Default::default()).unwrap_err();
    assert!(error.to_string().contains("no f16 tensors"), "{error}");
}

#[test]
fn a_run_directory_is_not_reused_or_resumed_with_other_settings() {
    let _rng = GLOBAL_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new("run-dir");
    let task = write_task(&scratch.0, 1);
    let config = tiny_config(&task, Method::Adapter(MethodName::Wegeft)).with_epochs(1);
    let run = scratch.0.join("run");
    let device: burn::tensor::Device<B> = Default::default();
    train::<B>(&config, &run, Session::default(), &[device.clone()]).unwrap().unwrap();
    let error = train::<B>(&config, &run, Session::default(), &[device.clone()]).unwrap_err();
    assert!(error.to_string().contains("--overwrite"), "{error}");
    let resume = Session { resume: true, ..Session::default() };
    let error = train::<B>(&config.clone().with_rank(Some(4)).with_method(Method::Adapter(MethodName::Lora)), &run, resume, &[device.clone()]).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("rank: 2 → 4") && message.contains(r#"method: "wegeft" → "lora""#), "{message}");
    let overwrite = Session { overwrite: true, ..Session::default() };
    let results = train::<B>(&config.clone().with_method(Method::Adapter(MethodName::Lora)), &run, overwrite, &[device.clone()]).unwrap().unwrap();
    assert_eq!(results.method, Method::Adapter(MethodName::Lora));

    // A run written before a setting existed (here `precision`) resumes and reloads under the
    // setting's default; asking for another value is still a difference.
    let path = run.join("config.json");
    let mut stored: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(stored.as_object_mut().unwrap().remove("precision").is_some());
    std::fs::write(&path, stored.to_string()).unwrap();
    train::<B>(&config.clone().with_method(Method::Adapter(MethodName::Lora)), &run, resume, &[device.clone()]).unwrap().unwrap();
    load_trained::<Flex>(&run, &device).unwrap();
    let error = train::<B>(&config.clone().with_method(Method::Adapter(MethodName::Lora)).with_precision(Some(Precision::Bf16)), &run, resume, &[device.clone()]).unwrap_err();
    assert!(error.to_string().contains(r#"precision: (absent) → "bf16""#), "{error}");
}

#[test]
fn unusable_settings_are_refused_before_training() {
    let _rng = GLOBAL_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new("settings");
    let task = write_task(&scratch.0, 1);
    let device: burn::tensor::Device<B> = Default::default();
    let base = tiny_config(&task, Method::Adapter(MethodName::Wegeft));
    for (config, needle) in [
        (base.clone().with_batch_size(0), "batch_size"),
        (base.clone().with_image_size(0), "image_size"),
        (base.clone().with_image_size(100_002), "image_size must be 1 to 2048"),
        (base.clone().with_epochs(0), "epochs"),
        (base.clone().with_lr(f64::NAN), "learning rate"),
        (base.clone().with_lr(-1.0), "learning rate"),
        (base.clone().with_rank(Some(100_000_000_000)), "rank"),
    ] {
        let run = scratch.0.join(needle.replace(' ', "-"));
        let error = train::<B>(&config, &run, Session { overwrite: true, ..Session::default() }, &[device.clone()]).unwrap_err();
        assert!(error.to_string().contains(needle), "{needle}: {error}");
    }
    std::fs::write(task.join("task.json"), r#"{"name": "colours", "group": "Natural", "classes": 100000000000}"#).unwrap();
    let error = TaskInfo::of_dir(&task).unwrap_err();
    assert!(error.to_string().contains("task.json") && error.to_string().contains("classes"), "{error}");
}

#[test]
fn a_diverging_run_stops_with_an_error_naming_the_step() {
    let _rng = GLOBAL_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new("diverging");
    let task = write_task(&scratch.0, 2);
    // A rate this large sends the weights, then the logits, to infinity within a few steps.
    let config = tiny_config(&task, Method::Full).with_lr(1e30).with_warmup_epochs(0);
    let error = train::<B>(&config, &scratch.0.join("run"), Session::default(), &[Default::default()]).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("loss became") && message.contains("epoch 1, iteration"), "{message}");
    assert!(message.contains("start again with `--overwrite`"), "no checkpoint precedes the divergence: {message}");
}

#[test]
fn after_a_divergence_the_last_checkpoint_is_finite_and_resume_continues_from_it() {
    use wegeft::PeftError;
    use wegeft_vision::VisionError;
    let _rng = GLOBAL_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new("diverging-later");
    let task = write_task(&scratch.0, 2);
    // One step per epoch; warmup starts at 1e-7, so epoch 1 is a sane step and epoch 2's step
    // (at 5e29) sends the weights that epoch 2's checkpoint holds towards infinity.
    let config = tiny_config(&task, Method::Full).with_lr(1e30).with_epochs(6).with_warmup_epochs(2).with_batch_size(64);
    let run = scratch.0.join("run");
    let device: burn::tensor::Device<B> = Default::default();
    let diverged = |session| match train::<B>(&config, &run, session, &[device.clone()]) {
        Err(VisionError::Peft(PeftError::NonFiniteLoss { epoch, iteration, resume_after, .. })) => (epoch, iteration, resume_after),
        other => panic!("expected a divergence, got {:?}", other.map(|r| r.map(|r| r.eval.accuracy))),
    };
    let (epoch, iteration, kept) = diverged(Session::default());
    assert!(epoch >= 3, "the divergence comes after the sane epoch and the wild step: epoch {epoch}");
    let kept = kept.expect("epoch 1's checkpoint is kept");
    assert!(kept < epoch && (iteration > 1 || kept < epoch - 1), "epoch {epoch} iteration {iteration}, kept {kept}");
    assert_eq!(wegeft::train::last_checkpoint(&run).unwrap(), kept);

    // The kept weights are finite: their logits are, on every test image.
    let info = TaskInfo::of_dir(&task).unwrap();
    let checkpoint = run.join(format!("checkpoint/model-{kept}"));
    let model = build_model::<Flex>(&config, &info, &Default::default()).unwrap();
    let model = model.load_file(checkpoint, &wegeft::train::CheckpointRecorder::default(), &Default::default()).unwrap();
    let test = wegeft_vision::train::load_split(&config, &info, Split::Test).unwrap();
    let batcher = wegeft_vision::data::ImageBatcher::new(config.vit.normalization.clone(), 8);
    wegeft_vision::train::evaluate(&model, test.clone(), batcher.clone(), 4, &Default::default(), "kept").unwrap();

    // `--resume` continues from it (and, retracing the same steps, diverges at the same place).
    assert_eq!(diverged(Session { resume: true, ..Session::default() }), (epoch, iteration, Some(kept)));

    // Weights too large to use are an error when evaluated, not an accuracy.
    let mut wild = model;
    let head = wild.head.take().unwrap();
    wild.head = Some(burn::nn::Linear { weight: head.weight.map(|w| w.ones_like() * 3e38), ..head });
    let error = wegeft_vision::train::evaluate(&wild, test, batcher, 4, &Default::default(), "wild").unwrap_err();
    assert!(matches!(error, VisionError::NonFiniteLogits { .. }) && error.to_string().contains("wild"), "{error}");
}

#[test]
fn each_method_trains_what_it_should() {
    let _rng = GLOBAL_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new("methods");
    let task = write_task(&scratch.0, 1);
    let info = TaskInfo::of_dir(&task).unwrap();
    let counts = |method| {
        let model = build_model::<B>(&tiny_config(&task, method), &info, &Default::default()).unwrap();
        let head = model.head.as_ref().unwrap().num_params();
        let report = ParamReport::of(&model);
        // (trainable besides the head, head, every parameter)
        (report.trainable() - head, head, report.trainable() + report.frozen)
    };
    let head = 16 * 3 + 3;
    let linear = counts(Method::Linear);
    assert_eq!((linear.0, linear.1), (0, head));
    // Shared: one pair per module type (attn.proj 16→16, mlp.fc1 16→32); per layer: one per layer.
    assert_eq!(counts(Method::Adapter(MethodName::Wegeft)).0, 2 * (2 * 2 * 16));
    assert_eq!(counts(Method::Adapter(MethodName::WegeftLayer)).0, 4 * (2 * 2 * 16));
    assert_eq!(counts(Method::Adapter(MethodName::Lora)).0, 2 * 2 * (16 + 16) + 2 * 2 * (16 + 32));
    // DoRA: LoRA plus a magnitude per output; VeRA: b (d_out) and d (r) per layer, trainable,
    // and its shared projections (r × the largest d_in, the largest d_out × r) stored frozen.
    assert_eq!(counts(Method::Adapter(MethodName::Dora)).0, 2 * 2 * (16 + 16) + 2 * 2 * (16 + 32) + 2 * 16 + 2 * 32);
    assert_eq!(counts(Method::Adapter(MethodName::Vera)).0, 2 * (16 + 2) + 2 * (32 + 2));
    let vera = build_model::<B>(&tiny_config(&task, Method::Adapter(MethodName::Vera)), &info, &Default::default()).unwrap();
    assert_eq!(ParamReport::of(&vera).adapter_frozen, 2 * 16 + 32 * 2);
    let full = counts(Method::Full);
    assert_eq!(full.0 + full.1, full.2);
}

#[test]
fn weight_decay_skips_biases_and_norms() {
    let _rng = GLOBAL_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let device: burn::tensor::Device<B> = Default::default();
    let layer = LinearConfig::new(3, 2).init::<B>(&device);
    let (weight, bias) = (layer.weight.val(), layer.bias.as_ref().unwrap().val());
    // A zero loss gradient: AdamW's step is then pure decay.
    let loss = layer.forward(Tensor::<B, 2>::ones([1, 3], &device)).sum() * 0.0;
    let grads = GradientsParams::from_grads(loss.backward(), &layer);
    let mut optim = SelectiveDecayAdamW::new(0.5);
    let stepped = optim.step(0.1, layer, grads).valid();
    let ratio = |a: Tensor<Flex, 1>, b: Tensor<Flex, 1>| (a / b).mean().into_scalar().elem::<f64>();
    let decayed = ratio(stepped.weight.val().flatten(0, 1), weight.inner().flatten(0, 1));
    assert!((decayed - 0.95).abs() < 1e-6, "weight scaled by {decayed}");
    let kept = ratio(stepped.bias.unwrap().val(), bias.inner());
    assert!((kept - 1.0).abs() < 1e-6, "bias scaled by {kept}");
}

#[test]
fn schedule_warms_up_linearly_then_decays_along_a_cosine() {
    let mut schedule = WarmupCosine::new(1e-3, 10, 110);
    let lrs: Vec<f64> = (0..110).map(|_| LrScheduler::step(&mut schedule)).collect();
    assert!((lrs[0] - 1e-7).abs() < 1e-12);
    assert!((lrs[5] - (1e-7 + (1e-3 - 1e-7) * 0.5)).abs() < 1e-12);
    assert!((lrs[10] - 1e-3).abs() < 1e-12);
    assert!((lrs[60] - (1e-6 + 0.5 * (1e-3 - 1e-6))).abs() < 1e-12);
    assert!(lrs[10..].windows(2).all(|w| w[1] <= w[0]));
    let restored = WarmupCosine::new(1e-3, 10, 110).load_record::<Flex>(schedule.to_record::<Flex>());
    assert_eq!(restored.at(109), schedule.at(109));
}

#[test]
fn the_suite_report_gives_group_means_and_both_averages() {
    let json = |task: &str, group: &str, method: &str, accuracy: f64| {
        serde_json::json!({
            "task": task, "group": group, "method": method, "rank": null,
            "params": {"adapter": 10, "head": 3, "frozen": 87}, "head_params": 3,
            "eval_split": "test",
            "eval": {"accuracy": accuracy, "images": 10, "images_per_second": 1.0},
            "merged_eval": null, "epochs": 1, "image_size": 8, "batch_size": 4, "lr": 0.001,
            "weight_decay": 0.0, "seed": 1, "train_images_per_second": 2.0, "train_seconds": 1.0,
            "selection": "last epoch"
        })
    };
    let runs: Vec<RunResults> = [
        json("a", "Natural", "wegeft", 90.0),
        json("b", "Natural", "wegeft", 70.0),
        json("c", "Structured", "wegeft", 40.0),
    ]
    .into_iter()
    .map(|v| serde_json::from_value(v).unwrap())
    .collect();
    let report = markdown_report(&runs);
    // Groups 80 and 40: mean of groups 60.00; mean of tasks 66.67.
    assert!(report.contains("| wegeft | 10 | 90.00 | 70.00 | 40.00 | 80.00 | 40.00 | 60.00 | 66.67 | 2.0 |"), "{report}");
}

#[test]
fn explain_vit_draws_the_cluster_maps_of_a_wegeft_run_and_refuses_lora() {
    let _rng = GLOBAL_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new("explain");
    let task = write_task(&scratch.0, 1);
    let device: burn::tensor::Device<B> = Default::default();
    let explain = |run: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_explain-vit")).arg(run).args(["--images", "2"]).output().unwrap()
    };
    let wegeft = scratch.0.join("wegeft");
    train::<B>(&tiny_config(&task, Method::Adapter(MethodName::Wegeft)).with_epochs(1), &wegeft, Session::default(), &[device.clone()]).unwrap();
    let output = explain(&wegeft);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    // Blocks 0 and 1 (both attn.proj are adapted) in rows; the image, 2 maps and 2 masks in columns.
    let picture = image::open(wegeft.join("explain/image-1.png")).unwrap();
    assert_eq!((picture.width(), picture.height()), (5 * (8 + 2), 2 * (8 + 2)));
    let html = std::fs::read_to_string(wegeft.join("explain/index.html")).unwrap();
    assert!(html.contains("image-0.png") && html.contains("image-1.png") && html.contains("block 0, block 1"), "{html}");

    // Scoring needs ground-truth masks: refused, naming an image, until they are there.
    let score = |run: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_explain-vit")).arg(run).args(["--images", "1", "--score", "3"]).output().unwrap()
    };
    let output = score(&wegeft);
    assert!(!output.status.success() && String::from_utf8_lossy(&output.stderr).contains("000000.png"));
    let masks = task.join("masks/test");
    std::fs::create_dir_all(&masks).unwrap();
    for index in 0..3 {
        image::GrayImage::from_fn(8, 8, |x, _| image::Luma([if x < 4 { 255 } else { 0 }])).save(masks.join(format!("{index:06}.png"))).unwrap();
    }
    let output = score(&wegeft);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(wegeft.join("explain/explain.json")).unwrap()).unwrap();
    assert_eq!((report["images"].as_u64(), report["rank"].as_u64(), report["object_fraction"].as_f64()), (Some(3), Some(2), Some(0.5)));
    let heads: Vec<&str> = report["heads"].as_array().unwrap().iter().map(|h| h["head"].as_str().unwrap()).collect();
    assert_eq!(heads, ["trained", "random_phi", "principal_w"]);
    for head in report["heads"].as_array().unwrap() {
        let layers = head["layers"].as_array().unwrap();
        assert_eq!(layers.iter().map(|l| l["layer"].as_u64().unwrap()).collect::<Vec<_>>(), [0, 1]);
        for layer in layers {
            let clusters = layer["clusters"].as_array().unwrap();
            assert_eq!(clusters.len(), 2);
            let best = clusters.iter().map(|c| c["object_iou"].as_f64().unwrap()).fold(0.0, f64::max);
            assert_eq!(layer["best_object"]["iou"].as_f64(), Some(best));
            assert!((0.0..=1.0).contains(&best));
        }
    }

    let lora = scratch.0.join("lora");
    train::<B>(&tiny_config(&task, Method::Adapter(MethodName::Lora)).with_epochs(1), &lora, Session::default(), &[device.clone()]).unwrap();
    let output = explain(&lora);
    assert!(!output.status.success() && String::from_utf8_lossy(&output.stderr).contains("a lora update"));
}

/// Two data-parallel workers (threads on the one CPU device, standing in for two devices),
/// each on half of a fixed global batch, take the steps one device takes on the whole batch:
/// burn's multi-device Learner sums their gradients and the optimizer averages them.
#[test]
fn two_data_parallel_workers_train_the_adapter_one_device_would() {
    let _rng = GLOBAL_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new("data-parallel");
    let task = write_task(&scratch.0, 4);
    // train800val200 holds 24 images: one step per epoch on the whole set; no drop_path draws.
    let config = tiny_config(&task, Method::Adapter(MethodName::Wegeft)).with_batch_size(24).with_drop_path(0.0);
    let device: burn::tensor::Device<B> = Default::default();
    let one = train::<B>(&config, &scratch.0.join("one"), Session::default(), &[device]).unwrap().unwrap();
    let two = train::<B>(&config, &scratch.0.join("two"), Session::default(), &[device, device]).unwrap().unwrap();
    assert_eq!((one.world_size, two.world_size), (1, 2));
    let written: RunResults = serde_json::from_str(&std::fs::read_to_string(scratch.0.join("two/results.json")).unwrap()).unwrap();
    assert_eq!(written.world_size, 2);
    let weights = |run: &str, file: &str| read_safetensors(&scratch.0.join(run).join(file)).unwrap();
    for file in ["adapter/adapter_model.safetensors", "head.safetensors"] {
        let (a, b) = (weights("one", file), weights("two", file));
        for (key, tensor) in &a {
            let scale = tensor.values.iter().fold(0f32, |m, v| m.max(v.abs()));
            let diff = tensor.values.iter().zip(&b[key].values).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            assert!(diff <= 1e-5 * scale.max(1.0), "{key}: two workers differ from one by {diff} (scale {scale})");
        }
    }
    // A batch that does not split over the workers is refused before training.
    let error = train::<B>(&config.clone().with_batch_size(5), &scratch.0.join("odd"), Session::default(), &[device, device]).unwrap_err();
    assert!(error.to_string().contains("does not split evenly over 2 devices"), "{error}");

    // 24 images over 5 workers: cut to 20, equal shards of 4, 4 steps in every epoch (burn logs
    // each worker's loss: 20 lines an epoch).
    let uneven = config.clone().with_batch_size(5);
    let run = scratch.0.join("uneven");
    let stop = Session { stop_after: Some(1), ..Session::default() };
    assert!(train::<B>(&uneven, &run, stop, &[device; 5]).unwrap().is_none());
    let resume = Session { resume: true, ..Session::default() };
    let error = train::<B>(&uneven, &run, resume, &[device; 2]).unwrap_err();
    assert!(error.to_string().contains("trained by 5 data-parallel worker(s)"), "{error}");
    let results = train::<B>(&uneven, &run, resume, &[device; 5]).unwrap().unwrap();
    assert_eq!(results.world_size, 5);
    for epoch in 1..=uneven.epochs {
        let log = std::fs::read_to_string(run.join(format!("train/epoch-{epoch}/Loss.log"))).unwrap();
        assert_eq!(log.lines().filter(|line| !line.trim().is_empty()).count(), 4 * 5, "epoch {epoch}: {log}");
    }
}

/// The all-reduce of data-parallel training, as burn's multi-device Learner does it: each
/// worker's gradients of its half batch, summed per parameter (`MultiGradientsParams`) and
/// averaged over the two workers, are the full batch's gradient. The shared WeGeFT pair is one
/// tensor, so its gradient is the sum over layers and over workers.
#[test]
fn gradients_summed_over_workers_and_averaged_are_the_full_batch_gradient() {
    use burn::optim::MultiGradientsParams;
    use burn::tensor::backend::Device as _;
    use burn::tensor::{Distribution, Int};
    use wegeft_vision::data::ImageBatch;
    let _rng = GLOBAL_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new("all-reduce");
    let task = write_task(&scratch.0, 1);
    let config = tiny_config(&task, Method::Adapter(MethodName::Wegeft)).with_drop_path(0.0);
    let device: burn::tensor::Device<B> = Default::default();
    let model = build_model::<B>(&config, &TaskInfo::of_dir(&task).unwrap(), &device).unwrap();
    let images = Tensor::<B, 4>::random([6, 3, 8, 8], Distribution::Normal(0.0, 1.0), &device);
    let targets = Tensor::<B, 1, Int>::from_ints([0, 1, 2, 2, 1, 0], &device);
    let grads_of = |range: std::ops::Range<usize>| {
        let batch = ImageBatch { images: images.clone().slice([range.clone()]), targets: targets.clone().slice([range]) };
        GradientsParams::from_grads(model.classify(batch).loss.backward(), &model)
    };
    let full = grads_of(0..6);
    let mut workers = MultiGradientsParams { grads: vec![(grads_of(0..3), device.to_id()), (grads_of(3..6), device.to_id())] };
    let wegeft::Adapter::Wegeft(pair) = &model.adapters.adapters[0] else { panic!("a WeGeFT run") };
    // ψ starts at zero (the update starts at zero), so φ's first gradient is zero; ψ's is not.
    for (id, trained) in [(pair.phi.id, false), (pair.psi.id, true)] {
        let expected = full.get::<Flex, 2>(id).unwrap();
        let (summed, _) = workers.remove::<Flex, 2>(id).unwrap();
        let averaged = summed.div_scalar(2.0);
        let scale = expected.clone().abs().max().into_scalar().elem::<f32>();
        let diff = (averaged - expected).abs().max().into_scalar().elem::<f32>();
        assert!((scale > 0.0) == trained && diff <= 1e-5 * scale, "{id}: averaged worker gradients differ by {diff} (scale {scale})");
    }
}
