//! The pieces of a fine-tuning run, shared by every model: the [`fit`] skeleton around burn's
//! `Learner`, AdamW with weight decay on matrices only, a linear warmup followed by cosine decay,
//! a data loader that makes resumed runs exact, its seeded generator, and progress lines for logs.

mod atomic_recorder;
mod blockwise_backward;
mod collective;
mod disk_space;
mod fit;
mod loader;
mod loss_scale;
#[cfg(feature = "mpi")]
mod mpi_world;
mod optim;
mod progress;
mod replicas;
mod rng;
mod run_dir;
mod schedule;
mod session;
mod session_logger;

pub use atomic_recorder::AtomicFileRecorder;
pub use blockwise_backward::{surrogate, BlockwiseBackward};
pub use collective::{agree, data_parallel_workers, failure_is_shared, join_world, rank0_decides, world, Collective};
pub use disk_space::{checkpoint_bytes, ensure_space, existing_checkpoint_bytes};
pub use fit::{check_optimizer, finished_epochs, fit, peak_memory_mib, single_worker, CheckpointRecorder, Components, Fitted, Schedule};
pub use run_dir::{start_run, RunDir, CONFIG_FILE};
pub use loader::EpochLoader;
pub use loss_scale::{gradients, LossScaler};
#[cfg(feature = "mpi")]
pub use mpi_world::MpiSession;
pub use optim::SelectiveDecayAdamW;
pub use progress::LineRenderer;
pub use replicas::{broadcast_trainable, trainable_layout};
pub use rng::SplitMix64;
pub use schedule::WarmupCosine;
pub use session::{discard_checkpoints_from, last_checkpoint, Session};
