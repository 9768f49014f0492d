//! Evaluation metrics, computed the way scikit-learn defines them so numbers compare.
//!
//! Binary classifiers treat the *last* class (in sorted order: `yes` of `no`/`yes`,
//! `malignant` of `benign`/`malignant`, `1` of `0`/`1`) as the positive class for precision,
//! recall, F1 and ROC AUC. Multiclass precision/recall/F1 are macro averages.

use std::collections::BTreeMap;

use crate::Dataset;
use wharf_core::Task;
use wharf_core::{Column, Records};
use wharf_core::{Model, Result, WharfError};

/// Named metric values (`accuracy`, `f1`, `rmse`, …).
pub type Metrics = BTreeMap<String, f64>;

/// Fraction of labels predicted right.
pub fn accuracy(truth: &[u32], predicted: &[u32]) -> f64 {
    if truth.is_empty() {
        return f64::NAN;
    }
    truth.iter().zip(predicted).filter(|(a, b)| a == b).count() as f64 / truth.len() as f64
}

/// Precision, recall and F1 of class `positive`.
pub fn precision_recall_f1(truth: &[u32], predicted: &[u32], positive: u32) -> (f64, f64, f64) {
    let (mut tp, mut fp, mut fn_) = (0.0, 0.0, 0.0);
    for (t, p) in truth.iter().zip(predicted) {
        match (*t == positive, *p == positive) {
            (true, true) => tp += 1.0,
            (false, true) => fp += 1.0,
            (true, false) => fn_ += 1.0,
            _ => {}
        }
    }
    let precision = if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 };
    let recall = if tp + fn_ > 0.0 { tp / (tp + fn_) } else { 0.0 };
    let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
    (precision, recall, f1)
}

/// Area under the ROC curve of `scores` for `labels` (true = positive), with ties averaged
/// (the Mann–Whitney statistic). NaN when only one class is present.
pub fn roc_auc(labels: &[bool], scores: &[f64]) -> f64 {
    let n_pos = labels.iter().filter(|l| **l).count() as f64;
    let n_neg = labels.len() as f64 - n_pos;
    if n_pos == 0.0 || n_neg == 0.0 {
        return f64::NAN;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            if labels[k] {
                rank_sum += avg_rank;
            }
        }
        i = j + 1;
    }
    (rank_sum - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg)
}

/// Mean negative log-likelihood of the true class, probabilities clipped to [1e-15, 1].
pub fn log_loss(truth: &[u32], probabilities: &ndarray::Array2<f64>) -> f64 {
    let n = truth.len() as f64;
    truth.iter().enumerate().map(|(i, &t)| -probabilities[(i, t as usize)].clamp(1e-15, 1.0).ln()).sum::<f64>() / n
}

/// Root mean squared error.
pub fn rmse(truth: &[f64], predicted: &[f64]) -> f64 {
    mse(truth, predicted).sqrt()
}

fn mse(truth: &[f64], predicted: &[f64]) -> f64 {
    truth.iter().zip(predicted).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / truth.len() as f64
}

/// Mean absolute error.
pub fn mae(truth: &[f64], predicted: &[f64]) -> f64 {
    truth.iter().zip(predicted).map(|(a, b)| (a - b).abs()).sum::<f64>() / truth.len() as f64
}

/// Coefficient of determination.
pub fn r2(truth: &[f64], predicted: &[f64]) -> f64 {
    let mean = truth.iter().sum::<f64>() / truth.len() as f64;
    let ss_tot: f64 = truth.iter().map(|a| (a - mean) * (a - mean)).sum();
    let ss_res: f64 = truth.iter().zip(predicted).map(|(a, b)| (a - b) * (a - b)).sum();
    if ss_tot == 0.0 {
        f64::NAN
    } else {
        1.0 - ss_res / ss_tot
    }
}

/// Accuracy, precision, recall, F1 and log loss of class `probabilities` against the true
/// class indices, plus ROC AUC for two classes. One place for the rules (macro averages for
/// multiclass, the last class positive for binary) so `evaluate` and the HTTP `score`
/// endpoint always agree.
pub fn classification_metrics(truth: &[u32], probabilities: &wharf_core::Probabilities) -> Metrics {
    let mut m = Metrics::new();
    let predicted = probabilities.argmax();
    m.insert("accuracy".into(), accuracy(truth, &predicted));
    let k = probabilities.classes.len() as u32;
    let (p, r, f) = if k == 2 {
        precision_recall_f1(truth, &predicted, 1)
    } else {
        let all: Vec<_> = (0..k).map(|c| precision_recall_f1(truth, &predicted, c)).collect();
        let avg = |g: fn(&(f64, f64, f64)) -> f64| all.iter().map(g).sum::<f64>() / k as f64;
        (avg(|x| x.0), avg(|x| x.1), avg(|x| x.2))
    };
    m.insert("precision".into(), p);
    m.insert("recall".into(), r);
    m.insert("f1".into(), f);
    if k == 2 {
        let labels: Vec<bool> = truth.iter().map(|t| *t == 1).collect();
        let scores: Vec<f64> = probabilities.values.column(1).to_vec();
        m.insert("roc_auc".into(), roc_auc(&labels, &scores));
    }
    m.insert("log_loss".into(), log_loss(truth, &probabilities.values));
    m
}

