//! Element-wise passes over the host values of a CPU backend's f32 tensors, without the copies
//! of a round trip through `TensorData`.
//!
//! `into_data` copies a shared tensor and `from_data` allocates again; at ViT-S's MLP width that
//! round trip took longer than the GELU it carried. On Flex the pass reads the tensor's storage in
//! place and writes over it when the tensor alone owns it; other CPU backends go through
//! `TensorData`.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use rayon::prelude::*;

use super::CHUNK;

/// `f(x)` for each value of the f32 tensor `x`, in parallel chunks: over `x`'s own storage when
/// nothing else holds it, else into a new tensor.
pub(super) fn map<C: Backend, const D: usize>(x: Tensor<C, D>, f: impl Fn(f32) -> f32 + Sync) -> Tensor<C, D> {
    pass(x, None, |x, _| f(x))
}

/// `f(a, b)` for each pair of values of `a` and `b` (f32 tensors of one shape), as [`map`].
pub(super) fn zip_map<C: Backend, const D: usize>(a: Tensor<C, D>, b: &Tensor<C, D>, f: impl Fn(f32, f32) -> f32 + Sync) -> Tensor<C, D> {
    pass(a, Some(b), f)
}

fn pass<C: Backend, const D: usize>(a: Tensor<C, D>, b: Option<&Tensor<C, D>>, f: impl Fn(f32, f32) -> f32 + Sync) -> Tensor<C, D> {
    #[cfg(feature = "flex")]
    let a = match flex::pass(a, b, &f) {
        Ok(y) => return y,
        Err(a) => a,
    };
    let device = a.device();
    let mut a = a.into_data();
    let b = b.map(Tensor::to_data);
    let others = b.as_ref().map(|b| b.as_slice::<f32>().expect("an f32 tensor"));
    write(a.as_mut_slice::<f32>().expect("an f32 tensor"), None, others, &f);
    Tensor::from_data(a, &device)
}

/// `out[i] = f(a[i], b[i])` in parallel chunks, where `a` is `out` itself when absent and `b`
/// reads as zeros when absent.
fn write(out: &mut [f32], a: Option<&[f32]>, b: Option<&[f32]>, f: &(impl Fn(f32, f32) -> f32 + Sync)) {
    out.par_chunks_mut(CHUNK).enumerate().for_each(|(chunk, out)| {
        let range = chunk * CHUNK..chunk * CHUNK + out.len();
        write_chunk(out, a.map(|a| &a[range.clone()]), b.map(|b| &b[range]), f);
    });
}

/// One chunk of [`write`], vectorised for the CPU it runs on.
fn write_chunk(out: &mut [f32], a: Option<&[f32]>, b: Option<&[f32]>, f: &impl Fn(f32, f32) -> f32) {
    super::vectorized(#[inline(always)] || match (a, b) {
        (None, None) => out.iter_mut().for_each(|o| *o = f(*o, 0.0)),
        (None, Some(b)) => out.iter_mut().zip(b).for_each(|(o, &b)| *o = f(*o, b)),
        (Some(a), None) => out.iter_mut().zip(a).for_each(|(o, &a)| *o = f(a, 0.0)),
        (Some(a), Some(b)) => out.iter_mut().zip(a.iter().zip(b)).for_each(|(o, (&a, &b))| *o = f(a, b)),
    })
}

#[cfg(feature = "flex")]
pub(super) mod flex {
    use burn::tensor::backend::Backend;
    use burn::tensor::{Bytes, DType, Tensor, TensorPrimitive};
    use burn_flex::{FlexTensor, Layout};

    use super::write;
    use crate::kernels::cast;

    fn primitive<C: Backend, const D: usize>(x: Tensor<C, D>) -> C::FloatTensorPrimitive {
        x.into_primitive().tensor()
    }

    fn tensor<C: Backend, const D: usize>(x: C::FloatTensorPrimitive) -> Tensor<C, D> {
        Tensor::from_primitive(TensorPrimitive::Float(x))
    }

