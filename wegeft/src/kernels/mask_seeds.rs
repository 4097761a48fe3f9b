//! The seeds of a forward's dropout masks, recorded so that recomputing the forward (layer-wise
//! gradient checkpointing) drops the same elements. Per thread: data-parallel workers each record
//! and replay their own, whatever the others draw from burn's shared generator meanwhile.

use std::cell::RefCell;
use std::collections::VecDeque;

enum Scope {
    Recording(Vec<u64>),
    Replaying(VecDeque<u64>),
}

thread_local! {
    static SCOPE: RefCell<Option<Scope>> = const { RefCell::new(None) };
}

/// Runs `f` and returns, with its result, the seeds of the dropout masks it drew, in order.
pub fn record_masks<R>(f: impl FnOnce() -> R) -> (R, Vec<u64>) {
    let outer = SCOPE.replace(Some(Scope::Recording(Vec::new())));
    let result = f();
    match SCOPE.replace(outer) {
        Some(Scope::Recording(seeds)) => (result, seeds),
        _ => unreachable!("the recording scope is this call's own"),
    }
}

/// Runs `f` again with the masks of the run [`record_masks`] recorded as `seeds`.
pub fn replay_masks<R>(seeds: Vec<u64>, f: impl FnOnce() -> R) -> R {
    let outer = SCOPE.replace(Some(Scope::Replaying(seeds.into())));
    let result = f();
    SCOPE.replace(outer);
    result
}

/// Whether masks drawn now are recorded or replayed: every backend then builds them from a
/// seed ([`super::HashedMask`]), not only the CPU ones.
pub(crate) fn in_scope() -> bool {
    SCOPE.with_borrow(Option::is_some)
}

/// The seed of the next mask: the replayed one, or `draw()`'s (recorded when recording).
pub(crate) fn next_seed(draw: impl FnOnce() -> u64) -> u64 {
    let replayed = SCOPE.with_borrow_mut(|scope| match scope {
        Some(Scope::Replaying(seeds)) => Some(seeds.pop_front().expect("a recomputed forward draws the masks its first run drew")),
        _ => None,
    });
    if let Some(seed) = replayed {
        return seed;
    }
    let seed = draw();
    SCOPE.with_borrow_mut(|scope| {
        if let Some(Scope::Recording(seeds)) = scope {
            seeds.push(seed);
        }
    });
    seed
}
