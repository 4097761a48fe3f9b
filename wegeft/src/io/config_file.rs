//! `adapter_config.json`: our versioned plan, plus the fields HF PEFT reads for the method.

use std::path::Path;

use serde_json::{json, Map, Value};

use crate::error::{PeftError, Result};
use crate::methods::AdapterMethod;
use crate::plan::AdapterPlan;

/// The adapter format this build writes, and the newest it reads.
pub const FORMAT_VERSION: u64 = 1;

/// Keys of our own format; the method's PEFT fields are known too, others (from a newer writer)
/// only warn.
const KNOWN_KEYS: &[&str] = &["format_version", "target_modules", "method", "targets", "layers", "groups"];

/// The JSON written for a plan.
pub(crate) fn to_json(plan: &AdapterPlan) -> Value {
    let mut config = match serde_json::to_value(plan).expect("a plan serialises") {
        Value::Object(map) => map,
        _ => unreachable!("a plan is a JSON object"),
    };
    let names: Vec<&str> = plan.layers.iter().map(|layer| layer.name.as_str()).collect();
    config.insert("format_version".into(), json!(FORMAT_VERSION));
    config.insert("target_modules".into(), json!(names));
    config.extend(plan.method.peft_fields());
    Value::Object(config)
}

/// What an adapter file says about itself.
#[derive(Debug)]
pub enum FileDescription {
    /// Written by this crate: the full plan.
    Plan(AdapterPlan),
    /// An adapter HF PEFT saved: its method's settings; the model's targets and the file's
    /// tensors say the rest.
    Peft(AdapterMethod),
}

impl FileDescription {
    /// The method the file was written for.
    pub fn method(&self) -> &AdapterMethod {
        match self {
            Self::Plan(plan) => &plan.method,
            Self::Peft(method) => method,
        }
    }
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
        return Err(bad(format!("PEFT option `{option}` changes the update and is not supported")));
    }
    let Some(version) = config.get("format_version") else {
        let method = AdapterMethod::from_peft_fields(&config).ok_or_else(|| {
            bad("neither a wegeft adapter (no `format_version`) nor a PEFT adapter we read (`peft_type` \"LORA\" with `r` and `lora_alpha`, with or without `use_dora`, or \"VERA\" with `r`)".into())
        })?;
        let method = method.and_then(|method| method.validate().map(|()| method)).map_err(|error| bad(error.to_string()))?;
        return Ok(FileDescription::Peft(method));
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
    let plan: AdapterPlan = serde_json::from_value(Value::Object(config.clone())).map_err(|error| bad(format!("not a valid adapter plan: {error}")))?;
    plan.validate().map_err(|error| bad(error.to_string()))?;
    let method_fields = plan.method.peft_fields();
    for key in config.keys().filter(|key| !KNOWN_KEYS.contains(&key.as_str()) && !method_fields.contains_key(*key)) {
        warnings.push(format!("{}: unknown key `{key}` ignored", path.display()));
    }
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
    ["use_rslora", "fan_in_fan_out", "rank_pattern", "alpha_pattern", "lora_bias", "layer_replication"]
        .into_iter()
        .find(|key| set(key))
}

