//! Ground-truth object masks of generated tasks: `masks/<split>/<file>` beside each
//! `images/<split>/<file>` (255 object, 0 background), as the offline suite's generator writes
//! them. Real images have none.

use std::path::{Component, Path, PathBuf};

use image::imageops::FilterType;

use crate::error::{Result, VisionError};

/// The mask file of `image` (a path `…/images/<split>/<file>`), if the task has one.
pub fn mask_path(image: &Path) -> Option<PathBuf> {
    let mut parts: Vec<Component> = image.components().collect();
    let images = parts.iter().rposition(|part| part.as_os_str() == "images")?;
    parts[images] = Component::Normal("masks".as_ref());
    let path: PathBuf = parts.iter().collect();
    path.is_file().then_some(path)
}

/// The object mask of `image` at the model's `size`×`size` input, resized as the image is and
/// thresholded at half: `true` where the object is. An image without a mask is an error naming it.
pub fn load_object_mask(image: &Path, size: usize) -> Result<Vec<bool>> {
    let missing = || VisionError::Data {
        path: image.to_path_buf(),
        line: None,
        reason: "no ground-truth mask beside it (`masks/` instead of `images/`): only the generated tasks \
                 (synth_loc, synth_ori, synth_count) have masks; rebuild the suite with `cargo xtask assets vtab`"
            .into(),
    };
    let path = mask_path(image).ok_or_else(missing)?;
    let mask = image::open(&path).map_err(|error| VisionError::Data {
        path: path.clone(),
        line: None,
        reason: format!("cannot read mask: {error}"),
    })?;
    let side = size as u32;
    let grey = image::imageops::resize(&mask.to_luma8(), side, side, FilterType::CatmullRom);
    Ok(grey.pixels().map(|pixel| pixel[0] >= 128).collect())
}
