//! The metric log of one invocation: numbered by the run's epochs (burn's store counts a resumed
//! session's first epoch as 1, which would overwrite epoch 1's history), and watching the loss,
//! so a run that diverges stops at the step it happened instead of training NaN adapters.

use std::path::Path;
use std::sync::{Arc, Mutex};

use burn::train::logger::{FileMetricLogger, MetricLogger};
use burn::train::metric::store::{EpochSummary, MetricsUpdate, Split};
use burn::train::metric::{MetricDefinition, MetricId, NumericEntry};
use burn::train::Interrupter;

/// Where a non-finite loss was seen: (epoch, iteration within it, value).
pub(crate) type Divergence = Arc<Mutex<Option<(usize, usize, f64)>>>;

/// burn's file logger with the session's epoch offset and a loss watch.
pub(crate) struct SessionLogger {
    inner: FileMetricLogger,
    /// Epochs finished before this invocation.
    finished: usize,
    loss: Option<MetricId>,
    iteration: (usize, usize),
    interrupter: Interrupter,
    divergence: Divergence,
}

impl SessionLogger {
    pub(crate) fn new(run_dir: &Path, finished: usize, interrupter: Interrupter, divergence: Divergence) -> Self {
        Self { inner: FileMetricLogger::new(run_dir), finished, loss: None, iteration: (0, 0), interrupter, divergence }
    }
}

impl MetricLogger for SessionLogger {
    fn log(&mut self, update: MetricsUpdate, epoch: usize, split: &Split) {
        // Until this session's first epoch ends, burn's store says epoch 1.
        let epoch = if epoch == 1 { self.finished + 1 } else { epoch };
        if *split == Split::Train {
            self.iteration = if self.iteration.0 == epoch { (epoch, self.iteration.1 + 1) } else { (epoch, 1) };
            let loss = update.entries_numeric.iter().find(|numeric| Some(&numeric.entry.metric_id) == self.loss.as_ref());
            let value = loss.map(|numeric| match numeric.numeric_entry {
                NumericEntry::Value(value) => value,
                NumericEntry::Aggregated { aggregated_value, .. } => aggregated_value,
            });
            if let Some(value) = value.filter(|value| !value.is_finite()) {
                let mut divergence = self.divergence.lock().expect("not poisoned");
                if divergence.is_none() {
                    *divergence = Some((epoch, self.iteration.1, value));
                    self.interrupter.stop(Some("the loss is not finite"));
                }
            }
        }
        self.inner.log(update, epoch, split);
    }

    fn read_numeric(&mut self, name: &str, epoch: usize, split: &Split) -> Result<Vec<NumericEntry>, String> {
        self.inner.read_numeric(name, epoch, split)
    }

    fn log_metric_definition(&mut self, definition: MetricDefinition) {
        if definition.name == "Loss" {
            self.loss = Some(definition.metric_id.clone());
        }
        self.inner.log_metric_definition(definition);
    }

    fn log_epoch_summary(&mut self, summary: EpochSummary) {
        self.inner.log_epoch_summary(summary);
    }
}
