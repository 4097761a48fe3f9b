//! GGUF files (llama.cpp's format, version 2 and 3): metadata, tensor directory, and tensors
//! dequantised to f32.

mod dequant;
mod reader;

pub use dequant::{dequantize, GgmlType};
pub use reader::{GgufFile, GgufTensorInfo, MetadataValue};
