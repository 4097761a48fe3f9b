//! Each decoder family against `transformers` (fixtures from `fixtures/make_family_fixtures.py`):
//! Qwen2, Qwen3, Mistral and Gemma 3 logits for a sequence longer than the sliding window, a
//! left-padded batch run whole and through the KV cache, and the merged export reloading to the
//! same logits.

use std::path::{Path, PathBuf};

use burn::backend::NdArray;
use burn::tensor::{Int, Tensor, TensorData};
use safetensors::SafeTensors;
use wegeft::io::WeightStore;
use wegeft::Injector;
use wegeft_llm::pretrained::hf_shards;
use wegeft_llm::{Decoder, DecoderConfig, Family, LayerType, LlmTokenizer};

type B = NdArray;

const FAMILIES: [(&str, Family); 4] = [("qwen2", Family::Qwen2), ("qwen3", Family::Qwen3), ("mistral", Family::Mistral), ("gemma3", Family::Gemma3)];

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// A fixture tensor: its values and shape.
fn reference(dir: &Path, name: &str) -> (Vec<f32>, Vec<usize>) {
    let bytes = std::fs::read(dir.join("logits.safetensors")).unwrap();
    let tensors = SafeTensors::deserialize(&bytes).unwrap();
    let view = tensors.tensor(name).unwrap();
    let values = match view.dtype() {
        safetensors::Dtype::I64 => view.data().chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f32).collect(),
        _ => view.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect(),
    };
    (values, view.shape().to_vec())
}

fn tokens(ids: &[f32], shape: [usize; 2]) -> Tensor<B, 2, Int> {
    let ids: Vec<i64> = ids.iter().map(|&id| id as i64).collect();
    Tensor::from_data(TensorData::new(ids, shape), &Default::default())
}

fn values(logits: Tensor<B, 3>) -> Vec<f32> {
    logits.into_data().to_vec().unwrap()
}

/// Largest difference over the largest reference value, over `rows` (positions) of `vocab` logits.
fn relative_error(actual: &[f32], expected: &[f32], rows: impl Iterator<Item = usize> + Clone, vocab: usize) -> f32 {
    let pick = |v: &[f32]| rows.clone().flat_map(|row| v[row * vocab..(row + 1) * vocab].to_vec()).collect::<Vec<_>>();
    let (actual, expected) = (pick(actual), pick(expected));
    let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
    actual.iter().zip(&expected).fold(0f32, |m, (a, e)| m.max((a - e).abs())) / scale
}

fn load(dir: &Path) -> (DecoderConfig, Decoder<B>) {
    let config = DecoderConfig::from_hf_json(&dir.join("config.json")).unwrap();
    let weights = WeightStore::safetensors(&hf_shards(dir).unwrap()).unwrap();
    let model = Decoder::load(&config, weights, Injector::none(), &Default::default()).unwrap();
    (config, model)
}

#[test]
fn every_family_matches_transformers_past_its_window() {
    for (name, family) in FAMILIES {
        let dir = fixture(&format!("tiny_{name}"));
        let (config, model) = load(&dir);
        assert_eq!(config.family(), family);
        let (ids, _) = reference(&dir, "ids");
        assert!(config.sliding_window.is_none_or(|window| ids.len() > window), "{name}: the sequence must outrun the window");
        let (expected, shape) = reference(&dir, "logits");
        let error = relative_error(&values(model.forward(tokens(&ids, [1, ids.len()]), None, None)), &expected, 0..ids.len(), shape[2]);
        assert!(error < 1e-4, "{name}: relative error {error}");
    }
}

#[test]
fn the_families_differ_where_their_papers_say() {
    let (qwen2, _) = load(&fixture("tiny_qwen2"));
    assert!(qwen2.qkv_bias() && qwen2.tie_word_embeddings);
    let (qwen3, model) = load(&fixture("tiny_qwen3"));
    assert_eq!(qwen3.head_dim(), 24);
    assert!(model.layers[0].self_attn.q_norm.is_some());
    let (mistral, _) = load(&fixture("tiny_mistral"));
    assert_eq!((mistral.window(0), mistral.window(2)), (Some(4), Some(4)));
    let (gemma, model) = load(&fixture("tiny_gemma3"));
    assert_eq!((gemma.window(0), gemma.window(1)), (Some(4), None));
    assert_ne!(gemma.rope(LayerType::SlidingAttention), gemma.rope(LayerType::FullAttention));
    assert!(model.layers[0].pre_feedforward_layernorm.is_some() && model.embed_scale == Some(8.0));
}

