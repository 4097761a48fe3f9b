//! The same adapter trained for 20 steps from the same start on ndarray and on WGPU ends alike.
#![cfg(feature = "wgpu")]

use burn::backend::{Autodiff, NdArray, Wgpu};
use burn::module::Param;
use burn::nn::Linear;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use crate::common::{random, Tiny, TINY_CLASSES, TINY_WIDTH};
use wegeft::{AdapterMethod, DoraConfig, LoraConfig, VeraConfig, WegeftConfig, WegeftInit};

type Cpu = Autodiff<NdArray>;
type Gpu = Autodiff<Wgpu>;

fn to<B2: Backend, const D: usize>(tensor: Tensor<impl Backend, D>) -> Tensor<B2, D> {
    Tensor::from_data(tensor.into_data(), &Default::default())
}

fn copy_linear<B2: Backend>(linear: &Linear<impl Backend>) -> Linear<B2> {
    Linear {
        weight: Param::from_tensor(to(linear.weight.val())),
        bias: linear.bias.as_ref().map(|bias| Param::from_tensor(to(bias.val()))),
    }
}

fn train<B: AutodiffBackend>(mut model: Tiny<B>, x: TensorData, target: TensorData) -> Tiny<B> {
    let x = Tensor::<B, 2>::from_data(x, &Default::default());
    let target = Tensor::<B, 2>::from_data(target, &Default::default());
    let mut optimizer = AdamWConfig::new().init::<B, Tiny<B>>();
    for _ in 0..20 {
        let loss = (model.forward(x.clone()) - target.clone()).powi_scalar(2).mean();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(1e-2, model, grads);
    }
    model
}

fn adapter_tensors<B: Backend>(model: &Tiny<B>) -> Vec<Vec<f32>> {
    crate::common::adapter_tensors(&model.adapters)
        .into_iter()
        .map(|tensor| tensor.into_data().convert::<f32>().to_vec().unwrap())
        .collect()
}

#[test]
fn twenty_steps_on_ndarray_and_wgpu_end_within_1e_3() {
    let methods: [AdapterMethod; 5] = [
        WegeftConfig::new(3).into(),
        WegeftConfig::new(3).with_init(WegeftInit::Llm).into(),
        LoraConfig::new(3).into(),
        DoraConfig::new(3).into(),
        VeraConfig::new(5).into(),
    ];
    for method in methods {
        let cpu = Tiny::<Cpu>::new(method.clone());
        let dir = crate::common::temp_dir("cross-backend");
        wegeft::save_adapter(&cpu.adapters, &dir).unwrap();
        let blocks = cpu.blocks.iter().map(|block| copy_linear(&block.base)).collect();
        let gpu = Tiny::<Gpu>::with_layers(method.clone(), blocks, copy_linear(&cpu.head));
        let gpu = Tiny {
            adapters: wegeft::load_adapter(gpu.adapters, &dir).unwrap(),
            ..gpu
        };
        let x = random::<NdArray, 2>([16, TINY_WIDTH]).into_data();
        let target = random::<NdArray, 2>([16, TINY_CLASSES]).into_data();

        let cpu = adapter_tensors(&train(cpu, x.clone(), target.clone()));
        let gpu = adapter_tensors(&train(gpu, x, target));
        let (mut diff, mut scale) = (0f32, 0f32);
        for (a, b) in cpu.iter().flatten().zip(gpu.iter().flatten()) {
            diff = diff.max((a - b).abs());
            scale = scale.max(a.abs());
        }
        let relative = diff / scale;
        println!("{method:?}: max relative parameter difference after 20 steps = {relative:e}");
        assert!(relative <= 1e-3, "{method:?}: {relative:e}");
    }
}
