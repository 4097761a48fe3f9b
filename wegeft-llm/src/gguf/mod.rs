//! GGUF files (llama.cpp's format, version 2 and 3): metadata, tensor directory, tensors
//! dequantised to f32, and their translation into a Hugging Face checkpoint.

mod dequant;
mod ggml_type;
mod k_quants;
mod reader;
mod to_hf;

pub use dequant::{dequantize, dequantize_into};
pub use ggml_type::{type_name, GgmlType};
pub use reader::{GgufFile, GgufTensorInfo, MetadataValue};
pub use to_hf::{hf_weights, hf_weights_packed};
