//! Every ggml storage type we read against the `gguf` package's dequantisation (fixtures from
//! `fixtures/make_k_quant_fixtures.py`), bit for bit; a Q4_K_M-mixed LLaMA against transformers; and
//! files whose quantised tensors cannot be read.

use std::path::PathBuf;

use burn::backend::NdArray;
use burn::tensor::{Int, Tensor, TensorData};
use safetensors::SafeTensors;
use wegeft::Injector;
use wegeft_llm::gguf::{hf_weights, GgmlType, GgufFile};
use wegeft_llm::{Decoder, DecoderConfig};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

#[test]
fn every_ggml_type_dequantises_bit_exactly_as_the_gguf_package() {
    let file = GgufFile::open(fixture("ggml_types.gguf")).unwrap();
    let golden = std::fs::read(fixture("ggml_types.safetensors")).unwrap();
    let golden = SafeTensors::deserialize(&golden).unwrap();
    for kind in GgmlType::ALL {
        let name = kind.name();
        let info = &file.tensors[&name];
        assert_eq!(info.ggml_type, kind, "{name}");
        let (shape, values) = file.tensor_f32(&name).unwrap();
        let expected = golden.tensor(&name).unwrap();
        assert_eq!(shape, expected.shape(), "{name}");
        let expected = f32s(expected.data());
        let differing = values.iter().zip(&expected).filter(|(a, e)| a.to_bits() != e.to_bits()).count();
        assert_eq!(differing, 0, "{name}: {differing} of {} values differ, first {:?}", values.len(),
            values.iter().zip(&expected).find(|(a, e)| a.to_bits() != e.to_bits()));
    }
}

#[test]
fn a_q4_k_m_llama_matches_transformers_on_its_dequantised_weights() {
    let file = GgufFile::open(fixture("tiny_llama_q4_k_m.gguf")).unwrap();
    let kinds: Vec<GgmlType> = file.tensors.values().map(|t| t.ggml_type).collect();
    for kind in [GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q5_K, GgmlType::Q3_K, GgmlType::Q2_K, GgmlType::F32] {
        assert!(kinds.contains(&kind), "the fixture lacks {kind:?}");
    }
    let config = DecoderConfig::from_gguf(&file).unwrap();
    let model = Decoder::<NdArray>::load(&config, hf_weights(&file, &config).unwrap(), Injector::none(), &Default::default()).unwrap();
    let reference = std::fs::read(fixture("tiny_llama_q4_k_m_logits.safetensors")).unwrap();
    let reference = SafeTensors::deserialize(&reference).unwrap();
    let ids = [5i64, 17, 3, 90, 42, 8, 61, 0, 33];
    let tokens = Tensor::<NdArray, 2, Int>::from_data(TensorData::new(ids.to_vec(), [1, ids.len()]), &Default::default());
    let logits: Vec<f32> = model.forward(tokens, None, None).into_data().to_vec().unwrap();
    let expected = f32s(reference.tensor("logits").unwrap().data());
    let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
    let error = logits.iter().zip(&expected).fold(0f32, |m, (a, e)| m.max((a - e).abs())) / scale;
    assert!(error < 1e-4, "relative error {error}");
}

/// `ggml_types.gguf` with the directory entry of tensor `name` rewritten by `patch`, which gets
/// the entry's bytes after the name: rank (u32), dims (u64 each), type (u32), offset (u64).
fn patched(name: &str, patch: impl Fn(&mut [u8])) -> PathBuf {
    let mut bytes = std::fs::read(fixture("ggml_types.gguf")).unwrap();
    let mut key = (name.len() as u64).to_le_bytes().to_vec();
    key.extend(name.as_bytes());
    let at = bytes.windows(key.len()).position(|w| w == key).expect("the tensor's name") + key.len();
    patch(&mut bytes[at..]);
    let dir = std::env::temp_dir().join(format!("wegeft-ggml-types-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}-patched.gguf"));
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn unreadable_quantised_tensors_are_errors_naming_the_tensor_and_the_type() {
    // Q4_K's entry: rank 2, dims [512, 3], type 12. IQ2_XXS (16) is a type we do not read.
    let path = patched("Q4_K", |entry| entry[20..24].copy_from_slice(&16u32.to_le_bytes()));
    let message = GgufFile::open(&path).err().expect("an unsupported type").to_string();
    for part in ["`Q4_K`", "IQ2_XXS", "not supported", "Q6_K", path.to_str().unwrap()] {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
    // Rows of 96 values do not fill Q4_K's super-blocks of 256.
    let path = patched("Q4_K", |entry| entry[4..12].copy_from_slice(&96u64.to_le_bytes()));
    let message = GgufFile::open(&path).err().expect("a partial block").to_string();
    for part in ["`Q4_K`", "rows of 96 values do not fill whole Q4_K blocks of 256", path.to_str().unwrap()] {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
}
