//! Target selection, grouping, dry runs, bad configs and parameter accounting.

use wegeft::{
    AdapterPlan, Injector, LoraConfig, PeftError, Sharing, Targets, WegeftConfig, WegeftInit,
};

/// Offers every linear layer of a ViT-B/16 (12 blocks) and returns the plan.
fn vit_b_plan(method: impl Into<wegeft::AdapterMethod>, targets: Targets) -> Result<AdapterPlan, PeftError> {
    let mut injector = Injector::new(method, targets)?;
    for block in 0..12 {
        for (name, d_in, d_out) in [("attn.qkv", 768, 2304), ("attn.proj", 768, 768), ("mlp.fc1", 768, 3072), ("mlp.fc2", 3072, 768)] {
            injector.offer(&format!("blocks.{block}.{name}"), d_in, d_out)?;
        }
    }
    injector.offer("head", 768, 1000)?;
    injector.into_plan()
}

/// Offers every linear layer of Llama-2-7B (32 layers, d = 4096, ffn = 11008).
fn llama2_7b_plan(method: impl Into<wegeft::AdapterMethod>, targets: Targets) -> Result<AdapterPlan, PeftError> {
    let mut injector = Injector::new(method, targets)?;
    for layer in 0..32 {
        for (name, d_in, d_out) in [
            ("self_attn.q_proj", 4096, 4096),
            ("self_attn.k_proj", 4096, 4096),
            ("self_attn.v_proj", 4096, 4096),
            ("self_attn.o_proj", 4096, 4096),
            ("mlp.gate_proj", 4096, 11008),
            ("mlp.up_proj", 4096, 11008),
            ("mlp.down_proj", 11008, 4096),
        ] {
            injector.offer(&format!("model.layers.{layer}.{name}"), d_in, d_out)?;
        }
    }
    injector.into_plan()
}

fn qkvud() -> Targets {
    ["q_proj", "k_proj", "v_proj", "up_proj", "down_proj"]
        .into_iter()
        .fold(Targets::new(), Targets::suffix)
}

#[test]
fn shared_r16_on_vit_b_attn_proj_has_24576_parameters() {
    let plan = vit_b_plan(WegeftConfig::new(16), Targets::new().suffix("attn.proj")).unwrap();
    assert_eq!(plan.layers.len(), 12);
    assert_eq!(plan.groups.len(), 1);
    assert_eq!(plan.groups[0].name, "blocks.*.attn.proj");
    assert_eq!(plan.adapter_params(), 24_576);
}

#[test]
fn per_layer_and_lora_counts_on_vit_b() {
    let per_layer = WegeftConfig::new(16).with_sharing(Sharing::PerLayer);
    let plan = vit_b_plan(per_layer, Targets::new().suffix("attn.proj")).unwrap();
    assert_eq!(plan.groups.len(), 12);
    assert_eq!(plan.adapter_params(), 12 * 24_576);
    let lora = vit_b_plan(LoraConfig::new(8), Targets::new().suffix("attn.proj")).unwrap();
    assert_eq!(lora.adapter_params(), 147_456);
}

#[test]
fn shared_r64_on_llama2_7b_qkvud_has_3506176_parameters() {
    let config = WegeftConfig::new(64).with_init(WegeftInit::Llm).with_alpha(Some(128.0));
    let plan = llama2_7b_plan(config, qkvud()).unwrap();
    assert_eq!(plan.layers.len(), 5 * 32);
    assert_eq!(plan.groups.len(), 5, "one group per module type; down_proj its own");
    assert_eq!(plan.adapter_params(), 3_506_176);
    assert_eq!(plan.method.scale(), 2.0);
    let lora = llama2_7b_plan(LoraConfig::new(16).with_alpha(Some(32.0)), qkvud()).unwrap();
    assert_eq!(lora.adapter_params(), 28_049_408);
}

#[test]
fn suffix_matches_whole_components_only() {
    let mut injector = Injector::new(WegeftConfig::new(2), Targets::new().suffix("proj")).unwrap();
    assert!(injector.offer("blocks.0.attn.proj", 8, 8).unwrap().is_some());
    assert!(injector.offer("blocks.0.attn.xproj", 8, 8).unwrap().is_none());
    assert!(injector.offer("proj", 8, 8).unwrap().is_some());
}

