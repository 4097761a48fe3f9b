//! The MPI world (feature `mpi`): the ranks are the processes `mpirun`, `srun` or any other MPI
//! launcher started. MPI itself does the communication (an `MPI_Iallreduce` for the gradients);
//! what this adds is that no rank waits forever. Before each operation every rank checks in with
//! rank 0 (one 8-byte message), and every wait is polled against the peer timeout: rank 0 names
//! the ranks that did not check in, any other rank names rank 0 when rank 0 itself falls silent,
//! and `MPI_Abort` then ends the job on every rank.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::request::{Request, Scope};
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::Threading;

use crate::error::{PeftError, Result};
use crate::train::{join_world, Collective};

/// The exit code of a job ended for a missing peer.
const ABORT_CODE: i32 = 3;

/// How much longer than rank 0 the other ranks wait for an operation to complete.
const RANK0_GRACE: Duration = Duration::from_secs(5);

/// The tag of the check-in messages.
const CHECK_IN: i32 = 0x5747;

/// Holds MPI from its initialisation to its finalisation (on drop), with this process joined to
/// the launcher's world.
pub struct MpiSession {
    universe: Option<Universe>,
    traffic: Arc<Traffic>,
}

/// The gradient all-reduces so far: how many, their bytes, and where their time went.
#[derive(Default)]
struct Traffic {
    reduces: AtomicU64,
    bytes: AtomicU64,
    /// Waiting at check-in for the slowest rank to arrive.
    waiting_ns: AtomicU64,
    /// The all-reduce itself, once every rank had arrived.
    reducing_ns: AtomicU64,
}

impl Traffic {
    /// One line for the end of the run, on rank 0.
    fn summary(&self, size: usize) -> Option<String> {
        let reduces = self.reduces.load(Ordering::Relaxed);
        let each = |total: &AtomicU64| total.load(Ordering::Relaxed) as f64 / reduces.max(1) as f64 / 1e6;
        (reduces > 0).then(|| {
            format!(
                "MPI: {size} ranks, {reduces} gradient all-reduces of {} bytes each: {:.3} ms each once every rank had arrived, {:.3} ms waiting for the slowest",
                self.bytes.load(Ordering::Relaxed) / reduces,
                each(&self.reducing_ns),
                each(&self.waiting_ns)
            )
        })
    }
}

impl MpiSession {
    /// Initialises MPI and makes its world this process's (see [`join_world`]); waits on peers
    /// end the job after `peer_timeout`.
    pub fn start(peer_timeout: Duration) -> Result<Self> {
        let (universe, threading) = mpi::initialize_with_threading(Threading::Multiple)
            .ok_or_else(|| PeftError::InvalidConfig("MPI was already initialised in this process".into()))?;
        // Calls come from whichever thread steps the optimizer, one at a time (the lock below).
        if threading < Threading::Serialized {
            return Err(PeftError::InvalidConfig(format!("this MPI library offers {threading:?} threading; wegeft needs Serialized or Multiple")));
        }
        let comm = universe.world();
        let traffic = Arc::new(Traffic::default());
        let world = MpiWorld {
            traffic: Arc::clone(&traffic),
            rank: comm.rank() as usize,
            size: comm.size() as usize,
            comm: Mutex::new(WorldComm(comm)),
            timeout: peer_timeout,
            calls: AtomicU64::new(0),
        };
        join_world(Arc::new(world))?;
        Ok(Self { universe: Some(universe), traffic })
    }

    /// Ends MPI without finalising it, for a rank that stops on an error: the launcher then ends
    /// every other rank at once, instead of leaving them to wait for this one.
    pub fn abandon(mut self) {
        std::mem::forget(self.universe.take());
    }
}

impl Drop for MpiSession {
    fn drop(&mut self) {
        let world = crate::train::world();
        if let Some(summary) = self.traffic.summary(world.size()).filter(|_| world.rank() == 0 && self.universe.is_some()) {
            println!("{summary}");
        }
        drop(self.universe.take());
    }
}

