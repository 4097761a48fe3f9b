//! What the project's binaries share: run-time backend selection, the flags of a training run,
//! where assets are cached, and the timing of benchmarks.
//!
//! A binary is compiled with any set of the cargo features `flex` and `ndarray` (both default),
//! `wgpu` and `cuda`, and picks one at run time with `--backend` (Flex, the fastest CPU backend,
//! unless told otherwise). Its work is written once, generic over the backend: the binary's
//! `Args` implement [`BackendJob`], and `main` is `args.backend.clone().run("name", args)`.

#![warn(missing_docs)]

use std::fmt;

pub mod bench;
pub mod heap;
pub mod parse;
mod ranks;
mod run_args;
mod stderr_logger;

pub use ranks::{launched_by_mpi, DEFAULT_PEER_TIMEOUT};
pub use run_args::{asset_dir, RunArgs};
pub use stderr_logger::install_stderr_logger;

use burn::tensor::backend::{AutodiffBackend, DeviceId, DeviceOps};
#[cfg(any(feature = "flex", feature = "ndarray", feature = "cuda"))]
use burn::tensor::backend::Backend;
#[cfg(any(feature = "flex", feature = "ndarray", feature = "wgpu", feature = "cuda"))]
use burn::tensor::backend::Device as _;

/// The backends a binary can be asked to run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// CPU, through burn-flex: gemm matmuls, SIMD kernels, rayon threads, fused attention.
    #[value(alias = "cpu")]
    Flex,
    /// CPU, through ndarray (matrixmultiply, rayon threads, SIMD).
    Ndarray,
    /// Any WebGPU device: Vulkan, Metal, DirectX 12 or OpenGL.
    #[value(alias = "webgpu")]
    Wgpu,
    /// NVIDIA GPUs through CUDA.
    Cuda,
}

impl BackendKind {
    /// The cargo feature that compiles this backend in.
    pub fn feature(self) -> &'static str {
        match self {
            Self::Flex => "flex",
            Self::Ndarray => "ndarray",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.feature())
    }
}

/// Why a backend cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The backend's cargo feature was not enabled when this binary was built.
    #[error("the {backend} backend is not compiled into this binary: rebuild with `--features {backend}`")]
    NotCompiled {
        /// The backend asked for.
        backend: BackendKind,
    },
    /// A device index the backend does not have.
    #[error("the {backend} backend has no device {index}: it sees {count} (`--devices 0,0` runs two workers on device 0)")]
    NoSuchDevice {
        /// The backend asked for.
        backend: BackendKind,
        /// The index asked for.
        index: usize,
        /// How many devices the backend sees.
        count: usize,
    },
    /// The CPU thread pool could not be set up.
    #[error("could not set the CPU thread count: {0}")]
    Threads(String),
    /// Training across processes was asked of a binary built without it.
    #[error("this binary was {asked}, but it was built without MPI: rebuild it with `--features mpi` (`cargo xtask launch` does)")]
    MpiNotCompiled {
        /// How it was asked for.
        asked: &'static str,
    },
    /// MPI could not be started.
    #[error("MPI: {0}")]
    Mpi(String),
}

/// Work written once, generic over the (autodiff) backend it runs on.
pub trait BackendJob {
    /// What the work returns.
    type Output;

    /// Whether the job trains with one data-parallel worker per `--devices` entry; the others
    /// refuse more than one device instead of ignoring the rest.
    const DATA_PARALLEL: bool = false;

    /// Runs on `device`; `description` names the backend and the physical device, for the user.
    fn run<B: AutodiffBackend>(self, device: B::Device, description: String) -> Self::Output;
}

/// Runs `job` on backend `kind`, device `index` (the first device when `None`).
pub fn run<J: BackendJob>(kind: BackendKind, index: Option<usize>, job: J) -> Result<J::Output, BackendError> {
    run_with::<J, burn::backend::autodiff::checkpoint::strategy::NoCheckpointing>(kind, index, &[], job)
}

/// The devices of `indices` on the backend of `main` (same kind: CUDA, a Vulkan GPU, …). The CPU
/// backends have one device, so there every index is that device: workers sharing it.
pub fn devices_like<D: DeviceOps>(main: &D, indices: &[usize]) -> Vec<D> {
    let kind = main.to_id().type_id;
    indices.iter().map(|&index| D::from_id(DeviceId::new(kind, index as u16))).collect()
}

