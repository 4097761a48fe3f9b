//! Layer math and gradients against the golden fixtures of `fixtures/make_fixtures.py`.

use burn::module::Param;
use burn::tensor::Tensor;
use burn::tensor::backend::AutodiffBackend;
use crate::common::{assert_close, loras_mut, matmul_tolerance, pairs_mut, Case};
use wegeft::{AdapterBank, Injector, LoraConfig, PeftLinear, Targets, WegeftConfig, WegeftInit};

fn stack<B: AutodiffBackend>(case: &Case, injector: &mut Injector) -> Vec<PeftLinear<B>> {
    (0..3)
        .map(|i| injector.linear(&format!("layers.{i}"), case.linear::<B>(i)).unwrap())
        .collect()
}

fn forward<B: AutodiffBackend>(layers: &[PeftLinear<B>], bank: &AdapterBank<B>, x: Tensor<B, 2>) -> Tensor<B, 2> {
    layers.iter().fold(x, |h, layer| layer.forward(h, bank))
}

fn check_wegeft<B: AutodiffBackend>(name: &str, init: WegeftInit) {
    let case = Case::load(name);
    let config = WegeftConfig::new(3)
        .with_init(init)
        .with_alpha(Some(case.scalar("scale") * 3.0));
    let mut injector = Injector::new(config, Targets::new().regex(r"layers\.\d+")).unwrap();
    let layers = stack::<B>(&case, &mut injector);
    let mut bank = injector.finish::<B>(&Default::default()).unwrap();
    assert_eq!(pairs_mut(&mut bank).len(), 1, "the three layers share one pair");
    pairs_mut(&mut bank)[0].phi = Param::from_tensor(case.tensor::<B, 2>("phi").require_grad());
    pairs_mut(&mut bank)[0].psi = Param::from_tensor(case.tensor::<B, 2>("psi").require_grad());

    let x = case.tensor::<B, 2>("x").require_grad();
    let y = forward(&layers, &bank, x.clone());
    assert_close("output", y.clone(), case.tensor("y"), matmul_tolerance::<B>());

    let grads = (y * case.tensor::<B, 2>("g")).sum().backward();
    let pair = crate::common::pairs(&bank)[0];
    assert_close("grad x", x.grad(&grads).unwrap(), case.tensor("grad_x"), matmul_tolerance::<B>());
    assert_close("grad phi", pair.phi.grad(&grads).unwrap(), case.tensor("grad_phi"), matmul_tolerance::<B>());
    assert_close("grad psi", pair.psi.grad(&grads).unwrap(), case.tensor("grad_psi"), matmul_tolerance::<B>());
    for layer in &layers {
        assert!(layer.base.weight.grad(&grads).is_none(), "frozen weight got a gradient");
    }
}

fn wegeft_vision_preset_at_init_matches_reference<B: AutodiffBackend>() {
    check_wegeft::<B>("wegeft_vision_init", WegeftInit::Vision);
}

fn wegeft_vision_preset_trained_matches_reference<B: AutodiffBackend>() {
    check_wegeft::<B>("wegeft_vision_trained", WegeftInit::Vision);
}

fn wegeft_llm_preset_at_init_matches_reference<B: AutodiffBackend>() {
    check_wegeft::<B>("wegeft_llm_init", WegeftInit::Llm);
}

fn wegeft_llm_preset_trained_matches_reference<B: AutodiffBackend>() {
    check_wegeft::<B>("wegeft_llm_trained", WegeftInit::Llm);
}

fn lora_matches_reference<B: AutodiffBackend>() {
    let case = Case::load("lora");
    let config = LoraConfig::new(3).with_alpha(Some(case.scalar("scale") * 3.0));
    let mut injector = Injector::new(config, Targets::new().regex(r"layers\.\d+")).unwrap();
    let layers = stack::<B>(&case, &mut injector);
    let mut bank = injector.finish::<B>(&Default::default()).unwrap();
    for (i, adapter) in loras_mut(&mut bank).into_iter().enumerate() {
        // The fixture is in PyTorch layout: A is r×d_in, B is d_out×r.
        adapter.a = Param::from_tensor(case.tensor::<B, 2>(&format!("lora_a{i}")).transpose().require_grad());
        adapter.b = Param::from_tensor(case.tensor::<B, 2>(&format!("lora_b{i}")).transpose().require_grad());
    }
    let x = case.tensor::<B, 2>("x").require_grad();
    let y = forward(&layers, &bank, x.clone());
    assert_close("output", y.clone(), case.tensor("y"), matmul_tolerance::<B>());

    let grads = (y * case.tensor::<B, 2>("g")).sum().backward();
    assert_close("grad x", x.grad(&grads).unwrap(), case.tensor("grad_x"), matmul_tolerance::<B>());
    for (i, adapter) in loras_mut(&mut bank).into_iter().enumerate() {
        let grad_a = adapter.a.grad(&grads).unwrap().transpose();
        let grad_b = adapter.b.grad(&grads).unwrap().transpose();
        assert_close("grad A", grad_a, case.tensor(&format!("grad_lora_a{i}")), matmul_tolerance::<B>());
        assert_close("grad B", grad_b, case.tensor(&format!("grad_lora_b{i}")), matmul_tolerance::<B>());
    }
}

fn peft_written_lora_adapter_loads_and_matches_reference<B: AutodiffBackend>() {
    let case = Case::load("lora");
    let config = LoraConfig::new(3).with_alpha(Some(7.0));
    let mut injector = Injector::new(config, Targets::new().regex(r"layers\.\d+")).unwrap();
    let layers = stack::<B>(&case, &mut injector);
    let bank = injector.finish::<B>(&Default::default()).unwrap();
    let bank = wegeft::load_adapter(bank, crate::common::fixture_dir().join("peft_lora_adapter")).unwrap();
    let y = forward(&layers, &bank, case.tensor("x"));
    assert_close("output", y, case.tensor("y"), matmul_tolerance::<B>());
}

backend_tests!(
    wegeft_vision_preset_at_init_matches_reference,
    wegeft_vision_preset_trained_matches_reference,
    wegeft_llm_preset_at_init_matches_reference,
    wegeft_llm_preset_trained_matches_reference,
    lora_matches_reference,
    peft_written_lora_adapter_loads_and_matches_reference,
);
