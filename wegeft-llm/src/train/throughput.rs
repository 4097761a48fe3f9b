//! Tokens per second as a `Learner` metric: iterations/s hides how long the batches are, and
//! padding is not work worth counting, so each step reports the real (unpadded) tokens it ran.

use std::sync::Arc;
use std::time::Instant;

use burn::train::metric::state::{FormatOptions, NumericMetricState};
use burn::train::metric::{Metric, MetricAttributes, MetricMetadata, MetricName, Numeric, NumericAttributes, NumericEntry, SerializedEntry};

/// Real (unpadded) tokens of one step.
pub struct TokenCount(pub usize);

/// Tokens per second since the epoch's first step.
#[derive(Clone)]
pub struct TokensPerSecondMetric {
    name: MetricName,
    state: NumericMetricState,
    start: Option<Instant>,
    tokens: usize,
}

impl Default for TokensPerSecondMetric {
    fn default() -> Self {
        Self {
            // The name is also a log file name: no slash.
            name: Arc::new("Tokens per Second".to_string()),
            state: NumericMetricState::default(),
            start: None,
            tokens: 0,
        }
    }
}

impl Metric for TokensPerSecondMetric {
    type Input = TokenCount;

    fn update(&mut self, input: &TokenCount, _: &MetricMetadata) -> SerializedEntry {
        // The clock starts after the first step (which also pays for warm-up), as burn's
        // iteration-speed metric does.
        let rate = match self.start {
            Some(start) => {
                self.tokens += input.0;
                self.tokens as f64 / start.elapsed().as_secs_f64().max(1e-9)
            }
            None => {
                self.start = Some(Instant::now());
                0.0
            }
        };
        self.state.update(rate, 1, FormatOptions::new(self.name()).unit("tok/s").precision(1))
    }

    fn clear(&mut self) {
        self.start = None;
        self.tokens = 0;
    }

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: Some("tok/s".to_string()),
            higher_is_better: true,
        }
        .into()
    }
}

impl Numeric for TokensPerSecondMetric {
    fn value(&self) -> NumericEntry {
        self.state.current_value()
    }

    fn running_value(&self) -> NumericEntry {
        self.state.running_value()
    }
}
