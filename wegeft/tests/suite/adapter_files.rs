//! Adapter files: strict loading, clear errors on bad input, and PEFT LoRA export.

use std::fs;
use std::path::{Path, PathBuf};

use burn::tensor::backend::AutodiffBackend;
use crate::common::{assert_close, random, Tiny, TINY_WIDTH};
use wegeft::io::{read_safetensors, write_safetensors, CONFIG_FILE, WEIGHTS_FILE};
use wegeft::{load_adapter, save_adapter, LoraConfig, PeftError, WegeftConfig};

fn saved<B: AutodiffBackend>(name: &str, method: impl Into<wegeft::AdapterMethod>) -> (Tiny<B>, PathBuf) {
    let dir = crate::common::temp_dir(name);
    let model = Tiny::<B>::new(method).randomize_adapters();
    save_adapter(&model.adapters, &dir).unwrap();
    (model, dir)
}

fn load_into_fresh<B: AutodiffBackend>(dir: &Path, method: impl Into<wegeft::AdapterMethod>) -> Result<(), PeftError> {
    load_adapter(Tiny::<B>::new(method).adapters, dir).map(|_| ())
}

fn edit_tensors(dir: &Path, edit: impl FnOnce(&mut std::collections::BTreeMap<String, wegeft::io::StoredTensor>)) {
    let path = dir.join(WEIGHTS_FILE);
    let mut tensors = read_safetensors(&path).unwrap();
    edit(&mut tensors);
    write_safetensors(&path, &tensors).unwrap();
}

fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join(CONFIG_FILE);
    let mut config: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut config);
    fs::write(&path, config.to_string()).unwrap();
}

fn files_use_pytorch_layout_and_peft_key_names<B: AutodiffBackend>() {
    let (model, dir) = saved::<B>("layout", WegeftConfig::new(3));
    let tensors = read_safetensors(&dir.join(WEIGHTS_FILE)).unwrap();
    let keys: Vec<&str> = tensors.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["base_model.model.blocks.0.fc.wegeft_phi.weight", "base_model.model.blocks.0.fc.wegeft_psi.weight"],
        "one shared pair, stored once under its owner"
    );
    assert_eq!(tensors[keys[0]].shape, [3, TINY_WIDTH]);
    let phi = crate::common::adapter_tensors(&model.adapters)[0].clone().into_data().to_vec::<f32>().unwrap();
    assert_eq!(tensors[keys[0]].values, phi);
    let config: serde_json::Value = serde_json::from_str(&fs::read_to_string(dir.join(CONFIG_FILE)).unwrap()).unwrap();
    assert_eq!(config["format_version"], 1);
    assert_eq!(config["peft_type"], "WEGEFT");
    assert_eq!(config["groups"][0]["name"], "blocks.*.fc");
}

fn a_missing_tensor_is_named<B: AutodiffBackend>() {
    let (_, dir) = saved::<B>("missing", WegeftConfig::new(3));
    edit_tensors(&dir, |t| {
        t.remove("base_model.model.blocks.0.fc.wegeft_psi.weight");
    });
    match load_into_fresh::<B>(&dir, WegeftConfig::new(3)).unwrap_err() {
        PeftError::MissingTensor { key, expected, .. } => {
            assert_eq!(key, "base_model.model.blocks.0.fc.wegeft_psi.weight");
            assert_eq!(expected, [3, TINY_WIDTH]);
        }
        other => panic!("unexpected {other}"),
    }
}

fn an_unexpected_tensor_is_named<B: AutodiffBackend>() {
    let (_, dir) = saved::<B>("unexpected", LoraConfig::new(2));
    edit_tensors(&dir, |t| {
        let extra = t["base_model.model.blocks.0.fc.lora_A.weight"].clone();
        t.insert("base_model.model.blocks.9.fc.lora_A.weight".into(), extra);
    });
    let error = load_into_fresh::<B>(&dir, LoraConfig::new(2)).unwrap_err();
    assert!(matches!(&error, PeftError::UnexpectedTensor { key, .. } if key.contains("blocks.9")), "{error}");
}

fn a_wrongly_shaped_tensor_names_both_shapes<B: AutodiffBackend>() {
    let (_, dir) = saved::<B>("shape", LoraConfig::new(2));
    edit_tensors(&dir, |t| {
        let b = t.get_mut("base_model.model.blocks.1.fc.lora_B.weight").unwrap();
        b.shape = vec![b.shape[1], b.shape[0]];
    });
    let error = load_into_fresh::<B>(&dir, LoraConfig::new(2)).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, PeftError::ShapeMismatch { .. }), "{message}");
    assert!(message.contains("[2, 12]") && message.contains("[12, 2]") && message.contains("lora_B"), "{message}");
}

fn a_truncated_or_corrupt_file_is_an_error<B: AutodiffBackend>() {
    let (_, dir) = saved::<B>("truncated", WegeftConfig::new(3));
    let path = dir.join(WEIGHTS_FILE);
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let error = load_into_fresh::<B>(&dir, WegeftConfig::new(3)).unwrap_err();
    assert!(matches!(error, PeftError::Safetensors { .. }), "{error}");
    fs::write(&path, b"not a safetensors file at all").unwrap();
    assert!(matches!(load_into_fresh::<B>(&dir, WegeftConfig::new(3)), Err(PeftError::Safetensors { .. })));
}

