//! Is a challenger better than the champion, beyond noise? A paired bootstrap of the metric
//! difference on the same held-out rows.
//!
//! Both models are scored on the same rows; each resample draws rows with replacement and
//! computes both models' metric on that draw, so what varies between resamples is the rows,
//! never the pairing. The percentile interval of the difference (oriented so that above zero
//! means the challenger is better, whatever the metric's direction) is the evidence: a gate
//! promotes only when its lower bound clears a stated margin. Identical models differ by
//! exactly zero on every draw, so they never clear a margin of zero.

use ndarray::{Array2, Axis};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::Serialize;
use wharf_core::{Result, WharfError};

use super::Metric;
use crate::metrics;

/// What a model said about the held-out rows.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Outputs {
    /// Class probabilities, one row per record, columns in the shared class order.
    Probabilities(Array2<f64>),
    /// Predicted values (regression).
    Values(Vec<f64>),
}

/// The true answers of the held-out rows.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Truth {
    /// Class indices in the shared class order.
    Classes(Vec<u32>),
    /// Target values.
    Values(Vec<f64>),
}

/// The bootstrap's settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bootstrap {
    /// Number of resamples (1,000 by default).
    pub resamples: usize,
    /// Coverage of the interval (0.95 by default).
    pub confidence: f64,
    /// Seed of the draws: the same seed, the same interval.
    pub seed: u64,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Bootstrap { resamples: 1000, confidence: 0.95, seed: 42 }
    }
}

/// Both models' metric on the held-out rows and the interval of the improvement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The metric.
    pub metric: String,
    /// The challenger's value on all rows.
    pub candidate: f64,
    /// The champion's value on all rows.
    pub champion: f64,
    /// The improvement on all rows: `candidate - champion`, negated for a loss, so above
    /// zero always means the challenger is better.
    pub improvement: f64,
    /// Lower bound of the bootstrap interval of the improvement.
    pub low: f64,
    /// Upper bound of the interval.
    pub high: f64,
    /// Rows compared.
    pub rows: usize,
    /// The settings used.
    pub bootstrap: Bootstrap,
}

/// `metric` of `outputs` against `truth` on the rows `rows`.
pub fn metric_value(metric: &Metric, truth: &Truth, outputs: &Outputs, rows: &[usize]) -> Result<f64> {
    let mismatch = || WharfError::invalid("metric", format!("'{metric}' does not apply to these outputs"));
    Ok(match (truth, outputs) {
        (Truth::Classes(t), Outputs::Probabilities(p)) => {
            let t: Vec<u32> = rows.iter().map(|&i| t[i]).collect();
            let p = p.select(Axis(0), rows);
            let predicted: Vec<u32> = p
                .rows()
                .into_iter()
                .map(|r| {
                    r.iter().enumerate().fold((0usize, f64::MIN), |b, (j, &v)| if v > b.1 { (j, v) } else { b }).0
                        as u32
                })
                .collect();
            let k = p.ncols() as u32;
            let prf = |which: fn((f64, f64, f64)) -> f64| {
                if k == 2 {
                    which(metrics::precision_recall_f1(&t, &predicted, 1))
                } else {
                    (0..k).map(|c| which(metrics::precision_recall_f1(&t, &predicted, c))).sum::<f64>() / k as f64
                }
            };
            match metric.name() {
                "accuracy" => metrics::accuracy(&t, &predicted),
                "precision" => prf(|x| x.0),
                "recall" => prf(|x| x.1),
                "f1" => prf(|x| x.2),
                "log_loss" => metrics::log_loss(&t, &p),
                "roc_auc" if k == 2 => {
                    let labels: Vec<bool> = t.iter().map(|c| *c == 1).collect();
                    metrics::roc_auc(&labels, &p.column(1).to_vec())
                }
                _ => return Err(mismatch()),
            }
        }
        (Truth::Values(t), Outputs::Values(v)) => {
            let t: Vec<f64> = rows.iter().map(|&i| t[i]).collect();
            let v: Vec<f64> = rows.iter().map(|&i| v[i]).collect();
            match metric.name() {
                "rmse" => metrics::rmse(&t, &v),
                "mae" => metrics::mae(&t, &v),
                "r2" => metrics::r2(&t, &v),
                _ => return Err(mismatch()),
            }
        }
        _ => return Err(mismatch()),
    })
}

/// Compares `candidate` with `champion` on the same rows by a paired bootstrap of `metric`.
pub fn compare(
    metric: &Metric,
    truth: &Truth,
    candidate: &Outputs,
    champion: &Outputs,
    bootstrap: &Bootstrap,
) -> Result<Comparison> {
    let n = match truth {
        Truth::Classes(t) => t.len(),
        Truth::Values(t) => t.len(),
    };
    let len = |o: &Outputs| match o {
        Outputs::Probabilities(p) => p.nrows(),
        Outputs::Values(v) => v.len(),
    };
    if len(candidate) != n || len(champion) != n {
        return Err(WharfError::invalid("holdout", "both models must be scored on the same rows"));
    }
    if n < 2 {
        return Err(WharfError::invalid("holdout", format!("{n} rows: too few to compare two models")));
    }
    if bootstrap.resamples < 10 {
        return Err(WharfError::invalid("resamples", "at least 10 resamples"));
    }
    if !(bootstrap.confidence > 0.0 && bootstrap.confidence < 1.0) {
        return Err(WharfError::invalid("confidence", "must be in (0, 1)"));
    }
    let all: Vec<usize> = (0..n).collect();
    let a = metric_value(metric, truth, candidate, &all)?;
    let b = metric_value(metric, truth, champion, &all)?;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(bootstrap.seed);
    let mut diffs = Vec::with_capacity(bootstrap.resamples);
    let mut rows = vec![0usize; n];
    for _ in 0..bootstrap.resamples {
        rows.iter_mut().for_each(|r| *r = rng.gen_range(0..n));
        let d = metric.oriented(metric_value(metric, truth, candidate, &rows)?)
            - metric.oriented(metric_value(metric, truth, champion, &rows)?);
        // A draw where the metric is undefined (ROC AUC of a one-class draw) says nothing.
        if !d.is_nan() {
            diffs.push(d);
        }
    }
    if diffs.is_empty() {
        return Err(WharfError::invalid("holdout", format!("{metric} is undefined on every resample")));
    }
    diffs.sort_by(f64::total_cmp);
    let tail = (1.0 - bootstrap.confidence) / 2.0;
    let at = |q: f64| diffs[((q * (diffs.len() - 1) as f64).round() as usize).min(diffs.len() - 1)];
    Ok(Comparison {
        metric: metric.name().to_string(),
        candidate: a,
        champion: b,
        improvement: metric.oriented(a) - metric.oriented(b),
        low: at(tail),
        high: at(1.0 - tail),
        rows: n,
        bootstrap: *bootstrap,
    })
}