/// MPI's world communicator. It is a handle MPI lets any thread use once initialised with
/// `Serialized` or better; the mutex around it makes the calls one at a time.
struct WorldComm(SimpleCommunicator);

// SAFETY: see above: `MpiSession::start` refuses a library below `Threading::Serialized`, and every
// use goes through `MpiWorld::comm`'s mutex.
unsafe impl Send for WorldComm {}

/// The launcher's ranks, with the peer timeout.
struct MpiWorld {
    comm: Mutex<WorldComm>,
    rank: usize,
    size: usize,
    timeout: Duration,
    /// Operations so far: each rank's check-in carries its count, so ranks that took different
    /// paths through the code are caught, not mismatched.
    calls: AtomicU64,
    traffic: Arc<Traffic>,
}

impl MpiWorld {
    fn lock(&self) -> MutexGuard<'_, WorldComm> {
        self.comm.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Says `message` on stderr as this rank and ends the job on every rank.
    fn fail(&self, comm: &SimpleCommunicator, message: String) -> ! {
        // One write of the whole line: the ranks share stderr.
        let line = format!("rank {} of {}: {message}; ending the job on every rank\n", self.rank, self.size);
        let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
        comm.abort(ABORT_CODE)
    }

    /// Every rank tells rank 0 it reached this operation (`what`); rank 0 waits up to the peer
    /// timeout for all of them and names those that did not come.
    fn check_in(&self, comm: &SimpleCommunicator, what: &str) {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        let start = Instant::now();
        let sent = [call];
        let mut heard = vec![call; self.size];
        mpi::request::scope(|scope| {
            if self.rank != 0 {
                let mut send = Some(comm.process_at_rank(0).immediate_send_with_tag(scope, &sent[..], CHECK_IN));
                if !self.wait(start, self.timeout, || poll(&mut send)) {
                    self.fail(comm, format!("rank 0 did not take this rank's check-in for {what} within {} s (--peer-timeout): rank 0 stalled or died", self.timeout.as_secs_f64()));
                }
                return;
            }
            let mut receives: Vec<_> = heard[1..]
                .iter_mut()
                .enumerate()
                .map(|(peer, slot)| Some(comm.process_at_rank(peer as i32 + 1).immediate_receive_into_with_tag(scope, slot, CHECK_IN)))
                .collect();
            if !self.wait(start, self.timeout, || receives.iter_mut().map(poll).filter(|&done| !done).count() == 0) {
                let missing: Vec<usize> = receives.iter().enumerate().filter(|(_, receive)| receive.is_some()).map(|(peer, _)| peer + 1).collect();
                self.fail(comm, self.missing_message(&missing, what, call));
            }
        });
        if let Some((peer, &at)) = heard.iter().enumerate().find(|(_, &at)| at != call) {
            self.fail(comm, format!("rank {peer} is at operation #{at} where rank 0 is at #{call} ({what}): the ranks took different paths through the run"));
        }
    }

    fn missing_message(&self, missing: &[usize], what: &str, call: u64) -> String {
        let ranks = missing.iter().map(usize::to_string).collect::<Vec<_>>().join(", ");
        let who = if missing.len() == 1 { format!("rank {ranks}") } else { format!("ranks {ranks}") };
        format!("{who} did not reach {what} (operation #{call}) within {} s (--peer-timeout): stalled or died", self.timeout.as_secs_f64())
    }

