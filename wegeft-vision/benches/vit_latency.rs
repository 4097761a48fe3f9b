//! Forward latency per image of ViT-S/14 (DINOv2 layout, random weights: latency does not depend
//! on the values) at 224 and 112 px, inference only.
//!
//! `cargo bench -p wegeft-vision --bench vit_latency [-- --backend B --rounds R]`

use std::time::{Duration, Instant};

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Tensor};
use wegeft_backend::{BackendJob, BackendKind};
use wegeft_vision::{VisionTransformer, VitConfig, WeightSource};

struct Latency {
    rounds: usize,
}

impl BackendJob for Latency {
    type Output = ();

    fn run<B: AutodiffBackend>(self, device: B::Device, description: String) {
        type Inference<B> = <B as AutodiffBackend>::InnerBackend;
        let config = VitConfig::dinov2_small(0);
        let model = VisionTransformer::<Inference<B>>::load(&config, WeightSource::Random, None, &device)
            .expect("random weights always load");
        println!("ViT-S/14 forward, {} rounds after a warm-up; backend: {description}", self.rounds);
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
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let backend: BackendKind = value("--backend").map_or(BackendKind::Flex, |b| b.parse().expect("a backend"));
    let rounds = value("--rounds").map_or(5, |r| r.parse().expect("a number"));
    if let Err(error) = wegeft_backend::run(backend, None, Latency { rounds }) {
        eprintln!("{error}");
        std::process::exit(1);
    }
}