/// Fails unless backend `B` has every device of `indices`, counted among devices of `main`'s kind.
#[cfg(any(feature = "flex", feature = "ndarray", feature = "cuda"))]
fn check_devices<B: Backend>(kind: BackendKind, main: &B::Device, indices: &[usize]) -> Result<(), BackendError> {
    check_count(kind, B::device_count(main.to_id().type_id), indices)
}

/// Fails unless every index of `indices` is below `count`, the devices the backend sees.
#[cfg(any(feature = "flex", feature = "ndarray", feature = "wgpu", feature = "cuda"))]
fn check_count(kind: BackendKind, count: usize, indices: &[usize]) -> Result<(), BackendError> {
    match indices.iter().find(|&&index| index >= count) {
        Some(&index) => Err(BackendError::NoSuchDevice { backend: kind, index, count }),
        None => Ok(()),
    }
}

/// [`run`] with burn's balanced gradient checkpointing: the autodiff graph recomputes cheap
/// (memory-bound) operations in the backward pass instead of keeping their outputs, trading a
/// little compute for activation memory on long sequences.
pub fn run_checkpointed<J: BackendJob>(kind: BackendKind, index: Option<usize>, job: J) -> Result<J::Output, BackendError> {
    run_with::<J, burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing>(kind, index, &[], job)
}

/// Runs `job` on the backend `kind`, on device `index`, after checking that the backend has it
/// and every device of `more` (the other data-parallel workers' devices).
fn run_with<J: BackendJob, C: burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy>(
    kind: BackendKind,
    index: Option<usize>,
    more: &[usize],
    job: J,
) -> Result<J::Output, BackendError> {
    // Only the indices asked for are checked: a backend's default device always exists.
    let indices: Vec<usize> = index.into_iter().chain(more.iter().copied()).collect();
    match kind {
        #[cfg(feature = "flex")]
        BackendKind::Flex => {
            let description = format!("flex (CPU, {})", cpu_threads());
            type B<C> = burn::backend::Autodiff<burn::backend::Flex, C>;
            check_devices::<B<C>>(kind, &Default::default(), &indices)?;
            Ok(job.run::<B<C>>(Default::default(), description))
        }
        #[cfg(feature = "ndarray")]
        BackendKind::Ndarray => {
            let description = format!("ndarray (CPU, {})", cpu_threads());
            type B<C> = burn::backend::Autodiff<burn::backend::NdArray, C>;
            check_devices::<B<C>>(kind, &Default::default(), &indices)?;
            Ok(job.run::<B<C>>(Default::default(), description))
        }
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => {
            use burn::backend::wgpu::{graphics::AutoGraphicsApi, init_setup, WgpuDevice};
            use burn::backend::wgpu::graphics::GraphicsApi;
            use burn::cubecl::Runtime;
            let device = index.map_or(WgpuDevice::DefaultDevice, WgpuDevice::DiscreteGpu);
            // Adapters are counted without a client: burn's `device_count` registers the default
            // device with default settings, and `init_setup` would then register it a second
            // time, which cubecl refuses with a panic.
            let type_id = device.to_id().type_id;
            let count = burn::backend::wgpu::WgpuRuntime::enumerate_devices(type_id, &AutoGraphicsApi::backend()).len();
            check_count(kind, count, &indices)?;
            let setup = init_setup::<AutoGraphicsApi>(&device, Default::default());
            let info = setup.adapter.get_info();
            let description = format!(
                "wgpu on {:?}: {} ({:?}, driver {} {})",
                setup.backend, info.name, info.device_type, info.driver, info.driver_info
            );
            Ok(job.run::<burn::backend::Autodiff<burn::backend::Wgpu, C>>(device, description))
        }
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => {
            let index = index.unwrap_or(0);
            let device = burn::backend::cuda::CudaDevice::new(index);
            check_devices::<burn::backend::Autodiff<burn::backend::Cuda, C>>(kind, &device, &indices)?;
            Ok(job.run::<burn::backend::Autodiff<burn::backend::Cuda, C>>(device, format!("cuda device {index}")))
        }
        #[allow(unreachable_patterns)]
        backend => {
            let _ = (indices, job);
            Err(BackendError::NotCompiled { backend })
        }
    }
}