    /// Polls `done` until it says so (true) or `timeout` has passed since `start` (false).
    fn wait(&self, start: Instant, timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
        let mut spins = 0u32;
        while !done() {
            if start.elapsed() > timeout {
                return false;
            }
            // Non-blocking MPI progresses only inside its calls: poll tightly at first, then
            // give the core back (a peer that is seconds behind needs no microsecond answers).
            spins += 1;
            if spins < 20_000 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        true
    }

    /// Waits for `request` (an operation of all ranks, after their check-in), ending the job
    /// when it does not complete in time. Other ranks give rank 0 a few seconds more, so that
    /// when a peer is missing, rank 0, which knows which, is the one to say it.
    fn finish<'a, D: ?Sized, S: Scope<'a>>(&self, comm: &SimpleCommunicator, what: &str, request: Request<'a, D, S>) {
        let mut request = Some(request);
        let timeout = if self.rank == 0 { self.timeout } else { self.timeout + RANK0_GRACE };
        if !self.wait(Instant::now(), timeout, || poll(&mut request)) {
            let message = match self.rank {
                0 => format!("{what} did not complete within {} s (--peer-timeout) after every rank checked in: a rank died or stalled", timeout.as_secs_f64()),
                _ => format!("{what} did not complete within {} s (--peer-timeout) and rank 0 named no missing peer: rank 0 stalled or died", timeout.as_secs_f64()),
            };
            self.fail(comm, message);
        }
    }
}

/// Tests `request` once; true when it has completed (and so is gone).
fn poll<'a, D: ?Sized, S: Scope<'a>>(request: &mut Option<Request<'a, D, S>>) -> bool {
    match request.take() {
        None => true,
        Some(pending) => match pending.test() {
            Ok(_) => true,
            Err(pending) => {
                *request = Some(pending);
                false
            }
        },
    }
}

impl Collective for MpiWorld {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn sum(&self, what: &str, values: &mut [f32]) {
        let comm = self.lock();
        let start = Instant::now();
        self.check_in(&comm.0, what);
        let arrived = Instant::now();
        let send = values.to_vec();
        mpi::request::scope(|scope| {
            let request = comm.0.immediate_all_reduce_into(scope, &send[..], values, SystemOperation::sum());
            self.finish(&comm.0, what, request);
        });
        let traffic = &self.traffic;
        traffic.reduces.fetch_add(1, Ordering::Relaxed);
        traffic.bytes.fetch_add(std::mem::size_of_val(values) as u64, Ordering::Relaxed);
        traffic.waiting_ns.fetch_add((arrived - start).as_nanos() as u64, Ordering::Relaxed);
        traffic.reducing_ns.fetch_add(arrived.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }

    fn broadcast(&self, what: &str, mut bytes: Vec<u8>) -> Vec<u8> {
        let comm = self.lock();
        self.check_in(&comm.0, what);
        let root = comm.0.process_at_rank(0);
        let mut length = [bytes.len() as u64];
        mpi::request::scope(|scope| self.finish(&comm.0, what, root.immediate_broadcast_into(scope, &mut length[..])));
        bytes.resize(length[0] as usize, 0);
        if bytes.is_empty() {
            return bytes;
        }
        mpi::request::scope(|scope| self.finish(&comm.0, what, root.immediate_broadcast_into(scope, &mut bytes[..])));
        bytes
    }

    fn all_gather(&self, what: &str, bytes: &[u8]) -> Vec<Vec<u8>> {
        let comm = self.lock();
        self.check_in(&comm.0, what);
        let length = [bytes.len() as u64];
        let mut lengths = vec![0u64; self.size];
        mpi::request::scope(|scope| self.finish(&comm.0, what, comm.0.immediate_all_gather_into(scope, &length[..], &mut lengths[..])));
        // Every rank's bytes padded to the longest: one fixed-size gather.
        let width = lengths.iter().copied().max().unwrap_or(0) as usize;
        if width == 0 {
            return vec![Vec::new(); self.size];
        }
        let mut padded = bytes.to_vec();
        padded.resize(width, 0);
        let mut all = vec![0u8; width * self.size];
        mpi::request::scope(|scope| self.finish(&comm.0, what, comm.0.immediate_all_gather_into(scope, &padded[..], &mut all[..])));
        all.chunks(width).zip(&lengths).map(|(chunk, &length)| chunk[..length as usize].to_vec()).collect()
    }
}
