//! Writes tasks in the VTAB-1k layout and the suite's manifest.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use image::{DynamicImage, GrayImage};
use wegeft::train::SplitMix64;
use wegeft_vision::data::{TaskGroup, TaskInfo};

/// An image, its label and, for a generated image, where its objects are.
#[derive(Debug)]
pub struct Labelled {
    pub image: DynamicImage,
    pub label: usize,
    /// The ground-truth object mask (255 object, 0 background), written to `masks/<split>/`
    /// beside `images/<split>/` under the same file name.
    pub mask: Option<GrayImage>,
}

impl Labelled {
    /// A real image: no mask.
    pub fn new(image: DynamicImage, label: usize) -> Self {
        Self { image, label, mask: None }
    }
}

/// Where a task's images come from, for the manifest.
pub struct Source {
    pub task: &'static str,
    pub group: TaskGroup,
    pub classes: usize,
    pub package: &'static str,
    pub file: &'static str,
    pub licence: &'static str,
    pub note: &'static str,
}

/// The three disjoint image sets of a task (train800val200 is train800 followed by val200).
pub struct TaskSplits {
    train800: Vec<Labelled>,
    val200: Vec<Labelled>,
    test: Vec<Labelled>,
}

impl TaskSplits {
    /// Disjoint seeded draws from one pool.
    pub fn from_pool(mut pool: Vec<Labelled>, (train, val, test): (usize, usize, usize), seed: u64) -> Self {
        SplitMix64::new(seed).shuffle(&mut pool);
        let test = test.min(pool.len().saturating_sub(train + val));
        let mut drawn = pool.into_iter();
        Self {
            train800: drawn.by_ref().take(train).collect(),
            val200: drawn.by_ref().take(val).collect(),
            test: drawn.take(test).collect(),
        }
    }

    /// Training images from the official training set, test images from the official test set.
    pub fn from_train_test(train_pool: Vec<Labelled>, test_pool: Vec<Labelled>, (train, val, test): (usize, usize, usize), seed: u64) -> Self {
        let fit = Self::from_pool(train_pool, (train, val, 0), seed);
        let held_out = Self::from_pool(test_pool, (0, 0, test), seed);
        Self { test: held_out.test, ..fit }
    }

    /// Seeded draws from a generator.
    pub fn generated(mut sample: impl FnMut(&mut SplitMix64) -> Labelled, (train, val, test): (usize, usize, usize), seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let mut draw = |n: usize| (0..n).map(|_| sample(&mut rng)).collect();
        Self {
            train800: draw(train),
            val200: draw(val),
            test: draw(test),
        }
    }
}

/// The suite being written, and its manifest entries.
pub struct Suite {
    out: PathBuf,
    seed: u64,
    checksums: Vec<String>,
    tasks: Vec<serde_json::Value>,
}

impl Suite {
    pub fn new(out: &Path, seed: u64, checksums: Vec<String>) -> Self {
        Self {
            out: out.to_path_buf(),
            seed,
            checksums,
            tasks: Vec::new(),
        }
    }

