//! Room on disk for a run's checkpoints, checked before training: burn's Learner cannot recover
//! from a write that fails mid-run (its metric logger panics, and the panic aborts the process),
//! so a disk that is already too full is said up front, with the numbers.

use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::error::{PeftError, Result};

/// Bytes the checkpoints of `model` need: burn keeps up to three epochs' sets (the two last and
/// the best), each the whole model in f32 plus AdamW's two moments of every trainable parameter,
/// and 8 MiB for metric logs and the run's outputs.
pub fn checkpoint_bytes<B: Backend, M: Module<B>>(model: &M) -> u64 {
    #[derive(Default)]
    struct Count {
        all: u64,
        trainable: u64,
    }
    impl<B: Backend> ModuleVisitor<B> for Count {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let count = param.shape().num_elements() as u64;
            self.all += count;
            if param.is_require_grad() {
                self.trainable += count;
            }
        }
    }
    let mut count = Count::default();
    model.visit(&mut count);
    3 * 4 * (count.all + 2 * count.trainable) + (8 << 20)
}

/// Bytes the checkpoints already in `run_dir` take: a resumed run replaces them as it goes.
pub fn existing_checkpoint_bytes(run_dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(run_dir.join("checkpoint")) else { return 0 };
    entries.flatten().filter_map(|entry| entry.metadata().ok()).map(|metadata| metadata.len()).sum()
}

/// Fails when the file system of `dir` has fewer than `needed` bytes free (when it can say).
pub fn ensure_space(dir: &Path, needed: u64) -> Result<()> {
    match available_bytes(dir) {
        Some(available) if available < needed => Err(PeftError::DiskFull { dir: dir.to_path_buf(), needed, available }),
        _ => Ok(()),
    }
}

#[cfg(unix)]
fn available_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: `path` is a NUL-terminated string that outlives the call, and `stat` is a plain C
    // struct that `statvfs` fills in (all-zero is a valid value of it).
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    let status = unsafe { libc::statvfs(path.as_ptr(), &mut stat) };
    (status == 0).then(|| stat.f_bavail as u64 * stat.f_frsize as u64)
}

#[cfg(not(unix))]
fn available_bytes(_dir: &Path) -> Option<u64> {
    None
}
