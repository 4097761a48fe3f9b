//! The MPI ranks of a data-parallel binary: under an MPI launcher (`mpirun`, `srun`, hydra) each
//! process joins the launcher's world before its job runs (feature `mpi`), prints only on rank 0,
//! and leaves MPI so that one rank's error ends the whole job at once.

use crate::BackendError;

/// How long a rank waits for its peers when `--peer-timeout` is not given, in seconds: longer
/// than any one step or validation pass of the project's runs, short enough to end a hung job.
pub const DEFAULT_PEER_TIMEOUT: f64 = 300.0;

/// Whether an MPI launcher started this process (each sets one of these for its ranks).
pub fn launched_by_mpi() -> bool {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMI_RANK", "PMIX_RANK"].iter().any(|name| std::env::var_os(name).is_some())
}

/// This process's place in the launcher's world, held while its job runs.
pub(crate) struct Ranks {
    #[cfg(feature = "mpi")]
    session: Option<wegeft::train::MpiSession>,
}

impl Ranks {
    /// Joins the launcher's world when there is one; refuses to run as one of many copies of a
    /// binary built without MPI, or to take `--peer-timeout` it would not use.
    pub(crate) fn join(peer_timeout: Option<f64>) -> Result<Self, BackendError> {
        #[cfg(feature = "mpi")]
        {
            if !launched_by_mpi() {
                return Ok(Self { session: None });
            }
            let timeout = std::time::Duration::from_secs_f64(peer_timeout.unwrap_or(DEFAULT_PEER_TIMEOUT));
            let session = wegeft::train::MpiSession::start(timeout).map_err(|error| BackendError::Mpi(error.to_string()))?;
            let world = wegeft::train::world();
            if world.rank() > 0 {
                silence_stdout();
            }
            Ok(Self { session: Some(session) })
        }
        #[cfg(not(feature = "mpi"))]
        {
            let asked = if launched_by_mpi() { "started by an MPI launcher" } else { "given `--peer-timeout`" };
            match launched_by_mpi() || peer_timeout.is_some() {
                true => Err(BackendError::MpiNotCompiled { asked }),
                false => Ok(Self {}),
            }
        }
    }

    /// `name`, with this process's rank when there are several.
    pub(crate) fn label(&self, name: &str) -> String {
        let world = wegeft::train::world();
        match world.size() {
            1 => name.to_string(),
            size => format!("{name} (rank {} of {size})", world.rank()),
        }
    }

    /// Leaves MPI: finalised after success or an error every rank shares (all then say it and
    /// leave together); after any other failure left unfinalised, so the launcher ends the other
    /// ranks now instead of letting them wait for this one.
    pub(crate) fn leave(self, failed: bool) {
        #[cfg(feature = "mpi")]
        if let Some(session) = self.session {
            if failed && !wegeft::train::failure_is_shared() && wegeft::train::world().size() > 1 {
                session.abandon();
            }
        }
        #[cfg(not(feature = "mpi"))]
        let _ = failed;
    }
}

/// Points stdout at /dev/null: rank 0 tells the run's progress and results; the other ranks say
/// the same and would only repeat them (errors and warnings still go to stderr).
#[cfg(feature = "mpi")]
fn silence_stdout() {
    use std::os::fd::AsRawFd;
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        use std::io::Write;
        let _ = std::io::stdout().flush();
        // SAFETY: both descriptors are open; dup2 atomically repoints fd 1 at /dev/null.
        unsafe { libc::dup2(null.as_raw_fd(), 1) };
    }
}
