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
use wegeft::{AdapterBank, AdapterMethod, Injector, LoraConfig, PeftLinear, Sharing, Targets, WegeftConfig};
use wegeft_backend::{BackendJob, BackendKind};

const WIDTH: usize = 768;

struct Variant<B: AutodiffBackend> {
    name: &'static str,
    layers: Vec<PeftLinear<B>>,
    bank: Option<AdapterBank<B>>,
    times: Vec<Duration>,
}

fn variant<B: AutodiffBackend>(
    name: &'static str,
    method: Option<AdapterMethod>,
    depth: usize,
    device: &B::Device,
) -> Variant<B> {
    let targets = match method {
        Some(_) => Targets::new().suffix("proj"),
        None => Targets::new().exact("nothing"),
    };
    let method = method.unwrap_or_else(|| WegeftConfig::new(1).into());
    let mut injector = Injector::new(method, targets).unwrap();
    let layers = (0..depth)
        .map(|i| {
            let linear = LinearConfig::new(WIDTH, WIDTH).init::<B>(device);
            injector.linear(&format!("blocks.{i}.proj"), linear).unwrap()
        })
        .collect();
    // The frozen variant's targets match nothing, so it has no bank.
    Variant { name, layers, bank: injector.finish(device).ok(), times: Vec::new() }
}

fn step<B: AutodiffBackend>(variant: &Variant<B>, x: &Tensor<B, 2>) -> Duration {
    let start = Instant::now();
    let y = variant.layers.iter().fold(x.clone(), |h, layer| match &variant.bank {
        Some(bank) => layer.forward(h, bank),
        None => layer.base.forward(h),
    });
    let grads = y.sum().backward();
    // Read a gradient back so that lazy backends finish the work inside the timing.
    let _ = x.grad(&grads).map(|g| g.slice([0..1, 0..1]).into_data());
    start.elapsed()
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().expect("a number"))
}

fn arg_str(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let backend: BackendKind = arg_str("--backend").map_or(BackendKind::Flex, |b| b.parse().unwrap());
    let job = Bench {
        rounds: arg("--rounds", 7),
        depth: arg("--layers", 4),
        tokens: arg("--tokens", 4096),
    };
    let device = arg_str("--device").map(|d| d.parse().expect("a device index"));
    if let Err(error) = wegeft_backend::run(backend, device, job) {
        eprintln!("{error}");
        std::process::exit(1);
    }
}

struct Bench {
    rounds: usize,
    depth: usize,
    tokens: usize,
}

impl BackendJob for Bench {
    type Output = ();

    fn run<B: AutodiffBackend>(self, device: B::Device, description: String) {
        let Bench { rounds, depth, tokens } = self;
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
        println!("backend: {description}");
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
    }
}
