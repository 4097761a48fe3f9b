//! Several runs (tasks × methods) and the VTAB-style report: per-task accuracy, group means, and
//! both averages (mean of the group means, the headline, and the mean over tasks).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::data::TaskGroup;
use crate::error::{Result, VisionError};
use crate::train::{Method, RunResults};

/// The task directories of a suite: sub-directories holding a `train800.txt`, in name order,
/// optionally restricted to `only`.
pub fn suite_tasks(suite: &Path, only: &[String]) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(suite).map_err(|source| VisionError::Io { path: suite.into(), source })?;
    let mut tasks: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("train800.txt").is_file())
        .filter(|p| only.is_empty() || only.iter().any(|name| p.file_name().is_some_and(|n| n == name.as_str())))
        .collect();
    tasks.sort();
    if tasks.is_empty() {
        return Err(VisionError::Data {
            path: suite.into(),
            line: None,
            reason: "no tasks here (a task is a directory with train800.txt)".into(),
        });
    }
    if let Some(missing) = only.iter().find(|name| !tasks.iter().any(|p| p.ends_with(name.as_str()))) {
        return Err(VisionError::Data {
            path: suite.into(),
            line: None,
            reason: format!("no task `{missing}` (a directory with train800.txt)"),
        });
    }
    Ok(tasks)
}

/// The Markdown report of a set of runs.
pub fn markdown_report(runs: &[RunResults]) -> String {
    let mut tasks: Vec<(TaskGroup, String)> = runs.iter().map(|r| (r.group, r.task.clone())).collect();
    tasks.sort();
    tasks.dedup();
    let mut methods: Vec<Method> = runs.iter().map(|r| r.method).collect();
    methods.sort_by_key(|m| Method::all().iter().position(|x| x == m));
    methods.dedup();
    let groups: Vec<TaskGroup> = {
        let mut g: Vec<_> = tasks.iter().map(|(g, _)| *g).collect();
        g.dedup();
        g
    };

    let mut out = String::new();
    let split = runs.first().map_or("test", |r| r.eval_split.as_str());
    writeln!(out, "Top-1 accuracy (%) on `{split}` after the last epoch (no selection on it).\n").unwrap();
    write!(out, "| method | params (excl. head) |").unwrap();
    for (_, task) in &tasks {
        write!(out, " {task} |").unwrap();
    }
    for group in &groups {
        write!(out, " {group} |").unwrap();
    }
    writeln!(out, " mean of groups | mean of tasks | train img/s |").unwrap();
    writeln!(out, "|{}", "---|".repeat(2 + tasks.len() + groups.len() + 3)).unwrap();
    for method in methods {
        let by_task: BTreeMap<&str, &RunResults> =
            runs.iter().filter(|r| r.method == method).map(|r| (r.task.as_str(), r)).collect();
        let params = by_task.values().next().map_or(0, |r| r.trainable_excluding_head());
        write!(out, "| {method} | {params} |").unwrap();
        for (_, task) in &tasks {
            match by_task.get(task.as_str()) {
                Some(r) => write!(out, " {:.2} |", r.eval.accuracy).unwrap(),
                None => write!(out, " – |").unwrap(),
            }
        }
        let mut group_means = Vec::new();
        for group in &groups {
            let accs: Vec<f64> = tasks
                .iter()
                .filter(|(g, _)| g == group)
                .filter_map(|(_, t)| by_task.get(t.as_str()).map(|r| r.eval.accuracy))
                .collect();
            let mean = mean(&accs);
            group_means.push(mean);
            write!(out, " {} |", fmt_mean(mean)).unwrap();
        }
        let all: Vec<f64> = by_task.values().map(|r| r.eval.accuracy).collect();
        let speeds: Vec<f64> = by_task.values().map(|r| r.train_images_per_second).collect();
        let group_means: Option<Vec<f64>> = group_means.into_iter().collect();
        writeln!(
            out,
            " {} | {} | {:.1} |",
            fmt_mean(group_means.as_deref().and_then(mean)),
            fmt_mean(mean(&all)),
            mean(&speeds).unwrap_or(0.0)
        )
        .unwrap();
    }
    out
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

fn fmt_mean(value: Option<f64>) -> String {
    value.map_or_else(|| "–".into(), |v| format!("{v:.2}"))
}
