//! VeRA's layer: two trained scaling vectors around the bank's shared projections.

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::backend::Backend;
use burn::tensor::module::linear;
use burn::tensor::Tensor;

use crate::kernels::dropout;
use crate::methods::{LayerAdapter, LayerInput};
use crate::precision::autocast;

/// VeRA's per-layer vectors. The projections live in the bank (`shared[0]` = Aᵀ, max d_in × r;
/// `shared[1]` = Bᵀ, r × max d_out), and each layer reads the corner it needs, as PEFT slices them.
#[derive(Module, Debug)]
pub struct VeraAdapter<B: Backend> {
    /// b, d_out: scales each output of the update; zero so that ΔW = 0 at start.
    pub lambda_b: Param<Tensor<B, 1>>,
    /// d, r: scales each rank dimension.
    pub lambda_d: Param<Tensor<B, 1>>,
    /// Dropout on the layer input.
    pub dropout: Dropout,
}

impl<B: Backend> VeraAdapter<B> {
    /// Fresh vectors for a layer with `d_out` outputs: b = 0, d = `d_initial`.
    pub fn init(d_out: usize, rank: usize, d_initial: f64, dropout: f64, device: &B::Device) -> Self {
        Self {
            lambda_b: Param::from_tensor(Tensor::zeros([d_out], device)),
            lambda_d: Param::from_tensor(Tensor::full([rank], d_initial, device)),
            dropout: DropoutConfig::new(dropout).init(),
        }
    }

    /// The corners of the shared projections a d_in → d_out layer uses: Aᵀ (d_in×r), Bᵀ (r×d_out).
    fn projections(shared: &[Param<Tensor<B, 2>>], d_in: usize, d_out: usize) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let [a, b] = shared else { panic!("a VeRA bank holds its two projections") };
        let rank = a.dims()[1];
        (a.val().slice([0..d_in, 0..rank]), b.val().slice([0..rank, 0..d_out]))
    }
}

impl<B: Backend> LayerAdapter<B> for VeraAdapter<B> {
    /// PEFT's `b ⊙ (((x̃·Aᵀ) ⊙ d)·Bᵀ)` added to the base output.
    fn forward(&self, layer: LayerInput<'_, B>) -> Tensor<B, 2> {
        let LayerInput { x, weight, base, shared } = layer;
        let [d_in, d_out] = weight.dims();
        let dtype = x.dtype();
        let (a, b) = Self::projections(shared, d_in, d_out);
        let projected = linear(dropout(x, self.dropout.prob), autocast(a, dtype), None) * autocast(self.lambda_d.val(), dtype).unsqueeze();
        base + linear(projected, autocast(b, dtype), None) * autocast(self.lambda_b.val(), dtype).unsqueeze()
    }

    fn merged_weight(&self, weight: Tensor<B, 2>, shared: &[Param<Tensor<B, 2>>]) -> Tensor<B, 2> {
        let [d_in, d_out] = weight.dims();
        let (a, b) = Self::projections(shared, d_in, d_out);
        let scaled_a = a * self.lambda_d.val().unsqueeze();
        let scaled_b = b * self.lambda_b.val().unsqueeze();
        weight + scaled_a.matmul(scaled_b)
    }
}
