//! VTAB-1k split lists: `train800.txt`, `val200.txt`, `train800val200.txt` and `test.txt`, each
//! line `images/<split>/<file> <label>`, relative to the task directory.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Result, VisionError};

/// The four lists of the VTAB-1k protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
#[value(rename_all = "lower")]
pub enum Split {
    /// 800 training images, for hyper-parameter search.
    Train800,
    /// 200 validation images, for hyper-parameter search.
    Val200,
    /// Both: the final training set.
    Train800Val200,
    /// The held-out test set; never used for selection.
    Test,
}

impl Split {
    /// The list's file name.
    pub fn file_name(self) -> &'static str {
        match self {
            Self::Train800 => "train800.txt",
            Self::Val200 => "val200.txt",
            Self::Train800Val200 => "train800val200.txt",
            Self::Test => "test.txt",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.file_name().trim_end_matches(".txt"))
    }
}

/// Image files with their labels.
pub type LabelledFiles = Vec<(PathBuf, usize)>;

/// The images and labels of `split` in `task_dir`, checked: every line parses, every label is
/// below `classes`, every file exists. Errors name the list file and the line.
pub fn read_split(task_dir: &Path, split: Split, classes: usize) -> Result<LabelledFiles> {
    let list = task_dir.join(split.file_name());
    let text = std::fs::read_to_string(&list).map_err(|source| VisionError::Io { path: list.clone(), source })?;
    let mut items = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_error = |reason: String| VisionError::Data {
            path: list.clone(),
            line: Some(index + 1),
            reason,
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (file, label) = line
            .rsplit_once(char::is_whitespace)
            .ok_or_else(|| line_error(format!("expected `<image path> <label>`, found `{line}`")))?;
        let label: usize = label
            .parse()
            .map_err(|_| line_error(format!("label `{label}` is not a non-negative integer")))?;
        if label >= classes {
            return Err(line_error(format!("label {label} is out of range: the task has {classes} classes")));
        }
        let path = task_dir.join(file.trim());
        if !path.is_file() {
            return Err(line_error(format!("image {} does not exist", path.display())));
        }
        items.push((path, label));
    }
    if items.is_empty() {
        return Err(VisionError::Data {
            path: list,
            line: None,
            reason: "the list has no images".into(),
        });
    }
    Ok(items)
}
