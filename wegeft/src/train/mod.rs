//! Training pieces that PEFT runs share: AdamW with weight decay on matrices only, a linear
//! warmup followed by cosine decay, a data loader that makes resumed runs exact, and progress
//! lines for logs.

mod loader;
mod optim;
mod progress;
mod schedule;
mod session;

pub use loader::EpochLoader;
pub use optim::SelectiveDecayAdamW;
pub use progress::LineRenderer;
pub use schedule::WarmupCosine;
pub use session::{last_checkpoint, Session};
