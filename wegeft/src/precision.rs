//! Mixed precision: the frozen base in half precision (f16, bf16), the adapter and the optimizer
//! state in f32. Half-precision weights halve the base's memory and run the heavy matmuls on a
//! GPU's half-precision units; the adapter's parameters are cast to the activations' precision
//! where they are used ([`autocast`]), so their gradients and AdamW's moments stay f32. The
//! numerically delicate steps (norms, softmax, the loss) run in f32 ([`in_f32`]), as PyTorch's
//! autocast and Hugging Face's models do.

use burn::module::{ModuleMapper, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, FloatDType, Tensor};

use crate::error::{PeftError, Result};

/// A weight precision, as named on the command line and in run configs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats throughout.
    #[default]
    F32,
    /// IEEE half precision for the frozen base; training scales the loss ([`crate::train::LossScaler`]).
    F16,
    /// bfloat16 for the frozen base (f32's range: no loss scaling).
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

    /// Whether training must scale the loss so that small gradients survive this precision
    /// (f16: 5 exponent bits).
    pub fn needs_loss_scaling(self) -> bool {
        self == Self::F16
    }

    /// Fails with a typed error when `B` cannot store and compute in this precision on `device`
    /// (ndarray has neither f16 nor bf16; WGPU's WGSL has no bf16).
    pub fn check<B: Backend>(self, device: &B::Device) -> Result<()> {
        match B::supports_dtype(device, self.float_dtype().into()) {
            true => Ok(()),
            false => Err(PeftError::Precision { precision: self, backend: B::name(device) }),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Bf16 => "bf16",
        })
    }
}

/// Casts every float parameter of a module, keeping parameter ids and whether they train. The
/// cast is also installed as the parameter's load mapper, so a checkpoint (written in f32) loads
/// back in this precision on resume.
pub struct CastParams(pub FloatDType);

impl<B: Backend> ModuleMapper<B> for CastParams {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let require_grad = tensor.is_require_grad();
        let dtype = self.0;
        let tensor = tensor.cast(dtype).detach().set_require_grad(require_grad);
        Param::from_mapped_value(id, tensor, mapper).load_mapper(move |tensor: Tensor<B, D>| tensor.cast(dtype).detach())
    }
}

/// `tensor` in `dtype`: a cast where the precisions differ, the tensor itself otherwise (no
/// autodiff node). Under autodiff the gradient is cast back, so an f32 parameter used in a
/// half-precision product still gets an f32 gradient.
pub fn autocast<B: Backend, const D: usize>(tensor: Tensor<B, D>, dtype: DType) -> Tensor<B, D> {
    match tensor.dtype() == dtype {
        true => tensor,
        false => tensor.cast(FloatDType::from(dtype)),
    }
}

/// `f` applied to `x` in f32, the result returned in `x`'s precision: for norms and softmax,
/// which lose too much in half precision.
pub fn in_f32<B: Backend, const D: usize, const E: usize>(x: Tensor<B, D>, f: impl FnOnce(Tensor<B, D>) -> Tensor<B, E>) -> Tensor<B, E> {
    let dtype = x.dtype();
    autocast(f(autocast(x, DType::F32)), dtype)
}
