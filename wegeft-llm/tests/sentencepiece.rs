//! SentencePiece vocabularies inside GGUF files against transformers' GGUF tokenizer (fixtures from
//! `fixtures/make_sentencepiece_fixtures.py`): LLaMA 2 style (merges by score, a prefix space) and
//! Gemma style (merges by file order, space runs), with byte fallback and control tokens.

use std::path::PathBuf;

use wegeft_llm::gguf::GgufFile;
use wegeft_llm::LlmTokenizer;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

#[test]
fn sentencepiece_vocabularies_tokenize_as_transformers_does() {
    let golden: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture("spm_tokens.json")).unwrap()).unwrap();
    for name in ["spm_llama", "spm_gemma3"] {
        let tokenizer = LlmTokenizer::from_gguf(&GgufFile::open(fixture(&format!("{name}.gguf"))).unwrap()).unwrap();
        assert!(tokenizer.add_bos, "{name}: the file asks for BOS");
        for case in golden[name].as_array().unwrap() {
            let text = case["text"].as_str().unwrap();
            let ids = |key: &str| -> Vec<u32> { case[key].as_array().unwrap().iter().map(|id| id.as_u64().unwrap() as u32).collect() };
            let encoded = tokenizer.encode(text).unwrap();
            assert_eq!(encoded, ids("ids"), "{name}: {text:?}");
            assert_eq!(tokenizer.encode_prompt(text).unwrap(), ids("prompt_ids"), "{name}: {text:?} as a prompt");
            assert_eq!(tokenizer.decode(&encoded).unwrap(), case["decoded"].as_str().unwrap(), "{name}: {text:?} decoded");
        }
    }
}