    /// Writes one task into `<out>/<task>` (through a temporary directory, renamed at the end);
    /// a split left empty or a label beyond the task's classes is an error, not a broken task.
    pub fn write(&mut self, source: &Source, splits: TaskSplits) -> Result<(), String> {
        for (split, images) in [("train800", &splits.train800), ("val200", &splits.val200), ("test", &splits.test)] {
            if images.is_empty() {
                return Err(format!("{}: the source has no images left for {split}", source.task));
            }
            if let Some(bad) = images.iter().find(|image| image.label >= source.classes) {
                return Err(format!("{}: label {} in {split}, but the task has {} classes ({})", source.task, bad.label, source.classes, source.file));
            }
        }
        let io = |path: &Path, e: std::io::Error| format!("{}: {e}", path.display());
        let final_dir = self.out.join(source.task);
        let dir = self.out.join(format!(".{}.partial", source.task));
        let _ = std::fs::remove_dir_all(&dir);
        let mut counts = serde_json::Map::new();
        let mut lines = Vec::new();
        for (split, images) in [("train800", &splits.train800), ("val200", &splits.val200), ("test", &splits.test)] {
            let image_dir = dir.join("images").join(split);
            std::fs::create_dir_all(&image_dir).map_err(|e| io(&image_dir, e))?;
            let mut list = String::new();
            let save = |image: &DynamicImage, path: PathBuf| image.save(&path).map_err(|e| format!("{}: {e}", path.display()));
            for (index, labelled) in images.iter().enumerate() {
                let name = format!("{index:06}.png");
                save(&labelled.image, image_dir.join(&name))?;
                if let Some(mask) = &labelled.mask {
                    let mask_dir = dir.join("masks").join(split);
                    std::fs::create_dir_all(&mask_dir).map_err(|e| io(&mask_dir, e))?;
                    save(&DynamicImage::ImageLuma8(mask.clone()), mask_dir.join(&name))?;
                }
                writeln!(list, "images/{split}/{name} {}", labelled.label).expect("write to String");
            }
            let file = dir.join(format!("{split}.txt"));
            std::fs::write(&file, &list).map_err(|e| io(&file, e))?;
            counts.insert(split.into(), images.len().into());
            lines.push(list);
        }
        let both = dir.join("train800val200.txt");
        std::fs::write(&both, format!("{}{}", lines[0], lines[1])).map_err(|e| io(&both, e))?;
        let info = TaskInfo {
            name: source.task.into(),
            group: source.group,
            classes: source.classes,
        };
        info.write(&dir).map_err(|e| e.to_string())?;
        let _ = std::fs::remove_dir_all(&final_dir);
        std::fs::rename(&dir, &final_dir).map_err(|e| io(&final_dir, e))?;
        println!("{}: {counts:?} -> {}", source.task, final_dir.display());
        self.tasks.push(serde_json::json!({
            "task": source.task,
            "group": source.group,
            "classes": source.classes,
            "images": counts,
            "source": source.package,
            "file": source.file,
            "licence": source.licence,
            "note": source.note,
        }));
        Ok(())
    }

    /// Writes `manifest.json`.
    pub fn finish(self) -> Result<(), String> {
        let manifest = serde_json::json!({
            "layout": "VTAB-1k (NOAH/FacT): train800.txt, val200.txt, train800val200.txt, test.txt; lines `images/<split>/<file> <label>`",
            "seed": self.seed,
            "package_sha256": self.checksums,
            "tasks": self.tasks,
        });
        let path = self.out.join("manifest.json");
        let text = serde_json::to_string_pretty(&manifest).expect("JSON value");
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: Source = Source {
        task: "tiny",
        group: TaskGroup::Natural,
        classes: 2,
        package: "test",
        file: "pool",
        licence: "none",
        note: "",
    };

    fn pool(labels: &[usize]) -> Vec<Labelled> {
        labels.iter().map(|&label| Labelled::new(DynamicImage::ImageLuma8(GrayImage::new(2, 2)), label)).collect()
    }

    #[test]
    fn a_task_with_an_empty_split_or_a_label_beyond_its_classes_is_not_written() {
        let out = std::env::temp_dir().join(format!("build-vtab-{}", std::process::id()));
        let mut suite = Suite::new(&out, 1, Vec::new());
        // Four images cannot fill train 2, val 1 and a test split of 3: the test split is empty.
        let error = suite.write(&SOURCE, TaskSplits::from_pool(pool(&[0, 1, 0]), (2, 1, 3), 1)).unwrap_err();
        assert!(error.contains("tiny: the source has no images left for test"), "{error}");
        let error = suite.write(&SOURCE, TaskSplits::from_pool(pool(&[0, 2, 1, 0, 1, 0]), (2, 2, 2), 1)).unwrap_err();
        assert!(error.contains("label 2") && error.contains("2 classes"), "{error}");
        assert!(!out.join("tiny").exists(), "no task directory is left behind");
        suite.write(&SOURCE, TaskSplits::from_pool(pool(&[0, 1, 0, 1, 0, 1]), (2, 2, 2), 1)).unwrap();
        assert!(out.join("tiny/test.txt").is_file());
        std::fs::remove_dir_all(&out).unwrap();
    }
}
