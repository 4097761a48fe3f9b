//! Fine-tuning a ViT on an image-classification task through burn's `Learner`, VTAB-1k style.

pub mod artifacts;
mod config;
mod eval;
mod method;
mod plot;
mod run;
mod search;
mod step;
mod suite;

pub use artifacts::{load_trained, RunResults};
pub use config::{Preset, TrainConfig};
pub use eval::{evaluate, Evaluation};
pub use method::{unfreeze, Method};
pub use run::{build_model, load_split, train};
pub use search::{search, SearchResult, PAPER_LR_GRID, PAPER_WD_GRID};
pub use suite::{markdown_report, suite_tasks};