/// RMSE, MAE and R² of `predicted` against `truth`.
pub fn regression_metrics(truth: &[f64], predicted: &[f64]) -> Metrics {
    let mut m = Metrics::new();
    m.insert("rmse".into(), rmse(truth, predicted));
    m.insert("mae".into(), mae(truth, predicted));
    m.insert("r2".into(), r2(truth, predicted));
    m
}

/// The index in `classes` of each label in the target `column` (named `name`); a label the
/// model never saw is an error naming the row.
pub fn class_indices(classes: &[String], name: &str, column: &Column) -> Result<Vec<u32>> {
    let mut truth = Vec::with_capacity(column.len());
    for i in 0..column.len() {
        let label = column.text_at(i);
        let idx = classes.iter().position(|c| *c == label).ok_or_else(|| {
            WharfError::invalid(
                format!("{name}[{i}]"),
                format!("class '{}' was not seen in training", wharf_core::excerpt(&label)),
            )
        })?;
        truth.push(idx as u32);
    }
    Ok(truth)
}

/// Scores `model` on a labelled `data` set: accuracy, precision, recall, F1, ROC AUC and
/// log loss for classifiers; RMSE, MAE and R² for regressors.
pub fn evaluate(model: &Model, data: &Dataset) -> Result<Metrics> {
    let (name, column) =
        data.target.as_ref().ok_or_else(|| WharfError::invalid(&data.name, "evaluation needs a target column"))?;
    let records = Records::Columns(data.features.clone());
    match model.task() {
        Task::Classification => {
            let proba = model.predict_proba(&records)?;
            let truth = class_indices(model.classes(), name, column)?;
            Ok(classification_metrics(&truth, &proba))
        }
        Task::Regression => {
            let truth = match column {
                Column::Numeric(v) => v.clone(),
                Column::Text(_) => return Err(WharfError::invalid(name.as_str(), "target must be numeric")),
            };
            let predicted = match model.predict(&records)? {
                wharf_core::Predictions::Values(v) => v,
                _ => return Err(WharfError::Unsupported("regression metrics on a non-regressor".into())),
            };
            Ok(regression_metrics(&truth, &predicted))
        }
        Task::Clustering => Err(WharfError::Unsupported("supervised metrics for a clustering model".into())),
        other => Err(WharfError::Unsupported(format!("metrics for a {other} model"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values computed by hand and checked against scikit-learn's definitions.

    #[test]
    fn classification_metrics() {
        let truth = [1, 0, 1, 1, 0, 0];
        let pred = [1, 0, 0, 1, 1, 0];
        assert!((accuracy(&truth, &pred) - 4.0 / 6.0).abs() < 1e-12);
        let (p, r, f) = precision_recall_f1(&truth, &pred, 1);
        assert!((p - 2.0 / 3.0).abs() < 1e-12);
        assert!((r - 2.0 / 3.0).abs() < 1e-12);
        assert!((f - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn auc_counts_ties_as_half() {
        // sklearn.metrics.roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
        assert!((roc_auc(&[false, false, true, true], &[0.1, 0.4, 0.35, 0.8]) - 0.75).abs() < 1e-12);
        // All scores tied: 0.5.
        assert!((roc_auc(&[false, true, false, true], &[0.5; 4]) - 0.5).abs() < 1e-12);
        assert!(roc_auc(&[true, true], &[0.1, 0.2]).is_nan(), "one class only");
    }

    #[test]
    fn log_loss_matches_definition() {
        let p = ndarray::array![[0.9, 0.1], [0.2, 0.8]];
        let expected = -(0.9f64.ln() + 0.8f64.ln()) / 2.0;
        assert!((log_loss(&[0, 1], &p) - expected).abs() < 1e-12);
    }

    #[test]
    fn regression_metrics() {
        let truth = [3.0, -0.5, 2.0, 7.0];
        let pred = [2.5, 0.0, 2.0, 8.0];
        // sklearn: mean_squared_error = 0.375, mean_absolute_error = 0.5, r2_score = 0.9486...
        assert!((rmse(&truth, &pred) - 0.375f64.sqrt()).abs() < 1e-12);
        assert!((mae(&truth, &pred) - 0.5).abs() < 1e-12);
        assert!((r2(&truth, &pred) - 0.948_608_137_044_967_9).abs() < 1e-12);
    }
}
