//! Parses a GGUF file read into memory: header, key/value metadata, tensor infos, data section.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{LlmError, Result};
use crate::gguf::{dequantize, type_name, GgmlType};

/// A metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum MetadataValue {
    /// Any integer type, widened.
    Int(i64),
    /// f32 or f64.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A UTF-8 string.
    String(String),
    /// An array of values of one type.
    Array(Vec<MetadataValue>),
}

impl MetadataValue {
    /// The value as an unsigned integer, if it is one.
    pub fn as_usize(&self) -> Option<usize> {
        match self {
            Self::Int(v) if *v >= 0 => Some(*v as usize),
            _ => None,
        }
    }

    /// The value as a float (integers convert).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Float(v) => Some(*v),
            Self::Int(v) => Some(*v as f64),
            _ => None,
        }
    }

    /// The value as a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }
}

/// Where a tensor lies in the data section.
#[derive(Clone, Debug)]
pub struct GgufTensorInfo {
    /// GGUF dimensions, fastest-varying first (`[d_in, d_out]` for a weight).
    pub dims: Vec<usize>,
    /// Storage type.
    pub ggml_type: GgmlType,
    /// Offset from the start of the data section.
    pub offset: usize,
}

impl GgufTensorInfo {
    /// The shape in PyTorch order (slowest-varying first).
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().copied().collect()
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    /// Whether the tensor has no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A GGUF file in memory.
pub struct GgufFile {
    /// The file, for error messages.
    pub path: PathBuf,
    /// Key/value metadata.
    pub metadata: BTreeMap<String, MetadataValue>,
    /// Tensor directory by name.
    pub tensors: BTreeMap<String, GgufTensorInfo>,
    bytes: Vec<u8>,
    data_start: usize,
}

/// Metadata arrays inside arrays, at most (llama.cpp's files nest none).
const MAX_ARRAY_NESTING: usize = 4;
/// Tensor dimensions, at most (GGML_MAX_DIMS).
const MAX_DIMS: usize = 4;

struct Cursor<'a> {
    bytes: &'a [u8],
    position: usize,
    path: &'a Path,
}

