//! The processes that train one run together: MPI ranks, one per process, on one machine or many
//! (see `mpi_world`, feature `mpi`). A plain run is a world of one, whose operations return what
//! they were given. Every rank runs the same code and calls the same operations in the same order;
//! rank 0 alone writes the run directory.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{PeftError, Result};
use crate::train::run_dir::differences;

/// The operations ranks do together. A peer that dies or stalls never leaves a rank waiting: the
/// implementation ends the whole job, naming the rank, within its peer timeout (so these return
/// no errors).
pub trait Collective: Send + Sync {
    /// This process's rank, 0 to `size() - 1`.
    fn rank(&self) -> usize;

    /// How many ranks there are.
    fn size(&self) -> usize;

    /// Replaces `values` by their element-wise sum over all ranks. `what` names the operation in
    /// the error about a peer that does not arrive.
    fn sum(&self, what: &str, values: &mut [f32]);

    /// Rank 0's `bytes`, on every rank.
    fn broadcast(&self, what: &str, bytes: Vec<u8>) -> Vec<u8>;

    /// Every rank's `bytes`, in rank order.
    fn all_gather(&self, what: &str, bytes: &[u8]) -> Vec<Vec<u8>>;
}

/// One process on its own.
struct SingleProcess;

impl Collective for SingleProcess {
    fn rank(&self) -> usize {
        0
    }

    fn size(&self) -> usize {
        1
    }

    fn sum(&self, _what: &str, _values: &mut [f32]) {}

    fn broadcast(&self, _what: &str, bytes: Vec<u8>) -> Vec<u8> {
        bytes
    }

    fn all_gather(&self, _what: &str, bytes: &[u8]) -> Vec<Vec<u8>> {
        vec![bytes.to_vec()]
    }
}

static WORLD: OnceLock<Arc<dyn Collective>> = OnceLock::new();

/// Set when [`agree`] or [`rank0_decides`] failed: every rank holds that error.
static SHARED_FAILURE: AtomicBool = AtomicBool::new(false);

/// Whether this process stopped on an error every rank stopped on (a disagreement, or rank 0's
/// refusal): the ranks can then leave MPI together, each having said it; after any other error a
/// rank must end the job at once, as the others may be waiting for it.
pub fn failure_is_shared() -> bool {
    SHARED_FAILURE.load(Ordering::SeqCst)
}

/// `result`, noting that an error in it is every rank's.
fn shared<T>(result: Result<T>) -> Result<T> {
    if result.is_err() {
        SHARED_FAILURE.store(true, Ordering::SeqCst);
    }
    result
}

/// The world this process trains in: the one [`join_world`] set, or a world of one. Like MPI's
/// own world communicator, it belongs to the process.
pub fn world() -> Arc<dyn Collective> {
    WORLD.get().cloned().unwrap_or_else(|| Arc::new(SingleProcess))
}

/// Makes `world` this process's world; once per process, before training starts.
pub fn join_world(world: Arc<dyn Collective>) -> Result<()> {
    WORLD.set(world).map_err(|_| PeftError::InvalidConfig("this process already joined a world of ranks".into()))
}

/// The data-parallel workers of a run with `devices` per rank: every rank's.
pub fn data_parallel_workers(devices: usize) -> usize {
    devices.max(1) * world().size()
}

/// Fails on every rank unless all ranks hold the same value of each `(field, value)`: the error
/// names the field, the ranks that differ from rank 0 and, for JSON objects, the keys.
pub fn agree(world: &dyn Collective, fields: &[(&str, String)]) -> Result<()> {
    if world.size() == 1 {
        return Ok(());
    }
    let mine: Vec<&String> = fields.iter().map(|(_, value)| value).collect();
    let all = world.all_gather("the start-up agreement", &serde_json::to_vec(&mine).expect("strings serialise"));
    let all: Vec<Vec<String>> = all.iter().map(|bytes| serde_json::from_slice(bytes).unwrap_or_default()).collect();
    for (index, (field, _)) in fields.iter().enumerate() {
        let value = |rank: usize| all[rank].get(index).map(String::as_str).unwrap_or("(nothing)");
        let differing: Vec<usize> = (1..all.len()).filter(|&rank| value(rank) != value(0)).collect();
        if let Some(&first) = differing.first() {
            let ranks = differing.iter().map(usize::to_string).collect::<Vec<_>>().join(", ");
            let who = if differing.len() == 1 { format!("rank {ranks} differs") } else { format!("ranks {ranks} differ") };
            return shared(Err(PeftError::RanksDisagree { field: field.to_string(), who, detail: difference(value(0), value(first)) }));
        }
    }
    Ok(())
}

