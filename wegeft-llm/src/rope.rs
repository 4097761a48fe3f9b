//! Rotary position embeddings in Hugging Face's rotate-half layout (GGUF's interleaved Q/K rows
//! are converted at load time, so one convention serves both).

use burn::tensor::backend::Backend;
use burn::tensor::{FloatDType, Tensor, TensorData};
use wegeft::kernels::rotary;

use crate::config::RopeSettings;

/// RoPE with base θ and linear position scaling.
#[derive(Clone, Debug)]
pub struct Rope {
    theta: f64,
    scaling: f64,
    head_dim: usize,
}

impl Rope {
    /// RoPE with `settings` (base θ, positions divided by the factor) over heads of `head_dim`.
    pub fn new(settings: RopeSettings, head_dim: usize) -> Self {
        Self { theta: settings.theta, scaling: settings.factor, head_dim }
    }

    /// cos and sin `[T, head_dim]` for positions `offset..offset + len`.
    fn tables<B: Backend>(&self, offset: usize, len: usize, device: &B::Device) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let half = self.head_dim / 2;
        let mut cos = Vec::with_capacity(len * self.head_dim);
        let mut sin = Vec::with_capacity(len * self.head_dim);
        for position in offset..offset + len {
            let position = position as f64 / self.scaling;
            let row: Vec<f64> = (0..half)
                .map(|i| position * self.theta.powf(-((2 * i) as f64) / self.head_dim as f64))
                .collect();
            for _ in 0..2 {
                cos.extend(row.iter().map(|a| a.cos() as f32));
                sin.extend(row.iter().map(|a| a.sin() as f32));
            }
        }
        let shape = [len, self.head_dim];
        (
            Tensor::from_data(TensorData::new(cos, shape), device),
            Tensor::from_data(TensorData::new(sin, shape), device),
        )
    }

    /// Rotates `x` `[B, T, heads, head_dim]` (the projection's own layout, so the element-wise
    /// work runs on contiguous memory) whose first token sits at position `offset`.
    pub fn apply<B: Backend>(&self, x: Tensor<B, 4>, offset: usize) -> Tensor<B, 4> {
        let len = x.dims()[1];
        let (cos, sin) = self.tables::<B>(offset, len, &x.device());
        let dtype = FloatDType::from(x.dtype());
        let (cos, sin) = (cos.cast(dtype), sin.cast(dtype));
        rotary(x, cos, sin)
    }
}
