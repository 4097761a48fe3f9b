//! Hostile inputs: degenerate model configs, malformed GGUF and tokenizer files, prompts longer
//! than the context, bad data lines and flags. Each is a typed error naming the file, tensor,
//! key or flag, and the binaries exit with an error code, never through a panic.

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::backend::Flex;
use wegeft::Injector;
use wegeft_llm::gguf::{hf_weights, GgufFile};
use wegeft_llm::train::data::read_jsonl;
use wegeft_llm::{generate, load, DecoderConfig, Sampling};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wegeft-hostile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A copy of the tiny HF fixture whose `file` is replaced by `text`.
fn fixture_with(name: &str, file: &str, text: &str) -> PathBuf {
    let dir = scratch(name);
    for entry in std::fs::read_dir(fixture("tiny_llama_untied")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    std::fs::write(dir.join(file), text).unwrap();
    dir
}

/// The fixture's `config.json` with `key` set to `value`.
fn config_with(key: &str, value: serde_json::Value) -> String {
    let mut config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture("tiny_llama_untied/config.json")).unwrap()).unwrap();
    config[key] = value;
    config.to_string()
}

/// A GGUF metadata value.
enum Meta {
    U32(u32),
    F32(f32),
    Str(&'static str),
}

/// A GGUF v3 file: `metadata`, then F32 tensors (GGUF dimension order, innermost first).
fn gguf(metadata: &[(&str, Meta)], tensors: &[(&str, [u64; 2])]) -> Vec<u8> {
    let mut bytes = b"GGUF".to_vec();
    let string = |bytes: &mut Vec<u8>, text: &str| {
        bytes.extend((text.len() as u64).to_le_bytes());
        bytes.extend(text.as_bytes());
    };
    bytes.extend(3u32.to_le_bytes());
    bytes.extend((tensors.len() as u64).to_le_bytes());
    bytes.extend((metadata.len() as u64).to_le_bytes());
    for (key, value) in metadata {
        string(&mut bytes, key);
        match value {
            Meta::U32(v) => bytes.extend([4u32.to_le_bytes(), v.to_le_bytes()].concat()),
            Meta::F32(v) => bytes.extend([6u32.to_le_bytes(), v.to_le_bytes()].concat()),
            Meta::Str(v) => {
                bytes.extend(8u32.to_le_bytes());
                string(&mut bytes, v);
            }
        }
    }
    let mut offset = 0u64;
    for (name, dims) in tensors {
        string(&mut bytes, name);
        bytes.extend(2u32.to_le_bytes());
        dims.iter().for_each(|d| bytes.extend(d.to_le_bytes()));
        bytes.extend(0u32.to_le_bytes()); // F32
        bytes.extend(offset.to_le_bytes());
        offset += 4 * dims[0] * dims[1];
    }
    bytes.resize(bytes.len().div_ceil(32) * 32, 0);
    bytes.extend(std::iter::repeat_n(0u8, offset as usize));
    bytes
}

/// LLaMA metadata: 4 heads over width 8, plus `extra`.
fn llama_metadata(extra: Vec<(&'static str, Meta)>) -> Vec<(&'static str, Meta)> {
    let mut metadata = vec![
        ("general.architecture", Meta::Str("llama")),
        ("llama.vocab_size", Meta::U32(16)),
        ("llama.embedding_length", Meta::U32(8)),
        ("llama.feed_forward_length", Meta::U32(12)),
        ("llama.block_count", Meta::U32(1)),
        ("llama.attention.head_count", Meta::U32(4)),
    ];
    metadata.extend(extra);
    metadata
}

/// What opening `bytes` as a GGUF model (metadata, then tensors) says.
fn gguf_error(name: &str, bytes: &[u8]) -> String {
    let path = scratch("gguf").join(format!("{name}.gguf"));
    std::fs::write(&path, bytes).unwrap();
    let result = GgufFile::open(&path).and_then(|file| {
        let config = DecoderConfig::from_gguf(&file)?;
        hf_weights(&file, &config).map(|_| ())
    });
    let message = result.expect_err(name).to_string();
    assert!(message.contains(&format!("{name}.gguf")), "{name}: {message}");
    message
}

#[test]
fn degenerate_gguf_files_are_refused_by_name() {
    let q = [("blk.0.attn_q.weight", [8, 8])];
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("duplicate", gguf(&llama_metadata(vec![]), &[q[0], q[0]]), "tensor `blk.0.attn_q.weight` appears twice"),
        ("alignment0", gguf(&llama_metadata(vec![("general.alignment", Meta::U32(0))]), &q), "`general.alignment`"),
        ("alignment3", gguf(&llama_metadata(vec![("general.alignment", Meta::U32(3))]), &q), "positive multiple of 8"),
        ("q_rows", gguf(&llama_metadata(vec![]), &[("blk.0.attn_q.weight", [8, 2])]), "`blk.0.attn_q.weight`: 2 rows; 4 heads of width 2 need 8"),
        ("freq_base", gguf(&llama_metadata(vec![("llama.rope.freq_base", Meta::F32(0.0))]), &q), "rope_theta must be a positive number, got 0"),
        ("eps", gguf(&llama_metadata(vec![("llama.attention.layer_norm_rms_epsilon", Meta::F32(f32::NAN))]), &q), "rms_norm_eps"),
        ("context", gguf(&llama_metadata(vec![("llama.context_length", Meta::U32(0))]), &q), "context length"),
        ("family", gguf(&[("general.architecture", Meta::Str("gpt2"))], &q), "general.architecture `gpt2` is not supported (llama, qwen2, qwen3, gemma3)"),
    ];
    for (name, bytes, expected) in cases {
        let message = gguf_error(name, &bytes);
        assert!(message.contains(expected), "{name}: {message}");
    }
    // A file cut inside its header says what it was reading.
    let whole = gguf(&llama_metadata(vec![]), &q);
    assert!(gguf_error("cut_count", &whole[..10]).contains("the tensor count"));
    let message = gguf_error("cut_metadata", &whole[..60]);
    assert!(message.contains("metadata") && message.contains("truncated"), "{message}");
}

#[test]
fn degenerate_hf_configs_are_refused_naming_the_key() {
    for (key, value, expected) in [
        ("rms_norm_eps", serde_json::json!(0.0), "rms_norm_eps must be a positive number"),
        ("rope_theta", serde_json::json!(0.0), "rope_theta must be a positive number"),
        ("rope_scaling", serde_json::json!({"rope_type": "linear", "factor": -2.0}), "factor must be a positive number"),
        ("max_position_embeddings", serde_json::json!(0), "max_position_embeddings"),
    ] {
        let dir = fixture_with(key, "config.json", &config_with(key, value));
        let message = DecoderConfig::from_hf_json(&dir.join("config.json")).unwrap_err().to_string();
        assert!(message.contains("config.json") && message.contains(expected), "{key}: {message}");
    }
}

#[test]
fn tokenizer_files_that_cannot_be_used_are_errors_naming_the_file() {
    let cases = [
        ("tokenizer_config.json", "{not json".to_string(), "tokenizer_config.json"),
        ("tokenizer_config.json", r#"{"chat_template": 5}"#.to_string(), "`chat_template`"),
        // No token strings, so the id of config.json counts: beyond the vocabulary of 300.
        ("tokenizer_config.json", "{}".to_string(), "EOS token id 300"),
    ];
    for (index, (file, text, expected)) in cases.into_iter().enumerate() {
        let dir = fixture_with(&format!("tokenizer{index}"), file, &text);
        std::fs::write(dir.join("config.json"), config_with("eos_token_id", 300.into())).unwrap();
        let message = load::<Flex>(&dir, Injector::none(), &Default::default()).err().expect(expected).to_string();
        assert!(message.contains(expected), "{expected}: {message}");
    }
}

#[test]
fn prompts_stay_within_the_context() {
    let model = load::<Flex>(&fixture("tiny_llama_untied"), Injector::none(), &Default::default()).unwrap().model;
    assert_eq!(model.context_length, 64);
    let continue_ = |prompt: Vec<u32>, max_new| generate(&model, &[prompt], max_new, &[], &Sampling::greedy(), |_| false, &Default::default());
    let message = continue_(vec![5; 64], 4).unwrap_err().to_string();
    assert!(message.contains("prompt 1 has 64 tokens") && message.contains("context of 64"), "{message}");
    // Up to the context, and no further.
    assert_eq!(continue_(vec![5; 60], 100).unwrap()[0].len(), 4);
}

#[test]
fn a_data_line_without_an_answer_names_the_line_and_the_key() {
    let dir = scratch("jsonl");
    let file = dir.join("train.jsonl");
    std::fs::write(&file, "{\"instruction\": \"a\", \"output\": \"b\"}\n{\"instruction\": \"What is 2 plus 2?\"}\n").unwrap();
    let message = read_jsonl(&file).unwrap_err().to_string();
    assert!(message.contains("train.jsonl") && message.contains("line 2") && message.contains("missing field `output`"), "{message}");
}

/// `generate` on the tiny fixture with `args`: (exit code, stderr).
fn run_generate(args: &[&str]) -> (i32, String) {
    let model = fixture("tiny_llama_untied");
    let output = Command::new(env!("CARGO_BIN_EXE_generate"))
        .args(["--model", model.to_str().unwrap(), "--max-new-tokens", "2"])
        .args(args)
        .output()
        .unwrap();
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn the_generate_binary_refuses_bad_flags_and_prompts_without_panicking() {
    let long_prompt = "a ".repeat(200);
    for (args, expected) in [
        (vec!["--prompt", "hi", "--stop", ""], "must not be empty"),
        (vec!["--prompt", "hi", "--devices", "0,0"], "runs on one device"),
        (vec!["--prompt", long_prompt.as_str()], "context of 64"),
    ] {
        let (code, stderr) = run_generate(&args);
        assert!(code != 0 && code != 101, "{args:?} exited {code} (101 is a panic): {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    let (code, stderr) = run_generate(&["--prompt", "hi"]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn an_adapter_too_large_to_merge_is_not_exported() {
    use burn::module::{Module, ModuleMapper, Param};
    use burn::tensor::Tensor;
    use wegeft::{LoraConfig, Targets};
    struct Huge;
    impl<B: burn::tensor::backend::Backend> ModuleMapper<B> for Huge {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            param.map(|t| t.ones_like() * 3e38)
        }
    }
    let injector = Injector::new(LoraConfig::new(2), Targets::new().suffix("q_proj")).unwrap();
    let mut pretrained = load::<Flex>(&fixture("tiny_llama_untied"), injector, &Default::default()).unwrap();
    pretrained.model.adapters = std::mem::take(&mut pretrained.model.adapters).map(&mut Huge);
    let out = scratch("huge-export");
    let error = pretrained.model.export_hf(&pretrained.config, &pretrained.tokenizer, &out).unwrap_err().to_string();
    assert!(error.contains("q_proj.weight") && error.contains("after merging"), "{error}");
    assert!(!out.join("model.safetensors").exists(), "nothing is written");
}

/// Started by an MPI launcher, or given `--peer-timeout`, a training binary built without MPI
/// says which feature it lacks instead of training alone once per rank; binaries that run in one
/// process refuse both.
#[test]
fn mpi_flags_and_launchers_are_refused_where_they_cannot_work() {
    let model = fixture("tiny_llama_untied");
    let run = |binary: &str, args: &[&str], launcher: bool| {
        let mut command = Command::new(binary);
        command.args(["--model", model.to_str().unwrap()]).args(args);
        if launcher {
            command.env("OMPI_COMM_WORLD_SIZE", "2").env("OMPI_COMM_WORLD_RANK", "0");
        }
        let output = command.output().unwrap();
        (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
    };
    for launcher in [false, true] {
        let args: &[&str] = if launcher { &["--prompt", "hi"] } else { &["--prompt", "hi", "--peer-timeout", "5"] };
        let (code, said) = run(env!("CARGO_BIN_EXE_generate"), args, launcher);
        assert!(code == 2 && said.contains("runs in one process"), "{code}: {said}");
    }
    if cfg!(feature = "mpi") {
        return;
    }
    for (args, launcher, asked) in [(&["--peer-timeout", "5"][..], false, "given `--peer-timeout`"), (&[][..], true, "started by an MPI launcher")] {
        let (code, said) = run(env!("CARGO_BIN_EXE_train-llm"), args, launcher);
        assert!(code == 2 && said.contains(asked) && said.contains("--features mpi"), "{code}: {said}");
    }
}