/// What differs between rank 0's `expected` and another rank's `found`: the keys of two JSON
/// objects, or both values.
fn difference(expected: &str, found: &str) -> String {
    use serde_json::Value;
    if let (Ok(expected @ Value::Object(_)), Ok(found @ Value::Object(_))) = (serde_json::from_str::<Value>(expected), serde_json::from_str::<Value>(found)) {
        return differences(&expected, &found, |expected, found| format!("{expected} on rank 0, {found} there")).join("; ");
    }
    let cut = |text: &str| if text.len() > 200 { format!("{}…", &text[..text.floor_char_boundary(200)]) } else { text.to_string() };
    format!("{} on rank 0, {} there", cut(expected), cut(found))
}

/// Runs `decide` on rank 0 and hands its outcome to every rank, so all take the same branch
/// (resume or start afresh, refuse or go on); other ranks see rank 0's error as theirs.
pub fn rank0_decides<T: Serialize + DeserializeOwned>(world: &dyn Collective, what: &str, decide: impl FnOnce() -> Result<T>) -> Result<T> {
    if world.size() == 1 {
        return decide();
    }
    let outcome = if world.rank() == 0 { Some(decide()) } else { None };
    let message: std::result::Result<&T, String> = match &outcome {
        Some(Ok(value)) => Ok(value),
        Some(Err(error)) => Err(error.to_string()),
        None => Err(String::new()),
    };
    let bytes = world.broadcast(what, serde_json::to_vec(&message).expect("serialisable"));
    if let Some(outcome) = outcome {
        return shared(outcome);
    }
    shared(match serde_json::from_slice::<std::result::Result<T, String>>(&bytes) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(message)) => Err(PeftError::OnRank0(message)),
        Err(error) => Err(PeftError::OnRank0(format!("its answer to {what} did not decode here: {error}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stands in for one rank of a world whose other ranks hold `others`.
    struct Fake {
        rank: usize,
        others: Vec<Vec<u8>>,
    }

    impl Collective for Fake {
        fn rank(&self) -> usize {
            self.rank
        }
        fn size(&self) -> usize {
            self.others.len() + 1
        }
        fn sum(&self, _what: &str, _values: &mut [f32]) {}
        fn broadcast(&self, _what: &str, bytes: Vec<u8>) -> Vec<u8> {
            if self.rank == 0 { bytes } else { self.others[0].clone() }
        }
        fn all_gather(&self, _what: &str, bytes: &[u8]) -> Vec<Vec<u8>> {
            let mut all = self.others.clone();
            all.insert(self.rank, bytes.to_vec());
            all
        }
    }

    #[test]
    fn disagreement_names_the_field_the_ranks_and_the_keys() {
        let fields = |lr: &str| serde_json::to_vec(&[r#"{"rank": 16}"#.to_string(), format!(r#"{{"lr": {lr}, "rank": 16}}"#)]).unwrap();
        let world = Fake { rank: 0, others: vec![fields("0.001"), fields("0.002"), fields("0.001")] };
        let mine = [("plan", r#"{"rank": 16}"#.to_string()), ("config", r#"{"lr": 0.001, "rank": 16}"#.to_string())];
        let error = agree(&world, &mine).unwrap_err().to_string();
        assert!(error.contains("`config`") && error.contains("rank 2 ") && error.contains("lr: 0.001 on rank 0, 0.002 there"), "{error}");
        assert!(!error.contains("rank 1,") && !error.contains("rank 3"), "{error}");
        let world = Fake { rank: 1, others: vec![fields("0.001")] };
        agree(&world, &mine).unwrap();
    }

    #[test]
    fn other_ranks_take_rank_0s_outcome() {
        let refused = serde_json::to_vec(&Err::<u32, String>("the run exists".into())).unwrap();
        let world = Fake { rank: 1, others: vec![refused] };
        let error = rank0_decides(&world, "the start", || Ok(7u32)).unwrap_err().to_string();
        assert!(error.contains("rank 0") && error.contains("the run exists"), "{error}");
        let world = Fake { rank: 1, others: vec![serde_json::to_vec(&Ok::<u32, String>(3)).unwrap()] };
        assert_eq!(rank0_decides(&world, "the start", || Ok(7u32)).unwrap(), 3);
    }
}
