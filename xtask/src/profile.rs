//! `cargo xtask bench --profile`: where each side's step time goes, ours by `perf` samples of
//! the bench binary's symbols, PyTorch's by torch.profiler's ops (the reference script's
//! `--profile`), each as shares of its own total.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Entries each side reports.
pub const TOP: usize = 5;

/// Whether `perf` runs here; if not, says so on stderr (PyTorch's side is still profiled).
pub fn perf_available() -> bool {
    let available = Command::new("perf").arg("--version").output().is_ok_and(|o| o.status.success());
    if !available {
        eprintln!("xtask: --profile needs `perf` (apt-get install linux-perf); profiling PyTorch's side only");
    }
    available
}

/// `command` wrapped in `perf record` writing its samples to `data`.
pub fn recorded(command: &Command, data: &Path) -> Command {
    let mut perf = Command::new("perf");
    perf.args(["record", "--quiet", "-F", "499", "-o"]).arg(data).arg("--").arg(command.get_program()).args(command.get_args());
    perf.envs(command.get_envs().filter_map(|(key, value)| value.map(|value| (key, value))));
    perf
}

/// The `TOP` symbols of most self time in `data`, with their share of all samples; copies of one
/// function (monomorphisations, instruction-set copies) are summed under its name.
pub fn top_symbols(data: &Path) -> std::io::Result<Vec<(String, f64)>> {
    let report = Command::new("perf").args(["report", "--stdio", "--quiet", "--no-children", "--sort", "symbol", "-i"]).arg(data).output()?;
    let mut shares: Vec<(String, f64)> = Vec::new();
    for line in String::from_utf8_lossy(&report.stdout).lines() {
        let mut fields = line.split_whitespace();
        let (Some(percent), Some(_kind)) = (fields.next(), fields.next()) else { continue };
        let Some(share) = percent.strip_suffix('%').and_then(|p| p.parse::<f64>().ok()) else { continue };
        // The columns after the symbol are empty call-chain fields, printed as "-".
        let symbol = fields.take_while(|field| *field != "-").collect::<Vec<_>>().join(" ");
        match shares.iter_mut().find(|(name, _)| *name == symbol) {
            Some((_, total)) => *total += share / 100.0,
            None => shares.push((symbol, share / 100.0)),
        }
    }
    shares.sort_by(|a, b| b.1.total_cmp(&a.1));
    shares.truncate(TOP);
    Ok(shares)
}

/// Where `perf record` keeps the samples of configuration `index`.
pub fn data_path(index: usize) -> PathBuf {
    std::env::temp_dir().join(format!("wegeft-bench-{}-{index}.perf", std::process::id()))
}

/// The markdown table of one configuration's top entries, ours beside PyTorch's.
pub fn table(title: &str, ours: &[(String, f64)], theirs: &[(String, f64)]) -> String {
    let cell = |entry: Option<&(String, f64)>| entry.map_or("| | ".to_string(), |(name, share)| format!("| `{}` | {:.1}% ", short(name), share * 100.0));
    let mut text = format!("### {title}: top {TOP} by self time\n\n| ours (perf, symbols) | share | PyTorch (torch.profiler, ops) | share |\n|---|---|---|---|\n");
    for row in 0..ours.len().max(theirs.len()) {
        text.push_str(&format!("{}{}|\n", cell(ours.get(row)), cell(theirs.get(row))));
    }
    text.push('\n');
    text
}

/// A symbol without its generic arguments, which make Rust names unreadably long.
fn short(name: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in name.chars() {
        match c {
            '<' => {
                depth += 1;
                if depth == 1 {
                    out.push_str("<…>");
                }
            }
            '>' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.replace('|', "\\|")
}