#[test]
fn exact_regex_and_layer_indices_select_layers() {
    let targets = Targets::new()
        .exact("blocks.1.mlp.fc1")
        .regex(r"blocks\.\d+\.attn\.(q|v)")
        .layers([1, 3]);
    let mut injector = Injector::new(WegeftConfig::new(2), targets).unwrap();
    let mut chosen = Vec::new();
    for block in 0..4 {
        for name in ["attn.q", "attn.k", "attn.v", "mlp.fc1"] {
            let name = format!("blocks.{block}.{name}");
            if injector.offer(&name, 8, 4).unwrap().is_some() {
                chosen.push(name);
            }
        }
    }
    assert_eq!(
        chosen,
        ["blocks.1.attn.q", "blocks.1.attn.v", "blocks.1.mlp.fc1", "blocks.3.attn.q", "blocks.3.attn.v"]
    );
    let plan = injector.into_plan().unwrap();
    let groups: Vec<&str> = plan.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(groups, ["blocks.*.attn.q", "blocks.*.attn.v", "blocks.*.mlp.fc1"]);
    let listing = plan.to_string();
    assert!(listing.contains("blocks.3.attn.v") && listing.contains("not adapted: blocks.0.attn.q"), "{listing}");
}

#[test]
fn gqa_layers_with_other_d_out_share_a_group() {
    let mut injector = Injector::new(WegeftConfig::new(4), Targets::new().regex(r".*\.(k|v)_proj")).unwrap();
    injector.offer("layers.0.k_proj", 64, 16).unwrap();
    injector.offer("layers.1.k_proj", 64, 16).unwrap();
    injector.offer("layers.0.v_proj", 64, 16).unwrap();
    let plan = injector.into_plan().unwrap();
    assert_eq!(plan.groups.len(), 2);
}

#[test]
fn targets_matching_nothing_is_an_error() {
    let error = vit_b_plan(WegeftConfig::new(16), Targets::new().suffix("q_proj")).unwrap_err();
    assert!(matches!(error, PeftError::NoTargetMatched { offered: 49, .. }), "{error}");
    assert!(error.to_string().contains("q_proj"), "{error}");
}

#[test]
fn a_shared_group_with_differing_d_in_is_an_error() {
    let mut injector = Injector::new(WegeftConfig::new(4), Targets::new().suffix("fc")).unwrap();
    injector.offer("blocks.0.fc", 16, 8).unwrap();
    let error = injector.offer("blocks.1.fc", 12, 8).unwrap_err();
    match error {
        PeftError::GroupInputMismatch { first_d_in: 16, d_in: 12, ref layer, .. } => assert_eq!(layer, "blocks.1.fc"),
        other => panic!("unexpected error {other}"),
    }
    // Per layer, the same shapes are fine.
    let mut injector = Injector::new(WegeftConfig::new(4).with_sharing(Sharing::PerLayer), Targets::new().suffix("fc")).unwrap();
    injector.offer("blocks.0.fc", 16, 8).unwrap();
    injector.offer("blocks.1.fc", 12, 8).unwrap();
}

#[test]
fn bad_configs_are_errors() {
    let suffix = || Targets::new().suffix("fc");
    assert!(matches!(Injector::new(WegeftConfig::new(0), suffix()), Err(PeftError::InvalidConfig(_))));
    assert!(matches!(Injector::new(LoraConfig::new(0), suffix()), Err(PeftError::InvalidConfig(_))));
    assert!(matches!(Injector::new(WegeftConfig::new(4).with_dropout(1.0), suffix()), Err(PeftError::InvalidConfig(_))));
    assert!(matches!(Injector::new(WegeftConfig::new(4), Targets::new()), Err(PeftError::InvalidConfig(_))));
    assert!(matches!(Injector::new(WegeftConfig::new(4), Targets::new().regex("(")), Err(PeftError::BadPattern { .. })));
    let mut injector = Injector::new(WegeftConfig::new(4), suffix()).unwrap();
    injector.offer("a.fc", 4, 4).unwrap();
    assert!(matches!(injector.offer("a.fc", 4, 4), Err(PeftError::DuplicateLayer(_))));
}
