//! Progress lines for runs whose output is not a terminal (logs, CI): burn's TUI needs a
//! terminal and its fallback prints a debug struct per step. One line per tenth of an epoch, with
//! the latest metric values.

use std::collections::HashMap;

use burn::train::metric::{MetricDefinition, MetricId};
use burn::train::renderer::{
    EvaluationName, EvaluationProgress, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining, ProgressType, TrainingProgress,
};

/// Prints `split epoch e/E [done/total] metric value ...` lines.
#[derive(Default)]
pub struct LineRenderer {
    names: HashMap<MetricId, String>,
    latest: Vec<(MetricId, String)>,
    last_tenth: Option<(usize, usize)>,
}

impl LineRenderer {
    fn update(&mut self, state: MetricState) {
        let entry = match state {
            MetricState::Generic(entry) | MetricState::Numeric(entry, _) => entry,
        };
        let value = entry.serialized_entry.formatted;
        match self.latest.iter_mut().find(|(id, _)| *id == entry.metric_id) {
            Some(slot) => slot.1 = value,
            None => self.latest.push((entry.metric_id, value)),
        }
    }

    fn render(&mut self, split: &str, item: &TrainingProgress) {
        let Some(progress) = &item.progress else { return };
        let epoch = item.global_progress.items_processed;
        let tenth = 10 * progress.items_processed / progress.items_total.max(1);
        if self.last_tenth == Some((epoch, tenth)) || (tenth == 0 && progress.items_processed < progress.items_total) {
            return;
        }
        self.last_tenth = Some((epoch, tenth));
        let metrics: Vec<String> = self
            .latest
            .iter()
            .map(|(id, value)| format!("{} {value}", self.names.get(id).map_or("?", String::as_str)))
            .collect();
        println!(
            "{split} epoch {epoch}/{} [{:>5}/{}] {}",
            item.global_progress.items_total,
            progress.items_processed,
            progress.items_total,
            metrics.join(" | ")
        );
        if progress.items_processed >= progress.items_total {
            self.latest.clear();
        }
    }
}

impl MetricsRendererTraining for LineRenderer {
    fn update_train(&mut self, state: MetricState) {
        self.update(state);
    }

    fn update_valid(&mut self, state: MetricState) {
        self.update(state);
    }

    fn render_train(&mut self, item: TrainingProgress, _: Vec<ProgressType>) {
        self.render("train", &item);
    }

    fn render_valid(&mut self, item: TrainingProgress, _: Vec<ProgressType>) {
        self.render("valid", &item);
    }
}

impl MetricsRendererEvaluation for LineRenderer {
    fn update_test(&mut self, _: EvaluationName, state: MetricState) {
        self.update(state);
    }

    fn render_test(&mut self, item: EvaluationProgress, _: Vec<ProgressType>) {
        self.render("test", &TrainingProgress::from(&item));
    }
}

impl MetricsRenderer for LineRenderer {
    fn manual_close(&mut self) {}

    fn register_metric(&mut self, definition: MetricDefinition) {
        self.names.insert(definition.metric_id, definition.name);
    }
}
