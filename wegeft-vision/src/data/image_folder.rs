//! The ImageFolder layout: `root/<class>/<image>`, classes numbered in name order.

use std::path::{Path, PathBuf};

use crate::data::LabelledFiles;
use crate::error::{Result, VisionError};

const IMAGE_EXTENSIONS: [&str; 5] = ["png", "jpg", "jpeg", "bmp", "webp"];

/// The images under `root` with their labels, and the class names (label order).
pub fn image_folder(root: &Path) -> Result<(LabelledFiles, Vec<String>)> {
    let read_dir = |dir: &Path| -> Result<Vec<PathBuf>> {
        let entries = std::fs::read_dir(dir).map_err(|source| VisionError::Io { path: dir.to_path_buf(), source })?;
        let mut paths = entries
            .map(|entry| entry.map(|e| e.path()))
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|source| VisionError::Io { path: dir.to_path_buf(), source })?;
        paths.sort();
        Ok(paths)
    };
    let classes: Vec<PathBuf> = read_dir(root)?.into_iter().filter(|p| p.is_dir()).collect();
    if classes.is_empty() {
        return Err(VisionError::Data {
            path: root.to_path_buf(),
            line: None,
            reason: "no class directories (expected root/<class>/<image>)".into(),
        });
    }
    let mut items = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let is_image = |p: &PathBuf| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        };
        items.extend(read_dir(class)?.into_iter().filter(is_image).map(|p| (p, label)));
    }
    let names = classes
        .iter()
        .map(|c| c.file_name().unwrap_or_default().to_string_lossy().into_owned())
        .collect();
    Ok((items, names))
}
