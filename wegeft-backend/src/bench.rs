//! What the step benchmarks share: timing a closure the way the PyTorch reference script does,
//! and one JSON line for `cargo xtask bench` to collect.

use std::time::Instant;

/// The timing flags every step benchmark takes, with the reference script's defaults.
#[derive(clap::Args, Clone, Debug)]
pub struct StepArgs {
    /// Timed steps (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub steps: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Set by `cargo bench`.
    #[arg(long, hide = true)]
    pub bench: bool,
}

/// Median and every timed run of `step`, after the untimed warm-up runs. `step` must wait for
/// its result (`Backend::sync`), so asynchronous backends are timed to completion.
pub fn time_steps(timing: &StepArgs, mut step: impl FnMut()) -> (f64, Vec<f64>) {
    for _ in 0..timing.warmup {
        step();
    }
    let mut times: Vec<f64> = (0..timing.steps.max(1))
        .map(|_| {
            let start = Instant::now();
            step();
            start.elapsed().as_secs_f64()
        })
        .collect();
    let timed = times.clone();
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], timed)
}