#[test]
fn a_left_padded_batch_matches_whole_and_through_the_cache() {
    for (name, _) in FAMILIES {
        let dir = fixture(&format!("tiny_{name}"));
        let (_, model) = load(&dir);
        let (ids, shape) = reference(&dir, "padded_ids");
        let (mask, _) = reference(&dir, "padded_mask");
        let (expected, logits_shape) = reference(&dir, "padded_logits");
        let [batch, len] = [shape[0], shape[1]];
        let vocab = logits_shape[2];
        let padding: Vec<Vec<u8>> = mask.chunks(len).map(|row| row.iter().map(|&m| m as u8).collect()).collect();
        // Real positions only: transformers leaves fully masked rows to chance.
        let real = |row: usize| {
            let kept: Vec<usize> = (0..len).filter(|&t| padding[row][t] == 1).map(|t| row * len + t).collect();
            kept.into_iter()
        };
        let whole = values(model.forward(tokens(&ids, [batch, len]), None, Some(&padding)));
        for row in 0..batch {
            let error = relative_error(&whole, &expected, real(row), vocab);
            assert!(error < 1e-4, "{name} row {row}: relative error {error}");
        }
        // The first 5 tokens at once, then one at a time through the cache.
        let mut cache = model.new_cache();
        let column = |range: std::ops::Range<usize>| -> Vec<f32> { (0..batch).flat_map(|b| ids[b * len + range.start..b * len + range.end].to_vec()).collect() };
        let prefix: Vec<Vec<u8>> = padding.iter().map(|row| row[..5].to_vec()).collect();
        let mut steps: Vec<Vec<f32>> = vec![values(model.forward(tokens(&column(0..5), [batch, 5]), Some(&mut cache), Some(&prefix)))];
        for t in 5..len {
            let seen: Vec<Vec<u8>> = padding.iter().map(|row| row[..=t].to_vec()).collect();
            steps.push(values(model.forward(tokens(&column(t..t + 1), [batch, 1]), Some(&mut cache), Some(&seen))));
        }
        // Reassemble `[B, T, vocab]` from the steps' `[B, t, vocab]`.
        let mut cached = vec![0f32; batch * len * vocab];
        let mut start = 0;
        for step in &steps {
            let width = step.len() / (batch * vocab);
            for b in 0..batch {
                let from = &step[b * width * vocab..(b + 1) * width * vocab];
                cached[(b * len + start) * vocab..(b * len + start + width) * vocab].copy_from_slice(from);
            }
            start += width;
        }
        for row in 0..batch {
            let error = relative_error(&cached, &expected, real(row), vocab);
            assert!(error < 1e-4, "{name} row {row} through the cache: relative error {error}");
        }
    }
}

#[test]
fn every_family_exports_a_checkpoint_that_reloads_to_the_same_logits() {
    let tokenizer = LlmTokenizer::from_file(&fixture("tiny_llama_untied/tokenizer.json")).unwrap();
    for (name, _) in FAMILIES {
        let dir = fixture(&format!("tiny_{name}"));
        let (config, model) = load(&dir);
        let out = std::env::temp_dir().join(format!("wegeft-family-export-{name}-{}", std::process::id()));
        model.export_hf(&config, &tokenizer, &out).unwrap();
        let (reloaded_config, reloaded) = load(&out);
        assert_eq!(reloaded_config.family(), config.family());
        let (ids, _) = reference(&dir, "ids");
        let ids = tokens(&ids, [1, ids.len()]);
        let (before, after) = (values(model.forward(ids.clone(), None, None)), values(reloaded.forward(ids, None, None)));
        let error = relative_error(&after, &before, 0..9, config.vocab_size);
        assert!(error < 1e-6, "{name}: relative error {error}");
        std::fs::remove_dir_all(&out).unwrap();
    }
}

#[test]
fn gguf_files_of_each_family_load_as_transformers_runs_them() {
    use wegeft_llm::gguf::{hf_weights, GgufFile};
    for (name, family) in [("qwen2", Family::Qwen2), ("qwen3", Family::Qwen3), ("gemma3", Family::Gemma3)] {
        let file = GgufFile::open(fixture(&format!("tiny_{name}.gguf"))).unwrap();
        let config = DecoderConfig::from_gguf(&file).unwrap();
        assert_eq!(config.family(), family);
        let model = Decoder::<B>::load(&config, hf_weights(&file, &config).unwrap(), Injector::none(), &Default::default()).unwrap();
        let logits = fixture(&format!("tiny_{name}_gguf_logits.safetensors"));
        let bytes = std::fs::read(&logits).unwrap();
        let tensors = SafeTensors::deserialize(&bytes).unwrap();
        let expected: Vec<f32> = tensors.tensor("logits").unwrap().data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        let ids: Vec<f32> = tensors.tensor("ids").unwrap().data().chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f32).collect();
        let error = relative_error(&values(model.forward(tokens(&ids, [1, ids.len()]), None, None)), &expected, 0..ids.len(), config.vocab_size);
        assert!(error < 1e-4, "{name}: relative error {error}");
    }
}

