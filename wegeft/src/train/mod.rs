//! Training pieces that PEFT runs share: AdamW with weight decay on matrices only, and a linear
//! warmup followed by cosine decay.

mod optim;
mod schedule;

pub use optim::SelectiveDecayAdamW;
pub use schedule::WarmupCosine;
