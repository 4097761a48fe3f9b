//! Half-precision weights (f16, bf16) on the backends that hold them: the projections, the
//! embedding, the output head and the adapters are cast; RMSNorm, attention softmax and the
//! logits stay in f32, as Hugging Face's LLaMA upcasts them, so half precision halves the weight
//! memory without giving up the numerically delicate steps.

use burn::module::{ModuleMapper, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, FloatDType, Tensor};

use crate::error::{LlmError, Result};

/// Weight precision, as named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats.
    F32,
    /// IEEE half precision.
    F16,
    /// bfloat16.
    Bf16,
}

impl Precision {
    /// The burn float type of this precision.
    pub fn float_dtype(self) -> FloatDType {
        match self {
            Self::F32 => FloatDType::F32,
            Self::F16 => FloatDType::F16,
            Self::Bf16 => FloatDType::BF16,
        }
    }

    /// Fails with a typed error when `B` cannot store and compute in this precision on `device`
    /// (ndarray has neither f16 nor bf16; WGPU's WGSL has no bf16).
    pub fn check<B: Backend>(self, device: &B::Device) -> Result<()> {
        let dtype: DType = self.float_dtype().into();
        if B::supports_dtype(device, dtype) {
            Ok(())
        } else {
            Err(LlmError::Precision {
                precision: format!("{self:?}").to_lowercase(),
                backend: B::name(device),
            })
        }
    }
}

/// Casts every float parameter of a module, keeping parameter ids and whether they train.
pub struct CastParams(pub FloatDType);

impl<B: Backend> ModuleMapper<B> for CastParams {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let require_grad = tensor.is_require_grad();
        let tensor = tensor.cast(self.0).detach().set_require_grad(require_grad);
        Param::from_mapped_value(id, tensor, mapper)
    }
}