impl Cursor<'_> {
    fn error(&self, reason: impl Into<String>) -> LlmError {
        LlmError::Format {
            path: self.path.to_path_buf(),
            reason: format!("{} (at byte {})", reason.into(), self.position),
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self.position.checked_add(n).filter(|&end| end <= self.bytes.len());
        let end = end.ok_or_else(|| self.error("truncated file"))?;
        let slice = &self.bytes[self.position..end];
        self.position = end;
        Ok(slice)
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    fn len(&mut self) -> Result<usize> {
        let len = self.u64()?;
        usize::try_from(len).ok().filter(|&l| l <= self.bytes.len()).ok_or_else(|| self.error(format!("implausible length {len}")))
    }

    fn string(&mut self) -> Result<String> {
        let len = self.len()?;
        let bytes = self.take(len)?.to_vec();
        String::from_utf8(bytes).map_err(|_| self.error("a string is not UTF-8"))
    }

    /// A metadata value of type `kind`, inside `depth` enclosing arrays.
    fn value(&mut self, kind: u32, depth: usize) -> Result<MetadataValue> {
        let int = |bytes: &[u8], signed: bool| -> i64 {
            let mut wide = [0u8; 8];
            wide[..bytes.len()].copy_from_slice(bytes);
            let value = u64::from_le_bytes(wide);
            let bits = 8 * bytes.len() as u32;
            if signed && bits < 64 && value >> (bits - 1) & 1 == 1 {
                (value | (!0u64 << bits)) as i64
            } else {
                value as i64
            }
        };
        Ok(match kind {
            0 => MetadataValue::Int(int(self.take(1)?, false)),
            1 => MetadataValue::Int(int(self.take(1)?, true)),
            2 => MetadataValue::Int(int(self.take(2)?, false)),
            3 => MetadataValue::Int(int(self.take(2)?, true)),
            4 => MetadataValue::Int(int(self.take(4)?, false)),
            5 => MetadataValue::Int(int(self.take(4)?, true)),
            6 => MetadataValue::Float(f32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")) as f64),
            7 => MetadataValue::Bool(self.take(1)?[0] != 0),
            8 => MetadataValue::String(self.string()?),
            9 if depth >= MAX_ARRAY_NESTING => return Err(self.error(format!("metadata arrays nested more than {MAX_ARRAY_NESTING} deep"))),
            9 => {
                let element = self.u32()?;
                let len = self.len()?;
                MetadataValue::Array((0..len).map(|_| self.value(element, depth + 1)).collect::<Result<_>>()?)
            }
            10 => MetadataValue::Int(int(self.take(8)?, false)),
            11 => MetadataValue::Int(int(self.take(8)?, true)),
            12 => MetadataValue::Float(f64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes"))),
            other => return Err(self.error(format!("unknown metadata value type {other}"))),
        })
    }
}

/// Prefixes an error of the cursor with what was being read.
fn within(what: &str) -> impl Fn(LlmError) -> LlmError + '_ {
    move |error| match error {
        LlmError::Format { path, reason } => LlmError::Format { path, reason: format!("{what}: {reason}") },
        other => other,
    }
}

impl GgufFile {
    /// Reads and parses `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| LlmError::Io { path: path.into(), source })?;
        Self::parse(path, bytes)
    }

    /// Parses a GGUF file held in `bytes`.
    pub fn parse(path: &Path, bytes: Vec<u8>) -> Result<Self> {
        let mut cursor = Cursor { bytes: &bytes, position: 0, path };
        if cursor.take(4)? != b"GGUF" {
            return Err(cursor.error("not a GGUF file (bad magic)"));
        }
        let version = cursor.u32()?;
        if !(2..=3).contains(&version) {
            return Err(cursor.error(format!("GGUF version {version} is not supported (2 or 3)")));
        }
        let tensor_count = cursor.len().map_err(within("the tensor count"))?;
        let metadata_count = cursor.len().map_err(within("the metadata count"))?;
        let mut metadata = BTreeMap::new();
        for index in 0..metadata_count {
            let key = cursor.string().map_err(within(&format!("the key of metadata entry {index}")))?;
            let kind = cursor.u32().map_err(within(&format!("metadata `{key}`")))?;
            let value = cursor.value(kind, 0).map_err(within(&format!("metadata `{key}`")))?;
            if metadata.insert(key.clone(), value).is_some() {
                return Err(cursor.error(format!("metadata `{key}` appears twice")));
            }
        }
        let mut tensors = BTreeMap::new();
        for index in 0..tensor_count {
            let name = cursor.string().map_err(within(&format!("the name of tensor {index}")))?;
            let context = format!("tensor {index} (`{name}`)");
            let rank = cursor.u32().map_err(within(&context))? as usize;
            if rank > MAX_DIMS {
                return Err(cursor.error(format!("{context} has {rank} dimensions (GGUF has at most {MAX_DIMS})")));
            }
            let dims = (0..rank).map(|_| cursor.len()).collect::<Result<Vec<_>>>().map_err(within(&context))?;
            let kind = cursor.u32().map_err(within(&context))?;
            let supported = || GgmlType::ALL.map(GgmlType::name).join(", ");
            let ggml_type = GgmlType::from_id(kind)
                .ok_or_else(|| cursor.error(format!("{context} is stored as {}, which is not supported ({})", type_name(kind), supported())))?;
            let offset = cursor.len().map_err(within(&format!("{context}'s data offset")))?;
            if tensors.insert(name.clone(), GgufTensorInfo { dims, ggml_type, offset }).is_some() {
                return Err(cursor.error(format!("tensor `{name}` appears twice")));
            }
        }
        let alignment = match metadata.get("general.alignment") {
            None => 32,
            Some(value) => value
                .as_usize()
                .filter(|&alignment| alignment > 0 && alignment.is_multiple_of(8))
                .ok_or_else(|| cursor.error(format!("metadata `general.alignment` is {value:?}; GGUF needs a positive multiple of 8")))?,
        };
        let data_start = cursor.position.div_ceil(alignment) * alignment;
        let file = Self {
            path: path.to_path_buf(),
            metadata,
            tensors,
            bytes,
            data_start,
        };
        for (name, info) in &file.tensors {
            let size = info.ggml_type.tensor_bytes(&info.dims).map_err(|reason| file.tensor_error(name, reason))?;
            let end = file.data_start.checked_add(info.offset).and_then(|start| start.checked_add(size));
            if end.is_none_or(|end| end > file.bytes.len()) {
                let reason = format!(
                    "its {size} bytes at offset {} of the data section (which starts at byte {}) run past the end of the file ({} bytes): truncated, or a bad offset",
                    info.offset,
                    file.data_start,
                    file.bytes.len()
                );
                return Err(file.tensor_error(name, reason));
            }
        }
        Ok(file)
    }

    fn tensor_error(&self, name: &str, reason: impl Into<String>) -> LlmError {
        LlmError::Tensor {
            path: self.path.clone(),
            name: name.into(),
            reason: reason.into(),
        }
    }

    /// A metadata value, or an error naming the key.
    pub fn get(&self, key: &str) -> Result<&MetadataValue> {
        self.metadata.get(key).ok_or_else(|| LlmError::Format {
            path: self.path.clone(),
            reason: format!("missing metadata `{key}`"),
        })
    }

    /// A tensor's bytes as stored (its blocks).
    pub fn tensor_bytes(&self, name: &str) -> Result<&[u8]> {
        let info = self.tensors.get(name).ok_or_else(|| self.tensor_error(name, "not in the file"))?;
        let size = info.ggml_type.tensor_bytes(&info.dims).expect("checked when parsed");
        let start = self.data_start + info.offset;
        Ok(&self.bytes[start..start + size])
    }

    /// A tensor dequantised to f32, with its PyTorch-order shape.
    pub fn tensor_f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let info = self.tensors.get(name).ok_or_else(|| self.tensor_error(name, "not in the file"))?;
        let values = dequantize(info.ggml_type, self.tensor_bytes(name)?, info.len());
        Ok((info.shape(), values))
    }
}