fn a_newer_format_version_is_refused_and_unknown_keys_only_warn<B: AutodiffBackend>() {
    let (model, dir) = saved::<B>("version", WegeftConfig::new(3));
    edit_config(&dir, |c| c["a_future_option"] = serde_json::json!(true));
    let file = wegeft::AdapterFile::read(&dir).unwrap();
    assert_eq!(file.warnings.len(), 1);
    assert!(file.warnings[0].contains("a_future_option"));
    let restored = file.apply(Tiny::<B>::new(WegeftConfig::new(3)).adapters).unwrap();
    let x = random::<B, 2>([2, TINY_WIDTH]);
    let restored = Tiny { adapters: restored, ..model.clone() };
    restored.forward(x.clone()).into_data().assert_eq(&model.forward(x).into_data(), true);

    edit_config(&dir, |c| c["format_version"] = serde_json::json!(2));
    let error = load_into_fresh::<B>(&dir, WegeftConfig::new(3)).unwrap_err();
    assert!(matches!(error, PeftError::UnsupportedVersion { found: 2, supported: 1, .. }), "{error}");
}

fn a_plan_with_bad_indices_unknown_nested_keys_or_unusable_settings_is_refused<B: AutodiffBackend>() {
    let (_, dir) = saved::<B>("bad-plan", WegeftConfig::new(3));
    let original = fs::read_to_string(dir.join(CONFIG_FILE)).unwrap();
    let edits: [(fn(&mut serde_json::Value), &str); 3] = [
        (|c| c["groups"][0]["members"] = serde_json::json!([99]), "member 99"),
        (|c| c["layers"][0]["stride"] = serde_json::json!(2), "unknown field `stride`"),
        (|c| c["method"]["wegeft"]["dropout"] = serde_json::json!(2.0), "dropout must be in [0, 1)"),
    ];
    for (edit, expected) in edits {
        fs::write(dir.join(CONFIG_FILE), &original).unwrap();
        edit_config(&dir, edit);
        let error = load_into_fresh::<B>(&dir, WegeftConfig::new(3)).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, PeftError::BadConfigFile { .. }) && message.contains(expected), "{expected}: {message}");
    }
}

fn an_adapter_for_another_model_is_refused<B: AutodiffBackend>() {
    let (_, dir) = saved::<B>("mismatch", WegeftConfig::new(3));
    for other in [
        wegeft::AdapterMethod::from(LoraConfig::new(3)),
        WegeftConfig::new(4).into(),
        WegeftConfig::new(3).with_alpha(Some(6.0)).into(),
        WegeftConfig::new(3).with_sharing(wegeft::Sharing::PerLayer).into(),
    ] {
        let error = load_into_fresh::<B>(&dir, other.clone()).unwrap_err();
        assert!(matches!(error, PeftError::ConfigMismatch { .. }), "{other:?}: {error}");
    }
    fs::write(dir.join(CONFIG_FILE), "{ not json").unwrap();
    assert!(matches!(load_into_fresh::<B>(&dir, WegeftConfig::new(3)), Err(PeftError::BadConfigFile { .. })));
    fs::remove_file(dir.join(CONFIG_FILE)).unwrap();
    let error = load_into_fresh::<B>(&dir, WegeftConfig::new(3)).unwrap_err();
    assert!(matches!(&error, PeftError::Io { path, .. } if path.ends_with(CONFIG_FILE)), "{error}");
}

fn wegeft_exports_exactly_as_a_peft_lora_adapter<B: AutodiffBackend>() {
    let (model, _) = saved::<B>("export-src", WegeftConfig::new(3).with_alpha(Some(4.5)));
    let dir = crate::common::temp_dir("export");
    wegeft::export_peft(&model, &dir).unwrap();

    let config: serde_json::Value = serde_json::from_str(&fs::read_to_string(dir.join(CONFIG_FILE)).unwrap()).unwrap();
    assert_eq!((config["peft_type"].as_str(), config["r"].as_u64(), config["lora_alpha"].as_f64()), (Some("LORA"), Some(3), Some(3.0)));
    let keys: Vec<String> = read_safetensors(&dir.join(WEIGHTS_FILE)).unwrap().into_keys().collect();
    assert!(keys.contains(&"base_model.model.blocks.2.fc.lora_B.weight".to_string()), "{keys:?}");

    // Loaded as a LoRA adapter onto the same frozen base, it reproduces the WeGeFT outputs.
    let lora = Tiny::<B>::new(LoraConfig::new(3).with_alpha(Some(3.0)));
    let as_lora = Tiny {
        adapters: load_adapter(lora.adapters, &dir).unwrap(),
        ..model.clone()
    };
    let x = random::<B, 2>([4, TINY_WIDTH]);
    assert_close("exported LoRA vs WeGeFT", as_lora.forward(x.clone()), model.forward(x), crate::common::matmul_tolerance::<B>());

    edit_config(&dir, |c| c["use_rslora"] = serde_json::json!(true));
    let lora = Tiny::<B>::new(LoraConfig::new(3).with_alpha(Some(3.0)));
    let error = load_adapter(lora.adapters, &dir).unwrap_err();
    assert!(matches!(&error, PeftError::BadConfigFile { message, .. } if message.contains("use_rslora")), "{error}");

    let two_blocks = Tiny { blocks: model.blocks[..2].to_vec(), ..model.clone() };
    let error = wegeft::export_peft(&two_blocks, &dir).unwrap_err();
    assert!(matches!(&error, PeftError::MissingLayer(name) if name == "blocks.2.fc"), "{error}");
}

backend_tests!(
    files_use_pytorch_layout_and_peft_key_names,
    a_missing_tensor_is_named,
    an_unexpected_tensor_is_named,
    a_wrongly_shaped_tensor_names_both_shapes,
    a_truncated_or_corrupt_file_is_an_error,
    a_newer_format_version_is_refused_and_unknown_keys_only_warn,
    an_adapter_for_another_model_is_refused,
    a_plan_with_bad_indices_unknown_nested_keys_or_unusable_settings_is_refused,
    wegeft_exports_exactly_as_a_peft_lora_adapter,
);
