//! A frozen linear layer that may carry an adapter.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};

use crate::bank::AdapterBank;

/// A pretrained `Linear` with frozen weights and, if targeted, a slot in an [`AdapterBank`].
///
/// The adapter's parameters live in the bank, not here, so a pair shared by many layers exists
/// once in the module tree and one base can be paired with any bank built from the same plan.
#[derive(Module, Debug)]
pub struct PeftLinear<B: Backend> {
    /// The frozen pretrained layer.
    pub base: Linear<B>,
    #[module(skip)]
    name: String,
    #[module(skip)]
    slot: Option<usize>,
}

impl<B: Backend> PeftLinear<B> {
    pub(crate) fn new(name: &str, base: Linear<B>, slot: Option<usize>) -> Self {
        Self {
            base: base.no_grad(),
            name: name.to_string(),
            slot,
        }
    }

    /// A frozen layer without adapter, for models built without an [`crate::Injector`].
    pub fn frozen(name: &str, base: Linear<B>) -> Self {
        Self::new(name, base, None)
    }

    /// The name the layer was offered under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The layer's index in its bank's plan, if adapted.
    pub fn slot(&self) -> Option<usize> {
        self.slot
    }

    /// `y = xW + b + Δ(x)`; the update is computed on the activation path, never as a d_in×d_out matrix.
    ///
    /// # Panics
    /// If the layer is adapted and `bank` was built from another plan (a programming error).
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>, bank: &AdapterBank<B>) -> Tensor<B, D> {
        through_rows(x, |rows| match self.slot {
            None => self.base.forward(rows),
            Some(slot) => {
                let delta = bank.delta_forward(slot, &self.name, rows.clone(), self.base.weight.val());
                self.base.forward(rows) + delta
            }
        })
    }

    /// [`Self::forward`] when the model has an adapter, the frozen base alone when it has none
    /// (models that are built with or without an injector keep an `Option<AdapterBank>`).
    pub fn forward_opt<const D: usize>(&self, x: Tensor<B, D>, bank: Option<&AdapterBank<B>>) -> Tensor<B, D> {
        match bank {
            Some(bank) => self.forward(x, bank),
            None => through_rows(x, |rows| self.base.forward(rows)),
        }
    }

    /// The layer with the update folded into its weight (computed in f32, cast back), ready for
    /// plain inference; the base of `self` is untouched, so the same base can take another adapter.
    pub fn merged(&self, bank: &AdapterBank<B>) -> Linear<B> {
        let mut linear = self.base.clone();
        if let Some(slot) = self.slot {
            let weight = self.base.weight.val();
            let dtype = weight.dtype();
            let weight = weight.cast(DType::F32);
            let delta = bank.delta_weight(slot, &self.name, weight.clone());
            let merged = (weight + delta).cast(dtype).detach();
            linear.weight = linear.weight.map(|_| merged);
        }
        linear
    }
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
