//! Each CPU kernel of `wegeft::kernels` beside the burn ops it replaces, forward and backward on
//! `Autodiff<Flex>` at the shapes of a training step (ViT-S/16 at 112 px × 32; SmolLM2-135M at
//! 8 × 64 tokens), interleaved round after round in one process; `scripts/torch_kernel_bench.py`
//! times PyTorch's ops at the same shapes.
//!
//! `cargo bench -p wegeft --bench kernels [-- --rounds R]`

use std::time::{Duration, Instant};

use burn::backend::{Autodiff, Flex};
use burn::module::Module;
use burn::nn::{LayerNormConfig, RmsNormConfig};
use burn::tensor::activation::{gelu, silu, softmax};
use burn::tensor::{Distribution, Tensor};
use clap::Parser;
use wegeft::kernels;

type A = Autodiff<Flex>;

#[derive(Parser)]
struct Args {
    /// Timed rounds (the median is reported), after two untimed ones.
    #[arg(long, default_value_t = 11)]
    rounds: usize,
    /// Set by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

fn random<const D: usize>(shape: [usize; D]) -> Tensor<A, D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), &Default::default())
}

/// Forward, then backward from a fixed upstream gradient, of `f` at a fresh leaf of `shape`.
fn step<const D: usize, const E: usize>(input: &Tensor<A, D>, upstream: &Tensor<A, E>, f: &dyn Fn(Tensor<A, D>) -> Tensor<A, E>) {
    let x = input.clone().require_grad();
    let _ = (f(x) * upstream.clone()).sum().backward();
}

fn composed_rotary(x: Tensor<A, 4>, cos: Tensor<A, 2>, sin: Tensor<A, 2>) -> Tensor<A, 4> {
    let [batch, len, heads, dim] = x.dims();
    let (cos, sin) = (cos.reshape([1, len, 1, dim]), sin.reshape([1, len, 1, dim]));
    let first = x.clone().slice([0..batch, 0..len, 0..heads, 0..dim / 2]);
    let second = x.clone().slice([0..batch, 0..len, 0..heads, dim / 2..dim]);
    x * cos + Tensor::cat(vec![second.neg(), first], 3) * sin
}

/// Attention over `[B, T, heads, d]` projections, as the ViT's: through burn's ops or the kernel.
fn attention(qkv: &[Tensor<A, 4>; 3], upstream: &Tensor<A, 4>, fused: bool) {
    let [q, k, v] = qkv.clone().map(|t| t.require_grad());
    let [hq, hk, hv] = [q, k, v].map(|t| t.swap_dims(1, 2));
    let out = match fused {
        true => kernels::attention(hq, hk, hv, None, 0.125),
        false => softmax(hq.matmul(hk.swap_dims(2, 3)) * 0.125, 3).matmul(hv),
    };
    let _ = (out.swap_dims(1, 2) * upstream.clone()).sum().backward();
}

fn main() {
    let args = Args::parse();
    wegeft_backend::heap::keep_freed_memory();
    let (mlp, gate) = (random([1600, 1536]), random([512, 1536]));
    let (qkv, rope_in) = ([0; 3].map(|_| random([32, 50, 6, 64])), random([8, 64, 9, 64]));
    let (cos, sin) = (random([64, 64]), random([64, 64]));
    // The models' norms are frozen: only x's gradient is taken.
    let (tokens, layer_norm) = (random([1600, 384]), LayerNormConfig::new(384).with_epsilon(1e-6).init::<A>(&Default::default()).no_grad());
    let (hidden, rms_norm) = (random([512, 576]), RmsNormConfig::new(576).with_epsilon(1e-5).init::<A>(&Default::default()).no_grad());
    type Pair = (&'static str, Box<dyn Fn()>, Box<dyn Fn()>);
    let pairs: Vec<Pair> = vec![
        ("GELU, [1600, 1536]", Box::new({ let (x, g) = (mlp.clone(), random([1600, 1536])); move || step(&x, &g, &gelu) }), Box::new({ let (x, g) = (mlp.clone(), random([1600, 1536])); move || step(&x, &g, &kernels::gelu) })),
        ("attention, 32 × 6 heads × 50 × 64", Box::new({ let (x, g) = (qkv.clone(), random([32, 50, 6, 64])); move || attention(&x, &g, false) }), Box::new({ let (x, g) = (qkv.clone(), random([32, 50, 6, 64])); move || attention(&x, &g, true) })),
        ("SiLU, [512, 1536]", Box::new({ let (x, g) = (gate.clone(), random([512, 1536])); move || step(&x, &g, &silu) }), Box::new({ let (x, g) = (gate.clone(), random([512, 1536])); move || step(&x, &g, &kernels::silu) })),
        ("RoPE, [8, 64, 9, 64]", Box::new({ let (x, g, c, s) = (rope_in.clone(), random([8, 64, 9, 64]), cos.clone(), sin.clone()); move || step(&x, &g, &|x| composed_rotary(x, c.clone(), s.clone())) }), Box::new({ let (x, g, c, s) = (rope_in.clone(), random([8, 64, 9, 64]), cos.clone(), sin.clone()); move || step(&x, &g, &|x| kernels::rotary(x, c.clone(), s.clone())) })),
        ("LayerNorm, [1600, 384]", Box::new({ let (x, g, n) = (tokens.clone(), random([1600, 384]), layer_norm.clone()); move || step(&x, &g, &|x| n.forward(x)) }), Box::new({ let (x, g, n) = (tokens.clone(), random([1600, 384]), layer_norm.clone()); move || step(&x, &g, &|x| kernels::layer_norm(x, n.gamma.val(), n.beta.as_ref().map(|b| b.val()), 1e-6)) })),
        ("RMSNorm, [512, 576]", Box::new({ let (x, g, n) = (hidden.clone(), random([512, 576]), rms_norm.clone()); move || step(&x, &g, &|x| n.forward(x)) }), Box::new({ let (x, g, n) = (hidden.clone(), random([512, 576]), rms_norm.clone()); move || step(&x, &g, &|x| kernels::rms_norm(x, n.gamma.val(), n.epsilon)) })),
    ];
    let mut times = vec![(Vec::new(), Vec::new()); pairs.len()];
    for round in 0..args.rounds + 2 {
        for ((_, burn, ours), (burn_times, our_times)) in pairs.iter().zip(times.iter_mut()) {
            for (f, times) in [(burn, &mut *burn_times), (ours, &mut *our_times)] {
                let start = Instant::now();
                f();
                if round >= 2 {
                    times.push(start.elapsed());
                }
            }
        }
    }
    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2].as_secs_f64() * 1e3
    };
    println!("forward + backward on {}, median of {} rounds\n", wegeft_backend::cpu_threads(), args.rounds);
    println!("| op | burn's ops | wegeft::kernels | burn / ours |\n|---|---|---|---|");
    for ((name, ..), (burn_times, our_times)) in pairs.iter().zip(times.iter_mut()) {
        let (burn, ours) = (median(burn_times), median(our_times));
        println!("| {name} | {burn:.2} ms | {ours:.2} ms | {:.1}× |", burn / ours);
    }
}
