//! Perplexity as a `Learner` metric, from each step's mean loss and target count: burn's own
//! metric recomputes it from the logits, which the step no longer keeps.

use std::sync::Arc;

use burn::train::metric::{Metric, MetricAttributes, MetricMetadata, MetricName, Numeric, NumericAttributes, NumericEntry, SerializedEntry};

/// A step's mean cross-entropy and the targets it averages over.
pub struct ScoredTokens {
    /// The mean cross-entropy (nats per target).
    pub loss: f64,
    /// Targets that counted.
    pub targets: usize,
}

/// exp of the mean cross-entropy over every target of the epoch so far.
#[derive(Clone)]
pub struct PerplexityMetric {
    name: MetricName,
    nats: f64,
    targets: usize,
}

impl Default for PerplexityMetric {
    fn default() -> Self {
        Self { name: Arc::new("Perplexity".to_string()), nats: 0.0, targets: 0 }
    }
}

impl PerplexityMetric {
    fn epoch(&self) -> f64 {
        match self.targets {
            0 => f64::INFINITY,
            targets => (self.nats / targets as f64).exp(),
        }
    }
}

impl Metric for PerplexityMetric {
    type Input = ScoredTokens;

    fn update(&mut self, input: &ScoredTokens, _: &MetricMetadata) -> SerializedEntry {
        self.nats += input.loss * input.targets as f64;
        self.targets += input.targets;
        let batch = if input.targets == 0 { f64::INFINITY } else { input.loss.exp() };
        let formatted = format!("epoch {:.2} - batch {batch:.2}", self.epoch());
        SerializedEntry::new(formatted, self.value().serialize())
    }

    fn clear(&mut self) {
        self.nats = 0.0;
        self.targets = 0;
    }

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes { unit: None, higher_is_better: false }.into()
    }
}

impl Numeric for PerplexityMetric {
    fn value(&self) -> NumericEntry {
        NumericEntry::Aggregated { aggregated_value: self.epoch(), count: self.targets }
    }

    fn running_value(&self) -> NumericEntry {
        self.value()
    }
}
