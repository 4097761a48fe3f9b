//! What a task is: its name, VTAB group and class count, from the VTAB-1k catalogue or from the
//! `task.json` that sits in a task directory.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Result, VisionError};

/// VTAB's three task groups; the headline average is the mean of the group means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TaskGroup {
    /// Natural images (CIFAR, Caltech, DTD, ...).
    Natural,
    /// Specialised imaging (medical, satellite).
    Specialized,
    /// Structure: counting, distance, position, orientation.
    Structured,
}

impl fmt::Display for TaskGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A classification task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskInfo {
    /// Directory name, e.g. `cifar` or `dsprites_loc`.
    pub name: String,
    /// VTAB group.
    pub group: TaskGroup,
    /// Number of classes; labels are `0..classes`.
    pub classes: usize,
}

/// The 19 VTAB-1k tasks under their NOAH/FacT directory names, with groups and class counts.
pub const VTAB_TASKS: [(&str, TaskGroup, usize); 19] = {
    use TaskGroup::*;
    [
        ("cifar", Natural, 100),
        ("caltech101", Natural, 102),
        ("dtd", Natural, 47),
        ("oxford_flowers102", Natural, 102),
        ("oxford_iiit_pet", Natural, 37),
        ("svhn", Natural, 10),
        ("sun397", Natural, 397),
        ("patch_camelyon", Specialized, 2),
        ("eurosat", Specialized, 10),
        ("resisc45", Specialized, 45),
        ("diabetic_retinopathy", Specialized, 5),
        ("clevr_count", Structured, 8),
        ("clevr_dist", Structured, 6),
        ("dmlab", Structured, 6),
        ("kitti", Structured, 4),
        ("dsprites_loc", Structured, 16),
        ("dsprites_ori", Structured, 16),
        ("smallnorb_azi", Structured, 18),
        ("smallnorb_ele", Structured, 9),
    ]
};

/// The file in a task directory that describes a task outside the VTAB catalogue.
pub const TASK_FILE: &str = "task.json";

/// The most classes a task may declare (ImageNet-21k has 21,841): a head for more would not fit.
const MAX_CLASSES: usize = 100_000;

impl TaskInfo {
    /// A catalogue task by name.
    pub fn vtab(name: &str) -> Option<Self> {
        VTAB_TASKS.iter().find(|(task, ..)| *task == name).map(|&(name, group, classes)| Self {
            name: name.to_string(),
            group,
            classes,
        })
    }

    /// The task of directory `dir`: its `task.json` if it has one, else the catalogue entry for
    /// the directory's name.
    pub fn of_dir(dir: &Path) -> Result<Self> {
        let file = dir.join(TASK_FILE);
        if file.exists() {
            let text = std::fs::read_to_string(&file).map_err(|source| VisionError::Io { path: file.clone(), source })?;
            let task: Self = serde_json::from_str(&text).map_err(|error| VisionError::Data {
                path: file.clone(),
                line: Some(error.line()),
                reason: error.to_string(),
            })?;
            if !(2..=MAX_CLASSES).contains(&task.classes) {
                let reason = format!("`classes` is {}; a classification task has 2 to {MAX_CLASSES}", task.classes);
                return Err(VisionError::Data { path: file, line: None, reason });
            }
            return Ok(task);
        }
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Self::vtab(&name).ok_or_else(|| VisionError::Data {
            path: dir.to_path_buf(),
            line: None,
            reason: format!(
                "`{name}` is not a VTAB-1k task name and the directory has no {TASK_FILE} \
                 (write {{\"name\": \"{name}\", \"group\": \"Natural\", \"classes\": N}})"
            ),
        })
    }

    /// Writes `task.json` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join(TASK_FILE);
        let text = serde_json::to_string_pretty(self).expect("a task serialises");
        std::fs::write(&path, text).map_err(|source| VisionError::Io { path, source })
    }
}
