//! Atomic file writes: a crash never leaves a half-written adapter behind.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::error::{PeftError, Result};

/// Writes `bytes` to a temporary file beside `path`, syncs it, then renames it over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()
    };
    if let Err(source) = write() {
        let _ = fs::remove_file(&temp);
        return Err(PeftError::io(&temp, source));
    }
    fs::rename(&temp, path).map_err(|source| PeftError::io(path, source))
}
