//! Reading and writing named f32 tensors as safetensors.

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use super::atomic::write_atomic;
use crate::error::{PeftError, Result};

/// A tensor as stored in a file: shape and row-major f32 values.
#[derive(Clone, Debug)]
pub struct StoredTensor {
    /// Shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub values: Vec<f32>,
}

impl StoredTensor {
    /// Copies a tensor off its device.
    pub fn from_tensor<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Self {
        Self::from_data(tensor.into_data())
    }

    /// A tensor's data as f32.
    pub fn from_data(data: TensorData) -> Self {
        let shape = data.shape.to_vec();
        let values = data.convert::<f32>().to_vec::<f32>().expect("converted to f32");
        Self { shape, values }
    }
}

/// Reads every tensor of a safetensors file as f32; a NaN or infinite value is an error.
pub fn read_safetensors(path: &Path) -> Result<BTreeMap<String, StoredTensor>> {
    let bytes = std::fs::read(path).map_err(|source| PeftError::io(path, source))?;
    let file = SafeTensors::deserialize(&bytes).map_err(|error| PeftError::Safetensors {
        path: path.to_path_buf(),
        reason: beyond_the_data(&bytes).unwrap_or_else(|| error.to_string()),
    })?;
    file.tensors()
        .into_iter()
        .map(|(key, view)| {
            let values = decode(&view).ok_or_else(|| PeftError::UnsupportedDtype {
                path: path.to_path_buf(),
                key: key.clone(),
                dtype: format!("{:?}", view.dtype()),
            })?;
            if let Some((index, &value)) = values.iter().enumerate().find(|(_, value)| !value.is_finite()) {
                return Err(PeftError::NonFiniteTensor { path: path.to_path_buf(), key, index, value });
            }
            let shape = view.shape().to_vec();
            Ok((key, StoredTensor { shape, values }))
        })
        .collect()
}

/// The first tensor whose `data_offsets` end past the file's data section, said by name (the
/// safetensors crate only says that the buffer is incomplete).
fn beyond_the_data(bytes: &[u8]) -> Option<String> {
    let header_len = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(bytes.get(8..8usize.checked_add(header_len)?)?).ok()?;
    let data = bytes.len() - 8 - header_len;
    header.iter().find_map(|(name, info)| {
        let end = info["data_offsets"][1].as_u64()?;
        (end > data as u64).then(|| format!("tensor `{name}`: its data ends at byte {end} of a {data}-byte data section (truncated, or a bad offset)"))
    })
}

fn decode(view: &TensorView<'_>) -> Option<Vec<f32>> {
    let bytes = view.data();
    let words = |n: usize| bytes.chunks_exact(n);
    Some(match view.dtype() {
        Dtype::F32 => words(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        Dtype::F64 => words(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
            .collect(),
        Dtype::F16 => words(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => words(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        _ => return None,
    })
}

/// Writes f32 tensors as a safetensors file (atomically), with PEFT's `{"format": "pt"}` metadata.
pub fn write_safetensors(path: &Path, tensors: &BTreeMap<String, StoredTensor>) -> Result<()> {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(key, tensor)| {
            let data = tensor.values.iter().flat_map(|v| v.to_le_bytes()).collect();
            (key.clone(), data, tensor.shape.clone())
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(key, data, shape)| {
            TensorView::new(Dtype::F32, shape.clone(), data).map(|view| (key.clone(), view))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .expect("shapes match the data they were made from");
    let metadata = Some([("format".to_string(), "pt".to_string())].into());
    let serialized = safetensors::serialize(views, metadata).map_err(|error| PeftError::Safetensors {
        path: path.to_path_buf(),
        reason: error.to_string(),
    })?;
    write_atomic(path, &serialized)
}