/// Adds random values to every adapter tensor, as training would leave them (a fresh adapter is
/// the identity and would hide a wrong export).
struct Randomise;

impl burn::module::ModuleMapper<B> for Randomise {
    fn map_float<const D: usize>(&mut self, param: burn::module::Param<Tensor<B, D>>) -> burn::module::Param<Tensor<B, D>> {
        param.map(|t| t.clone() + Tensor::random(t.shape(), burn::tensor::Distribution::Normal(0.0, 0.05), &t.device()))
    }
}

/// WeGeFT (exported as the exact LoRA it is) and DoRA on every family and on the Q4_K_M GGUF:
/// the exported PEFT adapter read back reproduces the adapted model. With `WEGEFT_PEFT_CHECK_DIR`
/// set, each adapter, its base and our logits are written there for `scripts/peft_loads_ours.py`,
/// which loads them into transformers with HF PEFT (the GGUF through transformers' own
/// dequantisation).
#[test]
fn adapters_on_every_family_export_to_peft_and_reload_to_the_same_logits() {
    use burn::module::Module;
    use wegeft::{AdapterFile, Domain, MethodName, Overrides, Targets};
    use wegeft_llm::gguf::{hf_weights, GgufFile};
    let check_dir = std::env::var_os("WEGEFT_PEFT_CHECK_DIR").map(PathBuf::from);
    let targets = || ["q_proj", "k_proj", "v_proj", "up_proj", "down_proj"].iter().fold(Targets::new(), |t, s| t.suffix(*s));
    let bases = ["tiny_qwen2", "tiny_qwen3", "tiny_mistral", "tiny_gemma3", "tiny_llama_q4_k_m.gguf"];
    for (base, method) in bases.iter().flat_map(|base| [(base, MethodName::Wegeft), (base, MethodName::Dora)]) {
        let path = fixture(base);
        let load_with = |injector: Injector| -> Decoder<B> {
            if path.is_dir() {
                let config = DecoderConfig::from_hf_json(&path.join("config.json")).unwrap();
                Decoder::load(&config, WeightStore::safetensors(&hf_shards(&path).unwrap()).unwrap(), injector, &Default::default()).unwrap()
            } else {
                let file = GgufFile::open(&path).unwrap();
                let config = DecoderConfig::from_gguf(&file).unwrap();
                Decoder::load(&config, hf_weights(&file, &config).unwrap(), injector, &Default::default()).unwrap()
            }
        };
        let overrides = Overrides { rank: Some(4), alpha: None, dropout: Some(0.0) };
        let mut model = load_with(Injector::new(method.config(Domain::Llm, overrides), targets()).unwrap());
        model.adapters = model.adapters.map(&mut Randomise);
        let ids = tokens(&[5.0, 17.0, 3.0, 90.0, 42.0, 8.0], [1, 6]);
        let adapted = values(model.forward(ids.clone(), None, None));
        let out = std::env::temp_dir().join(format!("wegeft-family-peft-{base}-{method}-{}", std::process::id()));
        wegeft::export_peft(&model, &out).unwrap();
        let file = AdapterFile::read(&out).unwrap();
        let mut reloaded = load_with(Injector::new(file.description.method().clone(), targets()).unwrap());
        reloaded.adapters = file.apply(std::mem::take(&mut reloaded.adapters)).unwrap();
        let error = relative_error(&values(reloaded.forward(ids, None, None)), &adapted, 0..6, adapted.len() / 6);
        assert!(error < 1e-5, "{base} {method}: relative error {error}");
        if let Some(check_dir) = &check_dir {
            let entry = check_dir.join(format!("{base}-{method}"));
            wegeft::export_peft(&model, entry.join("adapter")).unwrap();
            let stored = wegeft::io::StoredTensor { shape: vec![6, adapted.len() / 6], values: adapted.clone() };
            wegeft::io::write_safetensors(&entry.join("logits.safetensors"), &[("logits".to_string(), stored)].into()).unwrap();
            std::fs::write(entry.join("base.txt"), path.to_str().unwrap()).unwrap();
        }
        std::fs::remove_dir_all(&out).unwrap();
    }
}
