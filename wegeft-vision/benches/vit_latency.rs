//! Forward latency per image of ViT-S/14 (DINOv2 layout, random weights: latency does not depend
//! on the values) at 224 and 112 px, inference only.
//!
//! `cargo bench -p wegeft-vision --bench vit_latency [-- --backend B --rounds R]`

use std::time::{Duration, Instant};

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Tensor};
use clap::Parser;
use wegeft::io::WeightStore;
use wegeft::Injector;
use wegeft_backend::{BackendArgs, BackendJob};
use wegeft_vision::{VisionTransformer, VitConfig};

#[derive(Parser, Clone)]
struct Args {
    #[command(flatten)]
    backend: BackendArgs,
    /// Timed rounds per size and batch, after one warm-up.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Set by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

impl BackendJob for Args {
    type Output = wegeft_vision::Result<()>;

    fn run<B: AutodiffBackend>(self, device: B::Device, _description: String) -> Self::Output {
        type Inference<B> = <B as AutodiffBackend>::InnerBackend;
        let config = VitConfig::dinov2_small(0);
        let model = VisionTransformer::<Inference<B>>::load(&config, WeightStore::random(), Injector::none(), &device)?;
        println!("ViT-S/14 forward, {} rounds after a warm-up", self.rounds);
        println!("{:>6} {:>6} {:>14} {:>12}", "size", "batch", "median/batch", "per image");
        for size in [224, 112] {
            for batch in [1, 8] {
                let images = Tensor::<Inference<B>, 4>::random([batch, 3, size, size], Distribution::Normal(0.0, 1.0), &device);
                let mut times: Vec<Duration> = (0..=self.rounds)
                    .map(|_| {
                        let start = Instant::now();
                        let features = model.forward_features(images.clone());
                        let _ = features.slice([0..1, 0..1, 0..1]).into_data();
                        Inference::<B>::sync(&device).expect("device sync");
                        start.elapsed()
                    })
                    .skip(1)
                    .collect();
                times.sort();
                let median = times[times.len() / 2];
                println!(
                    "{size:>6} {batch:>6} {:>12.1}ms {:>10.1}ms",
                    median.as_secs_f64() * 1e3,
                    median.as_secs_f64() * 1e3 / batch as f64
                );
            }
        }
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    args.backend.clone().run("vit-latency", false, args)
}