/// What the CPU backends really run with: the rayon pool both use for matmuls and element-wise
/// kernels (sized by `--threads` or `RAYON_NUM_THREADS`, else one per core), and the vector
/// instructions `wegeft::kernels` run with (said to be capped when `WEGEFT_CPU_CAPABILITY` lowered them).
#[cfg(any(feature = "flex", feature = "ndarray"))]
pub fn cpu_threads() -> String {
    use wegeft::kernels::{cpu_capability, CpuCapability, CPU_CAPABILITY_VAR};
    let threads = rayon::current_num_threads();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (level, detected) = (cpu_capability(), CpuCapability::detected());
    match level < detected {
        true => format!("{threads} of {cores} cores, {level} kernels ({detected} CPU, capped by {CPU_CAPABILITY_VAR})"),
        false => format!("{threads} of {cores} cores, {level} kernels"),
    }
}

/// Sizes the global rayon pool that the CPU backends share; the first call wins.
#[cfg(any(feature = "flex", feature = "ndarray"))]
fn set_cpu_threads(threads: usize) -> Result<(), BackendError> {
    // ndarray's matrixmultiply sizes its own pool from this variable when it first multiplies.
    std::env::set_var("MATMUL_NUM_THREADS", threads.to_string());
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .map_err(|error| BackendError::Threads(error.to_string()))
}

/// The `--backend`, `--device` and `--threads` flags of the project's binaries.
#[derive(clap::Args, Clone, Debug)]
pub struct BackendArgs {
    /// The backend (each is compiled in with the cargo feature of the same name).
    #[arg(long, value_enum, default_value_t = BackendKind::Flex)]
    pub backend: BackendKind,
    /// Device index (the first device by default).
    #[arg(long, conflicts_with = "devices")]
    pub device: Option<usize>,
    /// Data-parallel training on these devices (comma-separated indices), one worker each; an
    /// index repeated runs several workers on one device (the CPU backends have only device 0).
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub devices: Vec<usize>,
    /// CPU threads for the flex and ndarray backends (one per core by default).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub threads: Option<u32>,
    /// Under an MPI launcher: seconds a rank waits for its peers before the job ends with an
    /// error naming the missing rank [default: 300].
    #[arg(long, value_parser = crate::parse::positive)]
    pub peer_timeout: Option<f64>,
}

impl BackendArgs {
    /// The indices of the data-parallel workers' devices: `--devices`, else the one `--device`.
    pub fn device_indices(&self) -> Vec<usize> {
        match self.devices.is_empty() {
            true => vec![self.device.unwrap_or(0)],
            false => self.devices.clone(),
        }
    }

    /// Keeps freed memory for reuse ([`heap`]) and applies `--threads` (before any CPU work, so
    /// the backends' pools take it).
    fn configure(&self) -> Result<(), BackendError> {
        heap::keep_freed_memory();
        match self.threads {
            #[cfg(any(feature = "flex", feature = "ndarray"))]
            Some(threads) => set_cpu_threads(threads as usize),
            #[cfg(not(any(feature = "flex", feature = "ndarray")))]
            Some(_) => Ok(()),
            None => Ok(()),
        }
    }

    /// Runs `job` on the chosen backend, after printing which one; the exit code says how it
    /// went (see [`exit_code`]). With `checkpointing`, the autodiff graph uses burn's balanced
    /// gradient checkpointing ([`run_checkpointed`]).
    pub fn run<J, T, E>(&self, name: &str, checkpointing: bool, job: J) -> std::process::ExitCode
    where
        J: BackendJob<Output = Result<T, E>>,
        E: fmt::Display,
    {
        install_stderr_logger();
        if !J::DATA_PARALLEL && self.devices.len() > 1 {
            eprintln!("{name}: `--devices` lists data-parallel training workers; {name} runs on one device (`--device N`)");
            return std::process::ExitCode::from(2);
        }
        if !J::DATA_PARALLEL && (launched_by_mpi() || self.peer_timeout.is_some()) {
            eprintln!("{name}: runs in one process; `--peer-timeout` and MPI launchers are for train-vit and train-llm");
            return std::process::ExitCode::from(2);
        }
        let ranks = match ranks::Ranks::join(self.peer_timeout) {
            Ok(ranks) => ranks,
            Err(error) => {
                eprintln!("{name}: {error}");
                return std::process::ExitCode::from(2);
            }
        };
        let announced = Announced(job);
        use burn::backend::autodiff::checkpoint::strategy::{BalancedCheckpointing, NoCheckpointing};
        let (first, more) = match self.devices.split_first() {
            Some((first, more)) => (Some(*first), more),
            None => (self.device, &[][..]),
        };
        let outcome = self.configure().and_then(|()| match checkpointing {
            true => run_with::<_, BalancedCheckpointing>(self.backend, first, more, announced),
            false => run_with::<_, NoCheckpointing>(self.backend, first, more, announced),
        });
        let failed = !matches!(outcome, Ok(Ok(_)));
        let code = exit_code(&ranks.label(name), outcome);
        ranks.leave(failed);
        code
    }
}

