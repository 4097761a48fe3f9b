//! Chat templates render exactly as `transformers`' `apply_chat_template` renders them (goldens
//! from `tests/fixtures/make_chat_template_fixtures.py`), and training examples built from them
//! learn the answer and the template's end-of-turn markup.

use std::path::PathBuf;

use burn::backend::NdArray;
use wegeft_llm::train::data::{tokenize, Example};
use wegeft_llm::{ChatTemplate, LlmError, Message, PromptFormat, PromptStyle};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

#[test]
fn templates_render_as_transformers_renders_them() {
    let golden: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture("chat_templates.json")).unwrap()).unwrap();
    let (bos, eos) = (golden["bos_token"].as_str().unwrap(), golden["eos_token"].as_str().unwrap());
    let cases = golden["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 32);
    for case in cases {
        let name = case["template"].as_str().unwrap();
        let template = ChatTemplate::new(golden["templates"][name].as_str().unwrap(), bos, eos).unwrap();
        let messages: Vec<Message> = serde_json::from_value(case["messages"].clone()).unwrap();
        let rendered = template.render(&messages, case["add_generation_prompt"].as_bool().unwrap());
        match case["rendered"].as_str() {
            Some(expected) => assert_eq!(rendered.unwrap(), expected, "{name}: {messages:?}"),
            None => {
                let error = rendered.unwrap_err();
                assert!(matches!(error, LlmError::Template(_)), "{error}");
                assert!(error.to_string().contains("roles must alternate"), "{error}");
            }
        }
    }
}

#[test]
fn a_broken_template_is_a_typed_error_naming_its_line() {
    let error = ChatTemplate::new("{% for m in messages %}\n{{ m.content }\n{% endfor %}", "", "").err().unwrap();
    let message = error.to_string();
    assert!(matches!(error, LlmError::Template(_)) && message.contains("chat_template:2"), "{message}");
}

#[test]
fn training_examples_end_with_the_templates_end_of_turn_or_eos() {
    let loaded = wegeft_llm::load::<NdArray>(&fixture("tiny_llama_untied"), wegeft::Injector::none(), &Default::default()).unwrap();
    let mut tokenizer = loaded.tokenizer;
    tokenizer.eos = tokenizer.inner.token_to_id("<|im_end|>");
    let example = Example {
        messages: vec![Message::new("user", "What is 12 plus 30?")],
        response: "42".into(),
    };

    // The fixture's ChatML template: the answer carries `<|im_end|>` (the EOS), nothing is added.
    let chat = PromptFormat::new(PromptStyle::Auto, &tokenizer).unwrap();
    let (prompt, answer) = chat.exchange(&example.messages, &example.response).unwrap();
    assert_eq!(prompt, "<|im_start|>user\nWhat is 12 plus 30?<|im_end|>\n<|im_start|>assistant\n");
    assert_eq!(answer, "42<|im_end|>\n");
    let tokenized = tokenize(&tokenizer, &chat, &example, 128).unwrap();
    assert_eq!(&tokenized.ids[..tokenized.prompt_len], tokenizer.encode(&prompt).unwrap().as_slice());
    assert_eq!(&tokenized.ids[tokenized.prompt_len..], tokenizer.encode(&answer).unwrap().as_slice());

    // Alpaca: the answer is the response followed by EOS.
    let alpaca = PromptFormat::new(PromptStyle::Alpaca, &tokenizer).unwrap();
    assert!(alpaca.prompt(&example.messages).unwrap().ends_with("### Instruction:\nWhat is 12 plus 30?\n\n### Response:\n"));
    let tokenized = tokenize(&tokenizer, &alpaca, &example, 1024).unwrap();
    let mut expected = tokenizer.encode("42").unwrap();
    expected.extend(tokenizer.eos);
    assert_eq!(&tokenized.ids[tokenized.prompt_len..], expected.as_slice());

    tokenizer.chat_template = None;
    assert!(matches!(PromptFormat::new(PromptStyle::Chat, &tokenizer), Err(LlmError::Template(_))));
}

#[test]
fn a_runaway_template_stops_with_an_error() {
    let template = ChatTemplate::new("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}", "", "").unwrap();
    let error = template.render(&[Message::new("user", "hi")], true).unwrap_err();
    assert!(matches!(error, LlmError::Template(_)), "{error}");
}
