//! The real Gemma 3 270M Q4_K_M GGUF (ignored unless `cargo xtask assets gemma3` has fetched it):
//! its family settings, its SentencePiece tokenizer and greedy decoding against transformers on the
//! same file (`fixtures/make_gemma3_reference.py`), past the 512-token sliding window, and with
//! the base kept in its quantisation blocks.

use std::path::PathBuf;

use burn::backend::Flex;
use wegeft_llm::assets::model_path;
use wegeft_llm::{generate, load, load_base, BasePrecision, Family, Sampling};

#[test]
#[ignore = "needs `cargo xtask assets gemma3`"]
fn gemma3_270m_continues_prompts_as_transformers_does() {
    let loaded = load::<Flex>(&model_path("gemma3").unwrap(), wegeft::Injector::none(), &Default::default()).unwrap();
    let config = &loaded.config;
    assert_eq!(config.family(), Family::Gemma3);
    assert_eq!((config.num_hidden_layers, config.hidden_size, config.head_dim(), config.key_value_heads()), (18, 640, 256, 1));
    assert_eq!((config.window(0), config.window(5)), (Some(512), None), "every sixth layer is global");
    let reference = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gemma3_reference.json");
    let cases: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(reference).unwrap()).unwrap();
    let ids = |value: &serde_json::Value| -> Vec<u32> { value.as_array().unwrap().iter().map(|id| id.as_u64().unwrap() as u32).collect() };
    for case in cases.as_array().unwrap() {
        let prompt = case["prompt"].as_str().unwrap();
        let tokens = loaded.tokenizer.encode_prompt(prompt).unwrap();
        assert_eq!(tokens, ids(&case["ids"]), "the tokens of {prompt:?}");
        let output = generate(&loaded.model, &[tokens], 16, &[], &Sampling::greedy(), |_| false, &Default::default()).unwrap();
        assert_eq!(output[0], ids(&case["greedy"]), "{prompt:?} went on as {:?}", loaded.tokenizer.decode(&output[0]).unwrap());
    }
    // Kept in its Q4_K/Q5_0/Q6_K/Q8_0 blocks, the base says the same.
    let stored = load_base::<Flex>(&model_path("gemma3").unwrap(), wegeft::Injector::none(), BasePrecision::Stored, &Default::default()).unwrap();
    assert!(stored.model.layers[0].self_attn.q_proj.packed.is_some());
    for case in cases.as_array().unwrap().iter().take(2) {
        let tokens = ids(&case["ids"]);
        let output = generate(&stored.model, &[tokens], 16, &[], &Sampling::greedy(), |_| false, &Default::default()).unwrap();
        assert_eq!(output[0], ids(&case["greedy"]), "stored: {:?}", stored.tokenizer.decode(&output[0]).unwrap());
    }
}
