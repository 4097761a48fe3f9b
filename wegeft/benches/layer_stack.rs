//! Forward + backward time of a stack of 768→768 layers at N = 4096 tokens, for the frozen stack
//! alone, LoRA r=16, WeGeFT shared r=16 and WeGeFT per-layer r=16, on any compiled backend.
//!
//! The variants run interleaved, round after round, in one process, and the table reports each
//! one's median and its ratio to LoRA: side by side, so machine noise hits all of them alike.
//!
//! `cargo bench -p wegeft --bench layer_stack [-- --backend B --device D --rounds R --layers L --tokens N]`

use std::time::{Duration, Instant};

use burn::nn::LinearConfig;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Distribution, Tensor};
use clap::Parser;
use wegeft::{AdapterBank, AdapterMethod, Injector, LoraConfig, PeftLinear, Sharing, Targets, WegeftConfig};
use wegeft_backend::{BackendArgs, BackendJob};

const WIDTH: usize = 768;

struct Variant<B: AutodiffBackend> {
    name: &'static str,
    layers: Vec<PeftLinear<B>>,
    bank: AdapterBank<B>,
    times: Vec<Duration>,
}

/// `depth` layers named `blocks.{i}.proj`, adapted by `method` (frozen alone for `None`).
fn variant<B: AutodiffBackend>(
    name: &'static str,
    method: Option<AdapterMethod>,
    depth: usize,
    device: &B::Device,
) -> Variant<B> {
    let mut injector = match method {
        Some(method) => Injector::new(method, Targets::new().suffix("proj")).unwrap(),
        None => Injector::none(),
    };
    let layers = (0..depth)
        .map(|i| {
            let linear = LinearConfig::new(WIDTH, WIDTH).init::<B>(device);
            injector.linear(&format!("blocks.{i}.proj"), linear).unwrap()
        })
        .collect();
    Variant { name, layers, bank: injector.finish(device).unwrap(), times: Vec::new() }
}

fn step<B: AutodiffBackend>(variant: &Variant<B>, x: &Tensor<B, 2>) -> Duration {
    let start = Instant::now();
    let y = variant.layers.iter().fold(x.clone(), |h, layer| layer.forward(h, &variant.bank));
    let grads = y.sum().backward();
    // Read a gradient back so that lazy backends finish the work inside the timing.
    let _ = x.grad(&grads).map(|g| g.slice([0..1, 0..1]).into_data());
    start.elapsed()
}

#[derive(Parser)]
struct Bench {
    #[command(flatten)]
    backend: BackendArgs,
    /// Timed rounds (after one warm-up).
    #[arg(long, default_value_t = 7)]
    rounds: usize,
    /// Layers in the stack.
    #[arg(long = "layers", default_value_t = 4)]
    depth: usize,
    /// Tokens N per step.
    #[arg(long, default_value_t = 4096)]
    tokens: usize,
    /// Set by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> std::process::ExitCode {
    let bench = Bench::parse();
    bench.backend.clone().run("layer-stack", false, bench)
}

impl BackendJob for Bench {
    type Output = Result<(), std::convert::Infallible>;

    fn run<B: AutodiffBackend>(self, device: B::Device, _description: String) -> Self::Output {
        let Bench { rounds, depth, tokens, .. } = self;
        let rank = 16;
        let mut variants = vec![
            variant::<B>("frozen only", None, depth, &device),
            variant("LoRA r=16", Some(LoraConfig::new(rank).into()), depth, &device),
            variant("WeGeFT shared r=16", Some(WegeftConfig::new(rank).into()), depth, &device),
            variant(
                "WeGeFT per-layer r=16",
                Some(WegeftConfig::new(rank).with_sharing(Sharing::PerLayer).into()),
                depth,
                &device,
            ),
        ];
        let x = Tensor::<B, 2>::random([tokens, WIDTH], Distribution::Normal(0.0, 1.0), &device).require_grad();
        println!("forward+backward, {depth} layers {WIDTH}->{WIDTH}, N={tokens} tokens, {rounds} rounds (+1 warm-up)");
        for round in 0..=rounds {
            for variant in &mut variants {
                let time = step(variant, &x);
                if round > 0 {
                    variant.times.push(time);
                }
            }
        }
        let median = |v: &Variant<B>| {
            let mut times = v.times.clone();
            times.sort();
            times[times.len() / 2]
        };
        let lora = median(&variants[1]);
        println!("{:<24} {:>12} {:>10}", "variant", "median", "vs LoRA");
        for variant in &variants {
            let time = median(variant);
            println!(
                "{:<24} {:>10.1}ms {:>9.3}x",
                variant.name,
                time.as_secs_f64() * 1e3,
                time.as_secs_f64() / lora.as_secs_f64()
            );
        }
        Ok(())
    }
}
