//! A tiny task on disk for the data and training tests: 3 classes told apart by colour.

use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};
use wegeft_vision::data::{TaskGroup, TaskInfo};
use wegeft_vision::train::{Method, TrainConfig};
use wegeft_vision::VitConfig;

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("wegeft-vision-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Class `label`'s image `index`: its channel `label` bright, noise elsewhere, 12×10 (resized
/// by the loader).
pub fn class_image(label: usize, index: usize) -> RgbImage {
    RgbImage::from_fn(12, 10, |x, y| {
        let noise = ((x * 31 + y * 17 + index as u32 * 7) % 60) as u8;
        let mut rgb = [noise; 3];
        rgb[label] = 200 + noise / 2;
        Rgb(rgb)
    })
}

/// Writes a 3-class task in the VTAB-1k layout with `per_class` images per class and split.
pub fn write_task(dir: &Path, per_class: usize) -> PathBuf {
    let task = dir.join("colours");
    let mut lists = Vec::new();
    for split in ["train800", "val200", "test"] {
        std::fs::create_dir_all(task.join("images").join(split)).unwrap();
        let mut list = String::new();
        for index in 0..3 * per_class {
            let label = index % 3;
            let name = format!("images/{split}/{index:06}.png");
            class_image(label, index).save(task.join(&name)).unwrap();
            list.push_str(&format!("{name} {label}\n"));
        }
        std::fs::write(task.join(format!("{split}.txt")), &list).unwrap();
        lists.push(list);
    }
    std::fs::write(task.join("train800val200.txt"), format!("{}{}", lists[0], lists[1])).unwrap();
    TaskInfo {
        name: "colours".into(),
        group: TaskGroup::Structured,
        classes: 3,
    }
    .write(&task)
    .unwrap();
    task
}

/// A two-block ViT (dim 16, patch 4) on the tiny task's 8×8 images, r = 2 on attn.proj and
/// mlp.fc1; three epochs.
#[allow(dead_code)]
pub fn tiny_config(task: &std::path::Path, method: Method) -> TrainConfig {
    let vit = VitConfig::new(8, 4, 16, 2, 2, 0).with_mlp_ratio(2.0);
    TrainConfig::new(task.to_path_buf(), vit)
        .with_method(method)
        .with_rank(Some(2))
        .with_targets(vec!["attn.proj".into(), "mlp.fc1".into()])
        .with_epochs(3)
        .with_warmup_epochs(1)
        .with_lr(3e-3)
        .with_image_size(8)
        .with_batch_size(4)
        .with_drop_path(0.2)
        .with_seed(5)
}
