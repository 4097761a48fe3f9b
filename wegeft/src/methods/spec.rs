//! A method's file layout, stated once: each tensor's key, shape and role. Saving, loading,
//! dry-run counts and PEFT export all read it; the tensors themselves are a module's parameters,
//! met in declaration order by burn's module walks.

use std::collections::BTreeMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use crate::io::StoredTensor;

/// One tensor of an adapter file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    /// The key, as HF PEFT names it.
    pub key: String,
    /// The shape in the file (PyTorch's layout).
    pub shape: Vec<usize>,
    /// Whether burn's parameter is the transpose of the file's matrix (`[d_in, d_out]` against
    /// PyTorch's `[d_out, d_in]`).
    pub transposed: bool,
    /// Whether the optimizer trains it; frozen tensors are stored because they cannot be rebuilt.
    pub trainable: bool,
}

impl TensorSpec {
    /// A trainable tensor, stored as burn holds it.
    pub fn new(key: String, shape: impl Into<Vec<usize>>) -> Self {
        Self { key, shape: shape.into(), transposed: false, trainable: true }
    }

    /// This tensor, stored as the transpose of burn's parameter.
    pub fn transposed(self) -> Self {
        Self { transposed: true, ..self }
    }

    /// This tensor, frozen.
    pub fn frozen(self) -> Self {
        Self { trainable: false, ..self }
    }

    /// Its number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `module`'s parameters as file tensors, one per spec, in declaration order.
pub(crate) fn module_tensors<B: Backend, M: Module<B>>(module: &M, specs: &[TensorSpec]) -> Vec<(String, StoredTensor)> {
    let mut collect = Collect { specs: specs.iter(), found: Vec::new() };
    module.visit(&mut collect);
    assert!(collect.specs.next().is_none(), "a method's file layout names more tensors than its module has");
    collect.found
}

/// `module` with its parameters read from checked file tensors (ids and trainability kept, so an
/// optimizer's state still applies).
pub(crate) fn with_module_tensors<B: Backend, M: Module<B>>(module: M, specs: &[TensorSpec], tensors: &BTreeMap<String, StoredTensor>) -> M {
    let mut fill = Fill { specs: specs.iter(), tensors };
    let module = module.map(&mut fill);
    assert!(fill.specs.next().is_none(), "a method's file layout names more tensors than its module has");
    module
}

/// A parameter holding a file tensor, in burn's layout.
pub(crate) fn stored_param<B: Backend, const D: usize>(stored: &StoredTensor, spec: &TensorSpec, device: &B::Device) -> Tensor<B, D> {
    let mut shape = stored.shape.clone();
    let mut values = stored.values.clone();
    if spec.transposed {
        let [rows, columns] = [shape[0], shape[1]];
        values = (0..rows * columns).map(|i| stored.values[(i % rows) * columns + i / rows]).collect();
        shape = vec![columns, rows];
    }
    Tensor::from_data(TensorData::new(values, shape), device)
}

struct Collect<'a> {
    specs: std::slice::Iter<'a, TensorSpec>,
    found: Vec<(String, StoredTensor)>,
}

impl<B: Backend> ModuleVisitor<B> for Collect<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let spec = self.specs.next().expect("a method's file layout names every tensor of its module");
        let tensor = param.val();
        let tensor = match spec.transposed {
            true => {
                let dims = tensor.dims();
                StoredTensor::from_tensor(tensor.reshape([dims[0], dims[D - 1]]).transpose())
            }
            false => StoredTensor::from_data(tensor.into_data()),
        };
        debug_assert_eq!(tensor.shape, spec.shape, "{}", spec.key);
        self.found.push((spec.key.clone(), tensor));
    }
}

struct Fill<'a> {
    specs: std::slice::Iter<'a, TensorSpec>,
    tensors: &'a BTreeMap<String, StoredTensor>,
}

impl<B: Backend> ModuleMapper<B> for Fill<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let spec = self.specs.next().expect("a method's file layout names every tensor of its module");
        let stored = &self.tensors[&spec.key];
        param.map(|old| stored_param::<B, D>(stored, spec, &old.device()).set_require_grad(old.is_require_grad()))
    }
}