    /// `x` itself when its values are one run of its storage, else a contiguous copy.
    pub(crate) fn contiguous(x: FlexTensor) -> FlexTensor {
        match x.layout().contiguous_offsets() {
            Some(_) => x,
            None => x.to_contiguous(),
        }
    }

    /// [`super::pass`] when `C` is Flex; else `a` back.
    pub(super) fn pass<C: Backend, const D: usize>(a: Tensor<C, D>, b: Option<&Tensor<C, D>>, f: &(impl Fn(f32, f32) -> f32 + Sync)) -> Result<Tensor<C, D>, Tensor<C, D>> {
        let a = cast::<C::FloatTensorPrimitive, FlexTensor>(primitive(a)).map_err(tensor)?;
        let b = b.map(|b| contiguous(cast::<C::FloatTensorPrimitive, FlexTensor>(primitive(b.clone())).unwrap_or_else(|_| unreachable!("C is Flex"))));
        let y = pass_flex(a, b.as_ref(), f);
        Ok(tensor(cast::<FlexTensor, C::FloatTensorPrimitive>(y).unwrap_or_else(|_| unreachable!("C is Flex"))))
    }

    fn pass_flex(mut a: FlexTensor, b: Option<&FlexTensor>, f: &(impl Fn(f32, f32) -> f32 + Sync)) -> FlexTensor {
        assert_eq!(a.dtype(), DType::F32, "element-wise pass over a non-f32 tensor");
        if let Some(b) = b {
            assert_eq!((a.layout().shape(), b.dtype()), (b.layout().shape(), DType::F32), "element-wise pass over unlike tensors");
        }
        let others = b.map(|b| b.as_slice::<f32>().expect("made contiguous"));
        if let Some((start, end)) = a.layout().contiguous_offsets() {
            if let Some(storage) = a.try_storage_mut::<f32>() {
                write(&mut storage[start..end], None, others, f);
                return a;
            }
        }
        let a = contiguous(a);
        let values = a.as_slice::<f32>().expect("made contiguous");
        let mut out = vec![0f32; values.len()];
        write(&mut out, Some(values), others, f);
        FlexTensor::new(Bytes::from_elems(out), Layout::contiguous(a.layout().shape().clone()), DType::F32)
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::backend::Backend;
    use burn::tensor::{Tensor, TensorData};

    fn check<C: Backend>() {
        let device = Default::default();
        let values: Vec<f32> = (0..6 * 40_000).map(|i| i as f32 * 0.001 - 7.0).collect();
        let x = Tensor::<C, 2>::from_data(TensorData::new(values.clone(), [6, 40_000]), &device);
        let expected = |transposed: bool| -> Vec<f32> {
            let value = |row: usize, column: usize| values[row * 40_000 + column];
            match transposed {
                false => values.iter().map(|v| v * 2.0 + v).collect(),
                true => (0..40_000).flat_map(|c| (0..6).map(move |r| (c, r))).map(|(c, r)| value(r, c) * 2.0 + value(r, c)).collect(),
            }
        };
        let read = |t: Tensor<C, 2>| t.into_data().to_vec::<f32>().unwrap();
        // Shared: the other holder keeps its values.
        let held = x.clone();
        assert_eq!(read(super::zip_map(x.clone(), &held, |a, b| a * 2.0 + b)), expected(false));
        assert_eq!(read(held.clone()), values);
        // Sole owner (written in place) and a transposed view (copied first).
        assert_eq!(read(super::map(x.clone() + 0.0, |a| a * 2.0 + a)), expected(false));
        assert_eq!(read(super::map(x.transpose(), |a| a * 2.0 + a)), expected(true));
    }

    #[test]
    #[cfg(feature = "flex")]
    fn flex_passes_read_views_and_keep_shared_values() {
        check::<burn::backend::Flex>();
    }

    #[test]
    #[cfg(feature = "ndarray")]
    fn ndarray_passes_read_views_and_keep_shared_values() {
        check::<burn::backend::NdArray>();
    }
}