/// A job that first says which backend and device it runs on.
struct Announced<J>(J);

impl<J: BackendJob> BackendJob for Announced<J> {
    type Output = J::Output;
    const DATA_PARALLEL: bool = J::DATA_PARALLEL;

    fn run<B: AutodiffBackend>(self, device: B::Device, description: String) -> J::Output {
        println!("backend: {description}");
        self.0.run::<B>(device, description)
    }
}

/// The exit code of a binary's job: success, or the error printed as `name: error` and failure
/// (for an error of the job or a backend that is not compiled in).
pub fn exit_code<T, E: fmt::Display>(name: &str, outcome: Result<Result<T, E>, BackendError>) -> std::process::ExitCode {
    let error = match outcome {
        Ok(Ok(_)) => return std::process::ExitCode::SUCCESS,
        Ok(Err(error)) => error.to_string(),
        Err(error) => error.to_string(),
    };
    // One write of the whole line: ranks of an MPI job share stderr, and their lines must not mix.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("{name}: {error}\n").as_bytes());
    std::process::ExitCode::FAILURE
}

/// Instantiates generic test functions `fn name<B: AutodiffBackend>()` once per backend, in
/// modules `flex`, `ndarray`, `wgpu` and `cuda`: both CPU backends always, the others when the
/// *calling* crate has the `wgpu` / `cuda` feature. One test suite, every backend.
#[macro_export]
macro_rules! backend_tests {
    ($($test:ident),* $(,)?) => {
        mod flex {
            $(#[test] fn $test() { super::$test::<burn::backend::Autodiff<burn::backend::Flex>>() })*
        }
        mod ndarray {
            $(#[test] fn $test() { super::$test::<burn::backend::Autodiff<burn::backend::NdArray>>() })*
        }
        #[cfg(feature = "wgpu")]
        mod wgpu {
            $(#[test] fn $test() { super::$test::<burn::backend::Autodiff<burn::backend::Wgpu>>() })*
        }
        #[cfg(feature = "cuda")]
        mod cuda {
            $(#[test] fn $test() { super::$test::<burn::backend::Autodiff<burn::backend::Cuda>>() })*
        }
    };
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
    use clap::Parser;

    /// A job that only says it ran.
    struct Probe;

    impl BackendJob for Probe {
        type Output = &'static str;

        fn run<B: AutodiffBackend>(self, _device: B::Device, _description: String) -> &'static str {
            "ran"
        }
    }

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        backend: BackendArgs,
    }

    #[cfg(feature = "wgpu")]
    #[test]
    fn wgpu_starts_on_its_default_device_and_refuses_one_it_lacks() {
        // The default device is set up once: counting devices must not register it first.
        assert_eq!(run_with::<_, NoCheckpointing>(BackendKind::Wgpu, None, &[], Probe).unwrap(), "ran");
        let error = run_with::<_, NoCheckpointing>(BackendKind::Wgpu, Some(999), &[], Probe).unwrap_err();
        assert!(matches!(error, BackendError::NoSuchDevice { index: 999, .. }), "{error}");
    }

    #[test]
    fn devices_the_backend_lacks_are_refused_before_the_job_runs() {
        let error = run_with::<_, NoCheckpointing>(BackendKind::Flex, Some(0), &[1], Probe).unwrap_err();
        assert!(matches!(error, BackendError::NoSuchDevice { index: 1, count: 1, .. }), "{error}");
        assert!(error.to_string().contains("`--devices 0,0` runs two workers"), "{error}");
        assert_eq!(run_with::<_, NoCheckpointing>(BackendKind::Flex, Some(0), &[0], Probe).unwrap(), "ran");

        let cli = Cli::try_parse_from(["bin", "--devices", "0,0"]).unwrap();
        assert_eq!(cli.backend.device_indices(), [0, 0]);
        assert_eq!(Cli::try_parse_from(["bin"]).unwrap().backend.device_indices(), [0]);
        assert!(Cli::try_parse_from(["bin", "--device", "0", "--devices", "0,0"]).is_err(), "--device and --devices conflict");
    }
}
