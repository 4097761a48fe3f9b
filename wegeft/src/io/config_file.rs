//! `adapter_config.json`: our versioned plan, plus the fields HF PEFT reads for LoRA.

use std::path::Path;

use serde_json::{json, Map, Value};

use crate::error::{PeftError, Result};
use crate::method::AdapterMethod;
use crate::plan::AdapterPlan;

/// The adapter format this build writes, and the newest it reads.
pub const FORMAT_VERSION: u64 = 1;

/// Keys this version knows; others (from a newer writer) only warn.
const KNOWN_KEYS: &[&str] = &[
    "format_version",
    "peft_type",
    "r",
    "target_modules",
    "method",
    "targets",
    "layers",
    "groups",
    "lora_alpha",
    "lora_dropout",
    "bias",
    "fan_in_fan_out",
    "task_type",
    "base_model_name_or_path",
    "modules_to_save",
    "init_lora_weights",
];

/// The JSON written for a plan.
pub(crate) fn to_json(plan: &AdapterPlan) -> Value {
    let mut config = match serde_json::to_value(plan).expect("a plan serialises") {
        Value::Object(map) => map,
        _ => unreachable!("a plan is a JSON object"),
    };
    let names: Vec<&str> = plan.layers.iter().map(|layer| layer.name.as_str()).collect();
    config.insert("format_version".into(), json!(FORMAT_VERSION));
    config.insert("peft_type".into(), json!(plan.method.peft_type()));
    config.insert("r".into(), json!(plan.method.rank()));
    config.insert("target_modules".into(), json!(names));
    if let AdapterMethod::Lora(lora) = &plan.method {
        let peft = json!({
            "lora_alpha": lora.scale() * lora.rank as f64,
            "lora_dropout": lora.dropout,
            "bias": "none",
            "fan_in_fan_out": false,
            "task_type": null,
            "base_model_name_or_path": null,
            "modules_to_save": null,
            "init_lora_weights": true,
        });
        config.extend(peft.as_object().expect("object").clone());
    }
    Value::Object(config)
}

/// What an adapter file says about itself.
#[derive(Debug)]
pub enum FileDescription {
    /// Written by this crate: the full plan.
    Plan(AdapterPlan),
    /// A plain HF PEFT LoRA adapter: rank and α only; its tensors say the rest.
    PeftLora {
        /// The LoRA rank `r`.
        rank: usize,
        /// `lora_alpha`: the update is scaled by α / r.
        alpha: f64,
    },
}

/// Parses `adapter_config.json`; unknown keys from a newer writer go to `warnings`.
pub(crate) fn parse(path: &Path, text: &str, warnings: &mut Vec<String>) -> Result<FileDescription> {
    let bad = |message: String| PeftError::BadConfigFile {
        path: path.to_path_buf(),
        message,
    };
    let config: Map<String, Value> = match serde_json::from_str(text) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(bad("expected a JSON object".into())),
        Err(error) => return Err(bad(format!("invalid JSON: {error}"))),
    };
    if let Some(option) = unsupported_peft_option(&config) {
        return Err(bad(format!("PEFT option `{option}` changes the LoRA update and is not supported")));
    }
    let Some(version) = config.get("format_version") else {
        return parse_peft_lora(&config).ok_or_else(|| {
            bad("neither a wegeft adapter (no `format_version`) nor a PEFT LoRA adapter (`peft_type` \"LORA\" with `r` and `lora_alpha`)".into())
        });
    };
    let version = version
        .as_u64()
        .ok_or_else(|| bad(format!("`format_version` must be a whole number, got {version}")))?;
    if version > FORMAT_VERSION {
        return Err(PeftError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    for key in config.keys().filter(|key| !KNOWN_KEYS.contains(&key.as_str())) {
        warnings.push(format!("{}: unknown key `{key}` ignored", path.display()));
    }
    let plan: AdapterPlan = serde_json::from_value(Value::Object(config)).map_err(|error| bad(format!("not a valid adapter plan: {error}")))?;
    plan.validate().map_err(|error| bad(error.to_string()))?;
    Ok(FileDescription::Plan(plan))
}

/// A PEFT LoRA option set to something that would change the math (and so must not be ignored).
fn unsupported_peft_option(config: &Map<String, Value>) -> Option<&'static str> {
    let set = |key: &str| match config.get(key) {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Object(map)) => !map.is_empty(),
        Some(Value::Array(list)) => !list.is_empty(),
        Some(_) => true,
    };
    ["use_rslora", "use_dora", "fan_in_fan_out", "rank_pattern", "alpha_pattern"]
        .into_iter()
        .find(|key| set(key))
}

fn parse_peft_lora(config: &Map<String, Value>) -> Option<FileDescription> {
    if config.get("peft_type")?.as_str()? != "LORA" {
        return None;
    }
    Some(FileDescription::PeftLora {
        rank: config.get("r")?.as_u64()? as usize,
        alpha: config.get("lora_alpha")?.as_f64()?,
    })
}
