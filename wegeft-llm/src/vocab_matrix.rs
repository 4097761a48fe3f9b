//! The frozen `vocab × width` matrices at both ends of the decoder: the token embedding, read a row
//! per token, and the output head (or the tied embedding), read a tile of the vocabulary at a time.
//! Either stays in its file's quantisation blocks with `--base-precision stored`: Gemma 3's
//! 262,144 × 640 embedding is 671 MB in f32 and 178 MB as the Q8_0 its GGUF holds.

use std::ops::Range;
use std::sync::Arc;

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, FloatDType, Int, Tensor, TensorData};
use wegeft::io::{Init, Scope};
use wegeft::kernels::packed_matmul;
use wegeft::precision::autocast;
use wegeft::PackedWeight;

use crate::error::Result;

/// A frozen `[vocab, width]` matrix (PyTorch's layout of `embed_tokens.weight` and
/// `lm_head.weight`): floats, or blocks when `packed` is set.
#[derive(Module, Debug)]
pub struct VocabMatrix<B: Backend> {
    /// `[vocab, width]` floats; `[0, 0]` when the matrix is packed.
    pub weight: Param<Tensor<B, 2>>,
    /// The matrix as its file stores it: a row of blocks per token.
    #[module(skip)]
    pub packed: Option<Arc<PackedWeight>>,
}

impl<B: Backend> VocabMatrix<B> {
    /// Tensor `name` of shape `[vocab, width]` from `weights`, frozen; kept packed when the store
    /// keeps it so.
    pub fn load(weights: &mut Scope, name: &str, vocab: usize, width: usize, device: &B::Device) -> Result<Self> {
        if let Some(packed) = weights.packed(name, [vocab, width])? {
            let weight = Param::from_tensor(Tensor::zeros([0, 0], device)).set_require_grad(false);
            return Ok(Self { weight, packed: Some(packed) });
        }
        let weight = weights.param(name, [vocab, width], Init::Normal(0.02), device)?.set_require_grad(false);
        Ok(Self { weight, packed: None })
    }

    /// Rows in the vocabulary.
    pub fn vocab(&self) -> usize {
        match &self.packed {
            Some(packed) => packed.dims()[1],
            None => self.weight.dims()[0],
        }
    }

    /// Values per row.
    pub fn width(&self) -> usize {
        match &self.packed {
            Some(packed) => packed.dims()[0],
            None => self.weight.dims()[1],
        }
    }

    /// The precision products with the matrix run in (f32 when packed).
    pub fn dtype(&self) -> DType {
        match &self.packed {
            Some(_) => DType::F32,
            None => self.weight.val().dtype(),
        }
    }

    /// The rows of `ids` (`[n]`), `[n, width]`: the embedding lookup.
    pub fn rows(&self, ids: Tensor<B, 1, Int>) -> Tensor<B, 2> {
        let Some(packed) = &self.packed else { return self.weight.val().select(0, ids) };
        let (device, width) = (ids.device(), self.width());
        let ids = ids.into_data().convert::<i64>();
        let ids = ids.as_slice::<i64>().expect("converted to i64");
        let mut values = vec![0f32; ids.len() * width];
        for (&id, row) in ids.iter().zip(values.chunks_mut(width)) {
            let id = id as usize;
            packed.decode_rows(id..id + 1, row);
        }
        Tensor::from_data(TensorData::new(values, [ids.len(), width]), &device)
    }

    /// Rows `range` of the matrix, `[range.len(), width]`, decoded when packed.
    pub fn tile(&self, range: Range<usize>, device: &B::Device) -> Tensor<B, 2> {
        let Some(packed) = &self.packed else { return self.weight.val().slice([range, 0..self.width()]) };
        let mut values = vec![0f32; range.len() * self.width()];
        let rows = range.len();
        packed.decode_rows(range, &mut values);
        Tensor::from_data(TensorData::new(values, [rows, self.width()]), device)
    }

    /// `x·Mᵀ` (`[n, width]` → `[n, vocab]`, f32): logits over the whole vocabulary. Training takes
    /// [`crate::train::next_token_loss`] instead, which never holds them whole.
    pub fn logits(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let logits = match &self.packed {
            Some(packed) => packed_matmul(autocast(x, DType::F32), packed, 0.0),
            // Mᵀ is read in place: no vocab × width copy.
            None => autocast(x, self.weight.val().dtype()).matmul(self.weight.val().transpose()),
        };
        logits.cast(FloatDType::F32)
    }

    /// The whole matrix in floats, `[vocab, width]` (decoded when packed): for export.
    pub fn dense(&self) -> Tensor<B, 2> {
        match &self.packed {
            Some(_) => self.tile(0..self.vocab(), &self.weight.device()),
            None => self.weight.val(),
        }
    }
}
