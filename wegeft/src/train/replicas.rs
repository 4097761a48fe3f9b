//! One model trained by several ranks stays one model: every rank starts from rank 0's trainable
//! values, and each step sums every trainable gradient over the ranks (one buffer in module
//! order, one all-reduce) before the optimizer, so every rank takes the same step and keeps the
//! same optimizer state. Frozen weights are loaded by each rank and never travel.

use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param};
use burn::optim::{GradientsParams, MultiGradientsParams};
use burn::tensor::backend::{AutodiffBackend, Backend, DeviceOps};
use burn::tensor::{Tensor, TensorData};

use crate::train::Collective;

/// The trainable parameters' shapes in module order, which every rank must share for their
/// gradient buffers to line up (the adapter plan, the head).
pub fn trainable_layout<B: AutodiffBackend, M: AutodiffModule<B>>(module: &M) -> String {
    struct Shapes(Vec<String>);
    impl<B: AutodiffBackend> ModuleVisitor<B> for Shapes {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let value = param.val();
            if value.is_require_grad() {
                self.0.push(format!("{:?}", value.dims()));
            }
        }
    }
    let mut shapes = Shapes(Vec::new());
    module.visit(&mut shapes);
    format!("{} tensors: {}", shapes.0.len(), shapes.0.join(" "))
}

/// `module` with rank 0's values of its trainable parameters, on every rank.
pub fn broadcast_trainable<B: AutodiffBackend, M: AutodiffModule<B>>(world: &dyn Collective, module: M) -> M {
    struct Gather(Vec<f32>);
    impl<B: AutodiffBackend> ModuleVisitor<B> for Gather {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let value = param.val();
            if value.is_require_grad() {
                self.0.extend(host_values(value.inner()));
            }
        }
    }
    struct Scatter(std::vec::IntoIter<f32>);
    impl<B: AutodiffBackend> ModuleMapper<B> for Scatter {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            if !param.val().is_require_grad() {
                return param;
            }
            param.map(|value| {
                let dims = value.dims();
                let values: Vec<f32> = self.0.by_ref().take(dims.iter().product()).collect();
                Tensor::from_data(TensorData::new(values, dims), &value.device()).require_grad()
            })
        }
    }
    let mut gathered = Gather(Vec::new());
    module.visit(&mut gathered);
    let bytes = world.broadcast("the start-up broadcast of rank 0's trainable parameters", to_bytes(&gathered.0));
    module.map(&mut Scatter(from_bytes(&bytes).into_iter()))
}

/// The gradients of one step: one set, or one per device of burn's multi-device Learner.
pub(crate) enum StepGradients<'a> {
    Single(&'a mut GradientsParams),
    Multi(&'a mut MultiGradientsParams),
}

/// Replaces each trainable parameter's gradient in `grads` by its sum over this rank's devices
/// and all ranks. A parameter no rank has a gradient for stays without one (its moments stay).
pub(crate) fn sum_gradients<B: AutodiffBackend, M: AutodiffModule<B>>(world: &dyn Collective, module: &M, mut grads: StepGradients<'_>) {
    let mut gather = GatherGradients::<B::InnerBackend> { grads: &mut grads, values: Vec::new(), present: Vec::new(), homes: Vec::new() };
    module.visit(&mut gather);
    let GatherGradients { mut values, present, homes, .. } = gather;
    let count = present.len();
    values.extend(present);
    world.sum("the gradient all-reduce", &mut values);
    let (values, present) = values.split_at(values.len() - count);
    let mut scatter = ScatterGradients { grads: &mut grads, values: values.iter(), present: present.iter(), homes: homes.into_iter() };
    module.visit(&mut scatter);
}

/// Where a gradient lives: its device, and for multi-device steps the device's slot.
struct Home<B: Backend> {
    device: B::Device,
    slot: usize,
}

struct GatherGradients<'g, 'a, B: Backend> {
    grads: &'g mut StepGradients<'a>,
    values: Vec<f32>,
    /// 1 for each trainable parameter this rank has a gradient for, 0 otherwise.
    present: Vec<f32>,
    homes: Vec<Option<Home<B>>>,
}

impl<AB: AutodiffBackend> ModuleVisitor<AB> for GatherGradients<'_, '_, AB::InnerBackend> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AB, D>>) {
        let value = param.val();
        if !value.is_require_grad() {
            return;
        }
        let grad = match &mut *self.grads {
            StepGradients::Single(grads) => grads.remove::<AB::InnerBackend, D>(param.id).map(|grad| (grad, 0)),
            // burn sums the devices' gradients on the device that owns the parameter's update.
            StepGradients::Multi(grads) => grads.remove::<AB::InnerBackend, D>(param.id).map(|(grad, device)| {
                let slot = grads.grads.iter().position(|(_, id)| *id == device.id()).unwrap_or(0);
                (grad, slot)
            }),
        };
        match grad {
            Some((grad, slot)) => {
                self.homes.push(Some(Home { device: grad.device(), slot }));
                self.values.extend(host_values(grad));
                self.present.push(1.0);
            }
            None => {
                self.homes.push(None);
                self.values.extend(std::iter::repeat_n(0.0, value.dims().iter().product()));
                self.present.push(0.0);
            }
        }
    }
}

struct ScatterGradients<'g, 'a, 'v, B: Backend> {
    grads: &'g mut StepGradients<'a>,
    values: std::slice::Iter<'v, f32>,
    present: std::slice::Iter<'v, f32>,
    homes: std::vec::IntoIter<Option<Home<B>>>,
}

impl<AB: AutodiffBackend> ModuleVisitor<AB> for ScatterGradients<'_, '_, '_, AB::InnerBackend> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AB, D>>) {
        let value = param.val();
        if !value.is_require_grad() {
            return;
        }
        let dims = value.dims();
        let summed: Vec<f32> = self.values.by_ref().take(dims.iter().product()).copied().collect();
        let anywhere = self.present.next().is_some_and(|&ranks| ranks > 0.0);
        let home = self.homes.next().flatten();
        if !anywhere {
            return;
        }
        let device = home.as_ref().map_or_else(|| value.inner().device(), |home| home.device.clone());
        let grad = Tensor::<AB::InnerBackend, D>::from_data(TensorData::new(summed, dims), &device);
        match &mut *self.grads {
            StepGradients::Single(grads) => grads.register(param.id, grad),
            StepGradients::Multi(grads) => {
                let slot = home.map_or(0, |home| home.slot);
                grads.grads[slot].0.register(param.id, grad);
            }
        }
    }
}

/// A tensor's values as f32 on the host (MPI sums host memory; adapters and heads train in f32).
fn host_values<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Vec<f32> {
    tensor.into_data().convert::<f32>().into_vec::<f32>().expect("converted to f32")
}

fn to_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|value| value.to_le_bytes()).collect()
}

fn from_bytes(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]])).collect()
}
