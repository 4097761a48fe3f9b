//! Instruction data, the response-only loss batches, answer extraction, and a whole `train_llm`
//! run through burn's Learner on the tiny fixture model.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use burn::backend::{Autodiff, Flex};
use burn::data::dataloader::batcher::Batcher;
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use burn::train::TrainStep;
use wegeft_llm::train::data::{read_jsonl, Example, Tokenized};
use wegeft_llm::train::eval::Extract;
use wegeft_llm::train::step::{CausalLm, LmBatch, LmBatcher, IGNORED};
use wegeft::MethodName;
use wegeft_llm::train::{train_llm, LlmTrainConfig};
use wegeft::train::{LossScaler, Session};
use wegeft::io::WeightStore;
use wegeft_llm::{BasePrecision, Decoder, DecoderConfig, LlmError, Message};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wegeft-llm-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn alpaca_and_chat_lines_become_examples_and_bad_lines_name_their_number() {
    let dir = scratch("jsonl");
    let file = dir.join("data.jsonl");
    let lines = [
        r#"{"instruction": "Add", "input": "2 and 3", "output": "5"}"#,
        r#"{"instruction": "Say hi", "output": "hi"}"#,
        "",
        r#"{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}]}"#,
    ];
    std::fs::write(&file, lines.join("\n")).unwrap();
    let examples = read_jsonl(&file).unwrap();
    let user = |text: &str| vec![Message::new("user", text)];
    assert_eq!(examples[0], Example { messages: user("Add\n\n2 and 3"), response: "5".into() });
    assert_eq!(examples[1].question(), "Say hi");
    assert_eq!(examples[2], Example { messages: vec![Message::new("system", "Be brief."), Message::new("user", "Q?")], response: "A.".into() });

    for (bad, line) in [(r#"{"instruction": "x"}"#, 2), (r#"{"messages": [{"role": "user", "content": "Q?"}]}"#, 2)] {
        std::fs::write(&file, format!("{}\n{bad}\n", lines[0])).unwrap();
        let error = read_jsonl(&file).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, LlmError::Format { .. }) && message.contains(&format!("line {line}")), "{message}");
        assert!(message.contains("data.jsonl"), "{message}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn batches_learn_only_the_response_tokens() {
    let items = vec![
        Tokenized { ids: vec![10, 11, 12, 13, 14], prompt_len: 3 },
        Tokenized { ids: vec![20, 21, 22], prompt_len: 2 },
    ];
    let batch: LmBatch<Flex> = LmBatcher { pad: 7 }.batch(items, &Default::default());
    let ints = |t: burn::tensor::Tensor<Flex, 2, burn::tensor::Int>| t.into_data().convert::<i64>().to_vec::<i64>().unwrap();
    let ignored = IGNORED as i64;
    assert_eq!(ints(batch.tokens), [10, 11, 12, 13, 20, 21, 7, 7]);
    // Position p predicts token p + 1; only response tokens (index >= prompt_len) count.
    assert_eq!(ints(batch.targets), [ignored, ignored, 13, 14, ignored, 22, ignored, ignored]);
    assert_eq!(batch.loss_mask.into_data().to_vec::<f32>().unwrap(), [0., 0., 1., 1., 0., 1., 0., 0.]);
    assert_eq!(*batch.padding, vec![vec![1, 1, 1, 1], vec![1, 1, 0, 0]]);
}

#[test]
fn answers_are_extracted_in_the_papers_style() {
    assert_eq!(Extract::LastNumber.answer("16 - 76 = -60. The answer is -60."), Some("-60".into()));
    assert_eq!(Extract::LastNumber.answer("It costs 1,234.50 dollars"), Some("1234.5".into()));
    assert_eq!(Extract::LastNumber.answer("no digits"), None);
    assert_eq!(Extract::Choice.answer("The answer is (B) because A is wrong"), Some("B".into()));
    assert_eq!(Extract::FirstLine.answer(" yes \nbecause"), Some("yes".into()));
    assert_eq!(Extract::AnswerWord.answer("the correct answer is Solution2."), Some("solution2".into()));
    assert_eq!(Extract::AnswerWord.answer("answer is: False"), Some("false".into()));
    assert_eq!(Extract::AnswerWord.answer("option10 or answers"), None);
    assert_eq!(<Extract as clap::ValueEnum>::from_str("answer-word", false), Ok(Extract::AnswerWord));
}

/// ndarray's random generator is one global: runs that seed it and draw from it (adapter
/// initialisation, dropout) take turns, or a parallel test would shift their draws.
static GLOBAL_RNG: Mutex<()> = Mutex::new(());

/// Twelve addition questions as train and test files in `dir`, and a config on the tiny model.
fn tiny_run(dir: &Path) -> LlmTrainConfig {
    let data: String = (0..12)
        .map(|i| format!("{{\"instruction\": \"What is {i} plus 1?\", \"output\": \"{}\"}}\n", i + 1))
        .collect();
    std::fs::write(dir.join("train.jsonl"), &data).unwrap();
    std::fs::write(dir.join("test.jsonl"), &data).unwrap();
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny_llama_untied");
    LlmTrainConfig::new(model, dir.join("train.jsonl"), dir.join("test.jsonl"))
}

fn adapter_values(run: &Path) -> Vec<(String, Vec<f32>)> {
    let bytes = std::fs::read(run.join("adapter/adapter_model.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut values: Vec<_> = tensors
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, view.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()))
        .collect();
    values.sort_by(|a: &(String, Vec<f32>), b| a.0.cmp(&b.0));
    values
}

#[test]
fn a_resumed_run_retraces_the_interrupted_one() {
    let _rng = GLOBAL_RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = scratch("resume");
    // WeGeFT with its dropout on W: the resumed epoch must replay the same order and draws.
    let config = tiny_run(&dir).with_rank(Some(2)).with_epochs(2).with_batch_size(4).with_eval_limit(2).with_max_new_tokens(2);
    type A = Autodiff<Flex>;
    let device: burn::tensor::Device<A> = Default::default();
    train_llm::<A>(&config, &dir.join("straight"), Session::default(), &[device]).unwrap().unwrap();
    let interrupted = dir.join("interrupted");
    let stopped = train_llm::<A>(&config, &interrupted, Session { stop_after: Some(1), ..Session::default() }, &[device]).unwrap();
    assert!(stopped.is_none() && !interrupted.join("results.json").exists());
    train_llm::<A>(&config, &interrupted, Session { resume: true, ..Session::default() }, &[device.clone()]).unwrap().unwrap();
    let (straight, resumed) = (adapter_values(&dir.join("straight")), adapter_values(&interrupted));
    assert_eq!(straight.len(), resumed.len());
    for ((name, a), (_, b)) in straight.iter().zip(&resumed) {
        let diff = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(diff <= 1e-6, "{name}: the resumed run differs by {diff}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_half_precision_run_trains_an_f32_adapter_and_resumes_exactly() {
    let _rng = GLOBAL_RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = scratch("half");
    type A = Autodiff<Flex>;
    let device: burn::tensor::Device<A> = Default::default();
    // f16 scales the loss, bf16 does not; both keep the adapter and AdamW's moments in f32.
    for precision in [BasePrecision::F16, BasePrecision::Bf16] {
        let config = tiny_run(&dir).with_rank(Some(2)).with_epochs(2).with_batch_size(4).with_eval_limit(2).with_max_new_tokens(2).with_precision(Some(precision));
        let straight = dir.join(format!("{precision}-straight"));
        let results = train_llm::<A>(&config, &straight, Session::default(), &[device.clone()]).unwrap().unwrap();
        assert_eq!(results.train_steps, 6);
        let interrupted = dir.join(format!("{precision}-interrupted"));
        assert!(train_llm::<A>(&config, &interrupted, Session { stop_after: Some(1), ..Session::default() }, &[device.clone()]).unwrap().is_none());
        train_llm::<A>(&config, &interrupted, Session { resume: true, ..Session::default() }, &[device.clone()]).unwrap().unwrap();
        // The resumed run reloads its base in half precision: the same adapter, to the bit.
        let (a, b) = (adapter_values(&straight), adapter_values(&interrupted));
        assert_eq!(a, b, "{precision}: the resumed run differs");
        assert!(a.iter().all(|(_, values)| values.iter().all(|v| v.is_finite())), "{precision}: non-finite adapter");
        assert!(a.iter().any(|(_, values)| values.iter().any(|v| *v != 0.0)), "{precision}: nothing trained");
    }
    // Loss scaling is per worker, so f16 trains on one device.
    let config = tiny_run(&dir).with_precision(Some(BasePrecision::F16));
    let error = train_llm::<A>(&config, &dir.join("two"), Session::default(), &[device.clone(), device]).unwrap_err();
    assert!(error.to_string().contains("f16 training runs on one device"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_train_llm_run_evaluates_before_and_after_and_saves_the_adapter() {
    let _rng = GLOBAL_RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = scratch("run");
    let config = tiny_run(&dir)
        .with_method(MethodName::Lora)
        .with_rank(Some(2))
        .with_epochs(2)
        .with_batch_size(4)
        .with_eval_limit(4)
        .with_max_new_tokens(3);
    let run = dir.join("run");
    let results = train_llm::<Autodiff<Flex>>(&config, &run, Session::default(), &[Default::default()]).unwrap().unwrap();
    assert_eq!(results.train_steps, 6);
    assert_eq!(results.eval_examples, 4);
    // LoRA r=2 on q (64→64), k, v (64→16), up (64→96), down (96→64) of 2 layers.
    assert_eq!(results.params.adapter, 2 * 2 * ((64 + 64) + 2 * (64 + 16) + (64 + 96) + (96 + 64)));
    for file in ["config.json", "results.json", "predictions_before.json", "predictions_after.json", "adapter/adapter_model.safetensors"] {
        assert!(run.join(file).is_file(), "missing {file}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `export-llm` for every method: the merged HF checkpoint and the PEFT adapter (WeGeFT as an
/// exact LoRA, the others as themselves) reproduce the trained model. With
/// `WEGEFT_PEFT_CHECK_DIR` set, the PEFT adapters and the logits are also written there for
/// `scripts/peft_loads_ours.py`, which loads them with HF PEFT.
#[test]
fn every_method_exports_a_merged_checkpoint_and_a_peft_adapter_that_reproduce_it() {
    use burn::tensor::{Int, Tensor, TensorData};
    use wegeft::io::WeightStore;
    use wegeft::{AdapterFile, Injector, Targets};
    use wegeft_llm::pretrained::hf_shards;
    use wegeft_llm::{load, Decoder, DecoderConfig};
    let _rng = GLOBAL_RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = scratch("export");
    let check_dir = std::env::var_os("WEGEFT_PEFT_CHECK_DIR").map(PathBuf::from);
    for method in [MethodName::Wegeft, MethodName::Dora, MethodName::Vera] {
        // The default targets (q, k, v, up, down): o_proj and gate_proj stay outside the plan.
        let config = tiny_run(&dir).with_method(method).with_rank(Some(2)).with_batch_size(4).with_eval_limit(2).with_max_new_tokens(2).with_lr(1e-2);
        let run = dir.join(format!("run-{method}"));
        train_llm::<Autodiff<Flex>>(&config, &run, Session::default(), &[Default::default()]).unwrap().unwrap();

        // What `export-llm RUN` does.
        type B = Flex;
        let device: burn::tensor::Device<Autodiff<Flex>> = Default::default();
        let mut pretrained = load::<B>(&config.model, config.injector().unwrap(), &device).unwrap();
        pretrained.model.adapters = wegeft::load_adapter(std::mem::take(&mut pretrained.model.adapters), run.join("adapter")).unwrap();
        let merged_dir = dir.join(format!("merged-{method}"));
        let peft_dir = dir.join(format!("peft-{method}"));
        pretrained.model.export_hf(&pretrained.config, &pretrained.tokenizer, &merged_dir).unwrap();
        wegeft::export_peft(&pretrained.model, &peft_dir).unwrap();

        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(vec![5i64, 17, 3, 90, 42, 8], [1, 6]), &device);
        let logits = |model: &Decoder<B>| model.forward(ids.clone(), None, None).into_data().convert::<f32>().to_vec::<f32>().unwrap();
        let adapted = logits(&pretrained.model);
        let merged_config = DecoderConfig::from_hf_json(&merged_dir.join("config.json")).unwrap();
        let weights = WeightStore::safetensors(&hf_shards(&merged_dir).unwrap()).unwrap();
        let merged = logits(&Decoder::load(&merged_config, weights, Injector::none(), &device).unwrap());
        // The exported adapter read back as any PEFT adapter is: its config says the method.
        let file = AdapterFile::read(&peft_dir).unwrap();
        let targets = config.targets.iter().fold(Targets::new(), |t, s| t.suffix(s.as_str()));
        let injector = Injector::new(file.description.method().clone(), targets).unwrap();
        let mut reloaded = load::<B>(&config.model, injector, &device).unwrap().model;
        reloaded.adapters = file.apply(std::mem::take(&mut reloaded.adapters)).unwrap();
        let peft = logits(&reloaded);
        let scale = adapted.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (name, other) in [("merged HF checkpoint", &merged), ("PEFT export", &peft)] {
            let error = adapted.iter().zip(other).fold(0f32, |m, (a, b)| m.max((a - b).abs())) / scale;
            assert!(error < 1e-5, "{method}: the {name} differs from the trained model by {error}");
        }
        if let Some(check_dir) = &check_dir {
            let out = check_dir.join(method.to_string());
            wegeft::export_peft(&pretrained.model, out.join("adapter")).unwrap();
            let stored = wegeft::io::StoredTensor { shape: vec![6, adapted.len() / 6], values: adapted.clone() };
            wegeft::io::write_safetensors(&out.join("logits.safetensors"), &[("logits".to_string(), stored)].into()).unwrap();
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unusable_settings_and_empty_files_are_refused_before_training() {
    let _rng = GLOBAL_RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = scratch("settings");
    let base = tiny_run(&dir).with_rank(Some(2));
    std::fs::write(dir.join("empty.jsonl"), "\n  \n").unwrap();
    for (config, needle) in [
        (base.clone().with_batch_size(0), "batch_size"),
        (base.clone().with_max_len(0), "max_len"),
        (base.clone().with_epochs(0), "epochs"),
        (base.clone().with_train_limit(Some(0)), "train_limit"),
        (base.clone().with_lr(f64::NAN), "learning rate"),
        (base.clone().with_lr(-1e-3), "learning rate"),
        (LlmTrainConfig { train_file: dir.join("empty.jsonl"), ..base.clone() }, "empty.jsonl: no examples"),
        (LlmTrainConfig { test_file: dir.join("empty.jsonl"), ..base.clone() }, "empty.jsonl: no examples"),
    ] {
        let run = dir.join("run");
        let session = Session { overwrite: true, ..Session::default() };
        let error = train_llm::<Autodiff<Flex>>(&config, &run, session, &[Default::default()]).unwrap_err();
        assert!(error.to_string().contains(needle), "{needle}: {error}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Two data-parallel workers (threads on the one CPU device, standing in for two devices), each
/// on half of a fixed global batch, train the adapter one device trains on the whole batch. The
/// loss is a mean over response tokens per worker, so every answer is the same tokens: the two
/// halves then weigh as they do in the global mean. The two workers also recompute their layers
/// (`--checkpointing`), each recording and replaying its own masks.
#[test]
fn two_data_parallel_workers_train_the_adapter_one_device_would() {
    let _rng = GLOBAL_RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = scratch("data-parallel");
    let data: String = (0..12).map(|i| format!("{{\"instruction\": \"Is {i} a number?\", \"output\": \"yes\"}}\n")).collect();
    std::fs::write(dir.join("train.jsonl"), &data).unwrap();
    std::fs::write(dir.join("test.jsonl"), &data).unwrap();
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny_llama_untied");
    let config = LlmTrainConfig::new(model, dir.join("train.jsonl"), dir.join("test.jsonl"))
        .with_rank(Some(2))
        .with_dropout(Some(0.0))
        .with_epochs(3)
        .with_batch_size(12)
        .with_eval_limit(2)
        .with_max_new_tokens(2);
    type A = Autodiff<Flex>;
    let device: burn::tensor::Device<A> = Default::default();
    let one = train_llm::<A>(&config, &dir.join("one"), Session::default(), &[device.clone()]).unwrap().unwrap();
    let recomputing = config.clone().with_recompute_layers(true);
    let two = train_llm::<A>(&recomputing, &dir.join("two"), Session::default(), &[device.clone(), device.clone()]).unwrap().unwrap();
    assert_eq!((one.world_size, two.world_size, two.train_steps), (1, 2, 3));
    let (a, b) = (adapter_values(&dir.join("one")), adapter_values(&dir.join("two")));
    assert_eq!(a.len(), b.len());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        let scale = x.iter().fold(0f32, |m, v| m.max(v.abs()));
        let diff = x.iter().zip(y).fold(0f32, |m, (p, q)| m.max((p - q).abs()));
        assert!(diff <= 1e-5 * scale.max(1.0), "{name}: two workers differ from one by {diff} (scale {scale})");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every gradient in `grads` of `module`'s parameters, in module order.
struct Gradients<'a> {
    grads: &'a GradientsParams,
    found: Vec<Vec<f32>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Gradients<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(grad) = self.grads.get::<B::InnerBackend, D>(param.id) {
            self.found.push(grad.into_data().to_vec().unwrap());
        }
    }
}

fn gradients_of(lm: &CausalLm<Autodiff<Flex>>, grads: &GradientsParams) -> Vec<Vec<f32>> {
    let mut visitor = Gradients { grads, found: Vec::new() };
    lm.visit(&mut visitor);
    visitor.found
}

fn assert_same_gradients(what: &str, ours: &[Vec<f32>], reference: &[Vec<f32>], tolerance: f32) {
    assert_eq!(ours.len(), reference.len(), "{what}");
    assert!(ours.len() >= 4, "{what}: {} gradients", ours.len());
    for (index, (x, y)) in ours.iter().zip(reference).enumerate() {
        let scale = y.iter().fold(0f32, |m, v| m.max(v.abs()));
        let diff = x.iter().zip(y).fold(0f32, |m, (p, q)| m.max((p - q).abs()));
        assert!(scale > 0.0 && diff <= tolerance * scale, "{what}, gradient {index}: off by {diff} (scale {scale})");
    }
}

/// A tiny fixture decoder with `method` (rank 2) at `dropout`, its parameters moved off their
/// init (LoRA's B starts at zero, which would leave A without a gradient).
fn tiny_lm(dir: &str, method: MethodName, dropout: f64) -> CausalLm<Autodiff<Flex>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(dir);
    let config = LlmTrainConfig::new(path.clone(), "unused".into(), "unused".into()).with_method(method).with_rank(Some(2)).with_dropout(Some(dropout));
    let decoder = DecoderConfig::from_hf_json(&path.join("config.json")).unwrap();
    let weights = WeightStore::safetensors(&[path.join("model.safetensors")]).unwrap();
    let model = Decoder::load(&decoder, weights, config.injector().unwrap(), &Default::default()).unwrap();
    CausalLm { model: model.map(&mut Perturb), loss_scaler: None, recompute_layers: false }
}

fn tiny_batch() -> LmBatch<Autodiff<Flex>> {
    let items = vec![
        Tokenized { ids: vec![10, 11, 12, 13, 14, 15, 16], prompt_len: 3 },
        Tokenized { ids: vec![20, 21, 22, 23], prompt_len: 2 },
    ];
    LmBatcher { pad: 0 }.batch(items, &Default::default())
}

/// The step takes the hidden states' gradient from the vocabulary-tiled loss (the logits never
/// exist whole): the adapter's gradients must be those of the plain formula, a log-softmax over
/// the whole logits averaged over the response tokens, for a tied and an untied head.
#[test]
fn the_step_gives_the_adapter_the_gradients_of_the_whole_softmax_loss() {
    // Its model draws from the global generator, which the seeded tests hold between draws.
    let _rng = GLOBAL_RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let batch = tiny_batch();
    for dir in ["tiny_llama_untied", "tiny_llama_tied"] {
        let lm = tiny_lm(dir, MethodName::Lora, 0.0);
        let ours = TrainStep::step(&lm, batch.clone()).grads;

        let logits = lm.model.forward(batch.tokens.clone(), None, Some(&batch.padding));
        let [b, t, _] = logits.dims();
        let picked = log_softmax(logits, 2).gather(2, batch.targets.clone().reshape([b, t, 1])).reshape([b, t]);
        let loss = (picked * batch.loss_mask.clone()).sum().neg() / batch.counted as f64;
        let reference = GradientsParams::from_grads(loss.backward(), &lm);
        assert_same_gradients(dir, &gradients_of(&lm, &ours), &gradients_of(&lm, &reference), 1e-5);
    }
}

/// `--checkpointing` (layers): the backward recomputes each layer with the dropout masks its
/// forward drew, so every method's gradients (shared WeGeFT and VeRA parameters summed over the
/// layers) and the loss are the whole graph's, also through f16's loss scaling.
#[test]
fn layer_checkpointing_gives_the_whole_graphs_gradients_with_dropout_on() {
    let _rng = GLOBAL_RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let (batch, device) = (tiny_batch(), Default::default());
    for method in [MethodName::Wegeft, MethodName::Lora, MethodName::Dora, MethodName::Vera] {
        for scaler in [None, Some(LossScaler::with_scale(1024.0))] {
            let what = format!("{method:?}, loss scale {:?}", scaler.as_ref().map(LossScaler::scale));
            let whole = CausalLm { loss_scaler: scaler.clone(), ..tiny_lm("tiny_llama_tied", method, 0.2) };
            let recomputing = CausalLm { recompute_layers: true, loss_scaler: scaler.map(|s| LossScaler::with_scale(s.scale())), ..whole.clone() };
            // A first step initialises burn's lazily drawn parameters, which takes draws.
            let _ = TrainStep::step(&whole, batch.clone());
            Autodiff::<Flex>::seed(&device, 11);
            let expected = TrainStep::step(&whole, batch.clone());
            Autodiff::<Flex>::seed(&device, 11);
            let ours = TrainStep::step(&recomputing, batch.clone());
            let (a, b) = (ours.item.loss.into_scalar(), expected.item.loss.into_scalar());
            assert!((a - b).abs() <= 1e-6 * b.abs(), "{what}: loss {a} vs {b}");
            assert_same_gradients(&what, &gradients_of(&whole, &ours.grads), &gradients_of(&whole, &expected.grads), 1e-5);
        }
    }
}

/// Adds 0.05 to every trainable parameter.
struct Perturb;

impl<B: AutodiffBackend> ModuleMapper<B> for Perturb {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        match param.is_require_grad() {
            true => param.map(|tensor| tensor.add_scalar(0.05).detach().require_grad()),
            false => param,
        }
    }
}
