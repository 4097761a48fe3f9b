//! The pieces of a fine-tuning run, shared by every model: the [`fit`] skeleton around burn's
//! `Learner`, AdamW with weight decay on matrices only, a linear warmup followed by cosine decay,
//! a data loader that makes resumed runs exact, its seeded generator, and progress lines for logs.

mod atomic_recorder;
mod blockwise_backward;
mod disk_space;
mod fit;
mod loader;
mod loss_scale;
mod optim;
mod progress;
mod rng;
mod run_dir;
mod schedule;
mod session;
mod session_logger;

pub use atomic_recorder::AtomicFileRecorder;
pub use blockwise_backward::{surrogate, BlockwiseBackward};
pub use disk_space::{checkpoint_bytes, ensure_space, existing_checkpoint_bytes};
pub use fit::{check_optimizer, finished_epochs, fit, peak_memory_mib, single_worker, CheckpointRecorder, Components, Fitted, Schedule};
pub use run_dir::{start_run, RunLock, CONFIG_FILE};
pub use loader::EpochLoader;
pub use loss_scale::{gradients, LossScaler};
pub use optim::SelectiveDecayAdamW;
pub use progress::LineRenderer;
pub use rng::SplitMix64;
pub use schedule::WarmupCosine;
pub use session::{discard_checkpoints_from, last_checkpoint, Session};
