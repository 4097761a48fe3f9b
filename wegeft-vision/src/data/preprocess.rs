//! Decoding and resizing as the VTAB literature does: RGB (grey images become 3-channel),
//! bicubic resize to the model's square input, no augmentation.

use std::path::Path;

use image::imageops::FilterType;

use crate::error::{Result, VisionError};

/// `path` decoded and resized to `size`×`size` RGB, as interleaved `u8` (HWC).
pub fn load_image(path: &Path, size: usize) -> Result<Vec<u8>> {
    let image = image::open(path).map_err(|error| VisionError::Data {
        path: path.to_path_buf(),
        line: None,
        reason: format!("cannot read image: {error}"),
    })?;
    let side = size as u32;
    let rgb = image.to_rgb8();
    let resized = if rgb.dimensions() == (side, side) {
        rgb
    } else {
        image::imageops::resize(&rgb, side, side, FilterType::CatmullRom)
    };
    Ok(resized.into_raw())
}
