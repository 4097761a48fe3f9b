//! The real SmolLM2-135M-Instruct GGUF (ignored unless `cargo xtask assets llm` has fetched it):
//! metadata, tokenizer and greedy decoding.

use burn::backend::NdArray;
use wegeft_llm::assets::smollm2_gguf;
use wegeft_llm::{generate, load, Sampling};

#[test]
#[ignore = "needs `cargo xtask assets llm`"]
fn smollm2_knows_the_capital_of_france() {
    let loaded = load::<NdArray>(&smollm2_gguf(), wegeft::Injector::none(), &Default::default()).unwrap();
    assert_eq!((loaded.config.num_hidden_layers, loaded.config.hidden_size, loaded.config.key_value_heads()), (30, 576, 3));
    assert!(loaded.config.tie_word_embeddings);
    let tokenizer = &loaded.tokenizer;
    let ids = tokenizer.encode("The capital of France is").unwrap();
    assert_eq!(tokenizer.decode(&ids).unwrap(), "The capital of France is");
    assert_eq!(tokenizer.encode("<|im_start|>user").unwrap()[0], 1, "control tokens are matched whole");
    let output = generate(&loaded.model, &[ids], 2, &[], &Sampling::greedy(), |_| false, &Default::default()).unwrap();
    let text = tokenizer.decode(&output[0]).unwrap();
    assert!(text.starts_with(" Paris"), "{text:?}");
}
