//! Checkpoint files that are whole or absent: written under a temporary name, synced, then
//! renamed, so a process killed mid-write (or a full disk) never leaves a truncated file that a
//! resume would trust.

use std::path::PathBuf;

use burn::record::{FileRecorder, Recorder, RecorderError};
use burn::tensor::backend::Backend;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Wraps a file recorder (burn's `NamedMpkFileRecorder` in `fit`) so each record it writes
/// appears atomically under its final name.
#[derive(Clone, Debug, Default)]
pub struct AtomicFileRecorder<R>(pub R);

impl<B: Backend, R: FileRecorder<B>> Recorder<B> for AtomicFileRecorder<R> {
    type Settings = R::Settings;
    type RecordArgs = PathBuf;
    type RecordOutput = ();
    type LoadArgs = PathBuf;

    fn save_item<I: Serialize>(&self, item: I, mut file: PathBuf) -> Result<(), RecorderError> {
        let extension = <R as FileRecorder<B>>::file_extension();
        file.set_extension(extension);
        // `model-2.partial.mpk`: the inner recorder sets the extension itself, and the checkpoint
        // scan (`model-<epoch>.mpk`) never mistakes it for a finished file.
        let partial = file.with_extension(format!("partial.{extension}"));
        let io = |error: std::io::Error| RecorderError::Unknown(format!("{}: {error}", file.display()));
        self.0.save_item(item, partial.with_extension("x"))?;
        std::fs::File::open(&partial).and_then(|written| written.sync_all()).map_err(io)?;
        std::fs::rename(&partial, &file).map_err(io)
    }

    fn load_item<I: DeserializeOwned>(&self, file: &mut PathBuf) -> Result<I, RecorderError> {
        self.0.load_item(file)
    }
}

impl<B: Backend, R: FileRecorder<B>> FileRecorder<B> for AtomicFileRecorder<R> {
    fn file_extension() -> &'static str {
        R::file_extension()
    }
}
