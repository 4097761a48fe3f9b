//! Properties that must hold for any adapter: merge, save/load, gradient sums, frozen weights.

use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::{Tensor, TensorData};
use burn::tensor::backend::AutodiffBackend;
use crate::common::{assert_close, random, random_linear, Tiny, TINY_WIDTH};
use wegeft::{
    AdapterMethod, DoraConfig, Injector, LoraConfig, ParamReport, Targets, VeraConfig, WegeftConfig, WegeftInit,
};

/// One config of every method (and both WeGeFT presets and sharings).
pub fn methods() -> Vec<AdapterMethod> {
    vec![
        WegeftConfig::new(3).into(),
        WegeftConfig::new(3).with_init(WegeftInit::Llm).with_alpha(Some(6.0)).into(),
        WegeftConfig::new(3).with_sharing(wegeft::Sharing::PerLayer).into(),
        LoraConfig::new(3).with_alpha(Some(6.0)).into(),
        DoraConfig::new(3).with_alpha(Some(6.0)).into(),
        VeraConfig::new(5).into(),
    ]
}

fn fresh_adapters_leave_outputs_unchanged<B: AutodiffBackend>() {
    for method in methods() {
        let model = Tiny::<B>::new(method.clone());
        let x = random::<B, 3>([2, 4, TINY_WIDTH]);
        let plain = model.blocks.iter().fold(x.clone(), |h, block| {
            burn::tensor::activation::gelu(block.base.forward(h))
        });
        let plain = model.head.forward(plain);
        let adapted = model.forward(x);
        adapted.into_data().assert_eq(&plain.into_data(), true);
    }
}

fn merged_and_unmerged_outputs_agree<B: AutodiffBackend>() {
    for method in methods() {
        let model = Tiny::<B>::new(method.clone()).randomize_adapters();
        let x = random::<B, 3>([2, 4, TINY_WIDTH]);
        let unmerged = model.forward(x.clone());
        let plain = model.blocks.iter().fold(x.clone(), |h, b| burn::tensor::activation::gelu(b.base.forward(h)));
        let plain = model.head.forward(plain);
        assert!(crate::common::relative_error(unmerged.clone(), plain) > 1e-2, "{method:?}: the adapter does nothing");
        assert_close(&format!("{method:?}"), model.merged_forward(x), unmerged, crate::common::matmul_tolerance::<B>());
    }
}

fn save_then_load_reproduces_outputs_exactly<B: AutodiffBackend>() {
    let dir = crate::common::temp_dir("save_load");
    for method in methods() {
        let trained = Tiny::<B>::new(method.clone()).randomize_adapters();
        wegeft::save_adapter(&trained.adapters, &dir).unwrap();
        let fresh = Tiny::<B>::new(method.clone());
        let restored = Tiny {
            adapters: wegeft::load_adapter(fresh.adapters, &dir).unwrap(),
            blocks: trained.blocks.clone(),
            head: trained.head.clone(),
        };
        let x = random::<B, 2>([3, TINY_WIDTH]);
        restored.forward(x.clone()).into_data().assert_eq(&trained.forward(x).into_data(), true);
    }
}

fn a_shared_pair_gets_the_sum_of_its_layers_gradients<B: AutodiffBackend>() {
    let mut injector = Injector::new(WegeftConfig::new(3), Targets::new().suffix("proj")).unwrap();
    let layers: Vec<_> = [7, 5, 9]
        .iter()
        .enumerate()
        .map(|(i, &d_out)| injector.linear(&format!("layers.{i}.proj"), random_linear::<B>(10, d_out)).unwrap())
        .collect();
    let mut bank = injector.finish::<B>(&Default::default()).unwrap();
    for pair in crate::common::pairs_mut(&mut bank) {
        pair.phi = pair.phi.clone().map(|t| random(t.dims()).require_grad());
        pair.psi = pair.psi.clone().map(|t| random(t.dims()).require_grad());
    }
    let x = random::<B, 2>([6, 10]);
    let cotangents: Vec<Tensor<B, 2>> = [7, 5, 9].iter().map(|&d| random([6, d])).collect();
    let layer_loss = |i: usize| (layers[i].forward(x.clone(), &bank) * cotangents[i].clone()).sum();

    let total = (layer_loss(0) + layer_loss(1) + layer_loss(2)).backward();
    let pair = crate::common::pairs(&bank)[0];
    let (mut phi_sum, mut psi_sum) = (pair.phi.val().inner().zeros_like(), pair.psi.val().inner().zeros_like());
    for i in 0..3 {
        let grads = layer_loss(i).backward();
        phi_sum = phi_sum + pair.phi.grad(&grads).unwrap();
        psi_sum = psi_sum + pair.psi.grad(&grads).unwrap();
    }
    assert_close("phi", pair.phi.grad(&total).unwrap(), phi_sum, 1e-5);
    assert_close("psi", pair.psi.grad(&total).unwrap(), psi_sum, 1e-5);
}

