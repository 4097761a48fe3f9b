//! A frozen linear layer that may carry an adapter.

use std::sync::Arc;

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorData};

use crate::bank::AdapterBank;
use crate::layer_name::LayerName;
use crate::methods::{Adapter, FrozenWeight, LayerInput};
use crate::packed::PackedWeight;
use crate::precision::autocast;

/// A pretrained `Linear` with frozen weights and, if targeted, a slot in an [`AdapterBank`].
///
/// The adapter's parameters live in the bank, not here, so a pair shared by many layers exists
/// once in the module tree and one base can be paired with any bank built from the same plan.
/// Build it with [`crate::Injector::linear`].
#[derive(Module, Debug)]
pub struct PeftLinear<B: Backend> {
    /// The name the layer was offered under; declared before `base` so that module walks meet
    /// the name just before the weight (see [`crate::Adapted`]).
    pub name: LayerName<B>,
    /// The frozen pretrained layer; with a packed weight, only its bias (the weight is `[0, 0]`).
    pub base: Linear<B>,
    /// The frozen weight kept in its file's quantisation blocks, when it was loaded so.
    #[module(skip)]
    pub packed: Option<Arc<PackedWeight>>,
}

impl<B: Backend> PeftLinear<B> {
    pub(crate) fn new(name: &str, base: Linear<B>, slot: Option<usize>) -> Self {
        Self { name: LayerName::new(name, slot), base: base.no_grad(), packed: None }
    }

    pub(crate) fn new_packed(name: &str, packed: Arc<PackedWeight>, bias: Option<Param<Tensor<B, 1>>>, slot: Option<usize>, device: &B::Device) -> Self {
        let base = Linear { weight: Param::from_tensor(Tensor::zeros([0, 0], device)), bias };
        Self { packed: Some(packed), ..Self::new(name, base, slot) }
    }

    /// The frozen weight, `[d_in, d_out]`, as the layer holds it.
    pub fn weight(&self) -> FrozenWeight<'_, B> {
        match &self.packed {
            Some(packed) => FrozenWeight::Packed(packed),
            None => FrozenWeight::Dense(self.base.weight.val()),
        }
    }

    /// The layer with its weight as an f32 tensor (decoded from blocks when packed): what merging
    /// and exporting need.
    pub fn densified(&self) -> Self {
        let Some(packed) = &self.packed else { return self.clone() };
        let device = self.base.weight.device();
        let weight = Tensor::from_data(TensorData::new(packed.to_dense(), packed.dims()), &device);
        let base = Linear { weight: Param::from_tensor(weight), bias: self.base.bias.clone() };
        Self { name: self.name.clone(), base: base.no_grad(), packed: None }
    }

    /// `y = xW + b` as this layer's adapter in `bank` changes it (unchanged when the bank is
    /// empty or the layer was not targeted). Low-rank updates are computed on the activation
    /// path, never as a d_in×d_out matrix. The layer computes in its weight's precision and answers in
    /// `x`'s, so a half-precision base ([`crate::precision`]) also works inside an f32 model.
    ///
    /// # Panics
    /// If the layer is adapted and `bank` was built from another plan (a programming error).
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>, bank: &AdapterBank<B>) -> Tensor<B, D> {
        let adapter = self.name.slot().and_then(|slot| bank.adapter_of(slot, self.name.as_str()));
        let (dtype, weight) = (x.dtype(), self.weight());
        // A packed weight decodes to f32; a dense one computes in its own precision.
        let compute = match &weight {
            FrozenWeight::Dense(weight) => weight.dtype(),
            FrozenWeight::Packed(_) => DType::F32,
        };
        let y = through_rows(autocast(x, compute), |rows| {
            let y = match (adapter, &weight) {
                (None, FrozenWeight::Dense(_)) => return self.base.forward(rows),
                (None, FrozenWeight::Packed(_)) => weight.product(rows, 0.0),
                (Some(adapter), _) => {
                    let base = weight.product(rows.clone(), 0.0);
                    adapter.forward(LayerInput { x: rows, weight, base, shared: &bank.shared })
                }
            };
            match &self.base.bias {
                Some(bias) => y + bias.val().unsqueeze(),
                None => y,
            }
        });
        autocast(y, dtype)
    }

    /// The layer with the update folded into its weight (computed in f32, cast back), ready for
    /// plain inference; the base of `self` is untouched, so the same base can take another adapter.
    pub fn merged(&self, bank: &AdapterBank<B>) -> Linear<B> {
        let mut linear = self.densified().base;
        if let Some(adapter) = self.name.slot().and_then(|slot| bank.adapter_of(slot, self.name.as_str())) {
            linear.weight = linear.weight.map(|weight| merge_weight(adapter, weight, &bank.shared));
        }
        linear
    }
}

/// The merged weight, computed in f32 and cast back to W's precision.
pub(crate) fn merge_weight<B: Backend>(adapter: &Adapter<B>, weight: Tensor<B, 2>, shared: &[Param<Tensor<B, 2>>]) -> Tensor<B, 2> {
    let dtype = weight.dtype();
    adapter.merged_weight(weight.cast(DType::F32), shared).cast(dtype).detach()
}

/// Applies a linear map `f` to `[.., d_in]` as one `[rows, d_in]` matrix. A batched matmul
/// against a broadcast weight packs the weight once per batch entry, and its weight gradient is a
/// batch of d_in×d_out products summed afterwards; one 2-D product avoids both and threads better.
fn through_rows<B: Backend, const D: usize>(x: Tensor<B, D>, f: impl FnOnce(Tensor<B, 2>) -> Tensor<B, 2>) -> Tensor<B, D> {
    let mut dims = x.dims();
    let rows = dims[..D - 1].iter().product();
    let y = f(x.reshape([rows, dims[D - 1]]));
    dims[D - 1] = y.dims()[1];
    y.reshape(dims)
}
