//! The flags every training binary shares, and where they find their default assets.

use std::path::PathBuf;

use wegeft::train::Session;

/// `--out`, `--resume` and `--stop-after`: where a run goes and how far this invocation takes it.
#[derive(clap::Args, Clone, Debug)]
pub struct RunArgs {
    /// The run directory (for several runs, their parent).
    #[arg(long, value_parser = crate::parse::utf8_path)]
    pub out: Option<PathBuf>,
    /// Continue from the run directory's last complete checkpoint (same data order and schedule
    /// as an uninterrupted run).
    #[arg(long)]
    pub resume: bool,
    /// Stop after this many epochs (the schedule still spans all of them); `--resume` continues.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub stop_after: Option<u32>,
    /// Start afresh in a run directory that holds a previous run, replacing its state.
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
}

impl RunArgs {
    /// How far this invocation goes.
    pub fn session(&self) -> Session {
        Session { resume: self.resume, stop_after: self.stop_after.map(|epochs| epochs as usize), overwrite: self.overwrite }
    }

    /// `--out`, or `default` under the working directory.
    pub fn out_or(&self, default: &str) -> PathBuf {
        self.out.clone().unwrap_or_else(|| PathBuf::from(default))
    }
}

/// Where downloaded and converted assets live: `$WEGEFT_CACHE/assets`, by default
/// `~/.cache/wegeft/assets` (outside git; `cargo xtask assets …` fills it).
pub fn asset_dir() -> PathBuf {
    let cache = std::env::var_os("WEGEFT_CACHE").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
        home.join(".cache/wegeft")
    });
    cache.join("assets")
}
