//! Warnings on stderr: the library reports what did not stop it (an adapter file's unknown key,
//! say) through the `log` crate, which says nothing until a binary installs a logger.

use log::{Level, LevelFilter, Log, Metadata, Record};

struct StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= Level::Warn
    }

    fn log(&self, record: &Record) {
        if self.enabled(record.metadata()) {
            eprintln!("{}: {}", record.level().as_str().to_lowercase(), record.args());
        }
    }

    fn flush(&self) {}
}

/// Prints warnings and errors logged anywhere in the process to stderr (once; later calls and
/// an already installed logger are left alone).
pub fn install_stderr_logger() {
    if log::set_logger(&StderrLogger).is_ok() {
        log::set_max_level(LevelFilter::Warn);
    }
}
