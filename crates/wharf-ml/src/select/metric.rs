//! Which metric a selection optimises, and in which direction.

use wharf_core::{Result, Task, WharfError};

use crate::Metrics;

/// A metric a search or a gate compares models by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metric {
    name: String,
    greater_is_better: bool,
}

const CLASSIFICATION: &[(&str, bool)] =
    &[("accuracy", true), ("precision", true), ("recall", true), ("f1", true), ("roc_auc", true), ("log_loss", false)];
const REGRESSION: &[(&str, bool)] = &[("rmse", false), ("mae", false), ("r2", true)];

impl Metric {
    /// The metric `name` for a model of `task` with `n_classes` classes (0 when not a
    /// classifier). An unknown name, or ROC AUC for more than two classes, is an error
    /// naming the metrics that apply, so a search fails before anything is trained.
    pub fn parse(name: &str, task: Task, n_classes: usize) -> Result<Metric> {
        let table = match task {
            Task::Classification => CLASSIFICATION,
            Task::Regression => REGRESSION,
            other => return Err(WharfError::invalid("metric", format!("no metric to select {other} models by"))),
        };
        let applies = |m: &str| !(m == "roc_auc" && n_classes > 2);
        match table.iter().find(|(m, _)| *m == name) {
            Some((m, greater)) if applies(m) => Ok(Metric { name: m.to_string(), greater_is_better: *greater }),
            found => {
                let known: Vec<&str> = table.iter().map(|(m, _)| *m).filter(|m| applies(m)).collect();
                let why = if found.is_some() {
                    format!("'{name}' needs two classes, this target has {n_classes}")
                } else {
                    format!("unknown metric '{name}'")
                };
                Err(WharfError::invalid("metric", format!("{why} (for this task: {})", known.join(", "))))
            }
        }
    }

    /// The default a task is compared by: ROC AUC for two classes, accuracy for more, RMSE
    /// for regression.
    pub fn default_for(task: Task, n_classes: usize) -> Result<Metric> {
        let name = match task {
            Task::Classification if n_classes <= 2 => "roc_auc",
            Task::Classification => "accuracy",
            _ => "rmse",
        };
        Metric::parse(name, task, n_classes)
    }

    /// The metric's name, as in [`Metrics`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether a larger value is a better model.
    pub fn greater_is_better(&self) -> bool {
        self.greater_is_better
    }

    /// The value in `metrics`, NaN when absent.
    pub fn of(&self, metrics: &Metrics) -> f64 {
        metrics.get(&self.name).copied().unwrap_or(f64::NAN)
    }

    /// `value` turned so that larger is always better (negated for losses), for ranking.
    pub fn oriented(&self, value: f64) -> f64 {
        if self.greater_is_better {
            value
        } else {
            -value
        }
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}