fn frozen_weights_stay_bit_identical_under_the_optimizer<B: AutodiffBackend>() {
    for method in methods() {
        let mut model = Tiny::<B>::new(method.clone());
        let before = model.clone();
        let mut optimizer = AdamWConfig::new().init::<B, Tiny<B>>();
        let x = random::<B, 2>([8, TINY_WIDTH]);
        let target = random::<B, 2>([8, crate::common::TINY_CLASSES]);
        for _ in 0..10 {
            let loss = (model.forward(x.clone()) - target.clone()).powi_scalar(2).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(1e-2, model, grads);
        }
        for (after, before) in model.blocks.iter().zip(&before.blocks) {
            after.base.weight.val().into_data().assert_eq(&before.base.weight.val().into_data(), true);
            let bias = |l: &wegeft::PeftLinear<B>| l.base.bias.as_ref().unwrap().val().into_data();
            bias(after).assert_eq(&bias(before), true);
        }
        let changed = |a: TensorData, b: TensorData| a != b;
        assert!(changed(model.head.weight.val().into_data(), before.head.weight.val().into_data()), "{method:?}: head did not train");
        assert_ne!(adapter_values(&model), adapter_values(&before), "{method:?}: adapter did not train");
    }
}

fn param_report_counts_adapter_head_and_frozen_once<B: AutodiffBackend>() {
    for method in methods() {
        let model = Tiny::<B>::new(method.clone());
        let report = ParamReport::of(&model);
        let plan = model.adapters.plan().unwrap();
        assert_eq!(report.adapter, plan.adapter_params(), "{method:?}");
        assert_eq!(report.adapter_frozen, plan.adapter_frozen_params(), "{method:?}");
        let vera = matches!(method, AdapterMethod::Vera(_));
        assert_eq!(report.adapter_frozen, if vera { 2 * 5 * TINY_WIDTH } else { 0 }, "{method:?}");
        assert_eq!(report.head, TINY_WIDTH * crate::common::TINY_CLASSES + crate::common::TINY_CLASSES);
        assert_eq!(report.frozen, 3 * (TINY_WIDTH * TINY_WIDTH + TINY_WIDTH));
    }
}

fn weight_dropout_acts_only_while_training<B: AutodiffBackend>() {
    let model = Tiny::<B>::new(WegeftConfig::new(3).with_dropout(0.5)).randomize_adapters();
    let x = random::<B, 2>([4, TINY_WIDTH]);
    let first = model.forward(x.clone()).into_data();
    let second = model.forward(x.clone()).into_data();
    assert_ne!(first, second, "dropout on W should make training forwards differ");
    let inference = model.valid();
    let x = x.inner();
    inference.forward(x.clone()).into_data().assert_eq(&inference.forward(x).into_data(), true);
}

fn adapter_values<B: AutodiffBackend>(model: &Tiny<B>) -> Vec<TensorData> {
    crate::common::adapter_tensors(&model.adapters).into_iter().map(|tensor| tensor.into_data()).collect()
}


backend_tests!(
    fresh_adapters_leave_outputs_unchanged,
    merged_and_unmerged_outputs_agree,
    save_then_load_reproduces_outputs_exactly,
    a_shared_pair_gets_the_sum_of_its_layers_gradients,
    frozen_weights_stay_bit_identical_under_the_optimizer,
    param_report_counts_adapter_head_and_frozen_once,
    weight_dropout_acts_only_while_training,
);
