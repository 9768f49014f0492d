//! The curves and summary numbers a model card draws, defined as scikit-learn defines them
//! so a card's numbers can be checked against `sklearn.metrics` on the same predictions:
//! `roc_curve`/`roc_auc_score`, `precision_recall_curve`/`average_precision_score`,
//! `brier_score_loss`, `calibration_curve` and `confusion_matrix`.
//!
//! Binary views take `labels` (true = the positive class) and `scores` (the positive class's
//! probability). Thresholds are the distinct scores, highest first, as scikit-learn's are;
//! every distinct score is kept (scikit-learn's `drop_intermediate` is a drawing economy, not
//! part of the definition, and a card wants the curve it computed its area from).

/// A ROC curve: false- and true-positive rates at each distinct score, from `(0, 0)`.
#[derive(Debug, Clone, PartialEq)]
pub struct RocCurve {
    /// False-positive rate of each point.
    pub fpr: Vec<f64>,
    /// True-positive rate of each point.
    pub tpr: Vec<f64>,
    /// The score at or above which a row is called positive (`inf` for the first point).
    pub thresholds: Vec<f64>,
}

/// A precision–recall curve at each distinct score, in rising recall, ending at
/// `(recall 0, precision 1)` as scikit-learn's does.
#[derive(Debug, Clone, PartialEq)]
pub struct PrCurve {
    /// Precision of each point.
    pub precision: Vec<f64>,
    /// Recall of each point.
    pub recall: Vec<f64>,
    /// The score threshold of each point but the last.
    pub thresholds: Vec<f64>,
}

/// One bin of a reliability curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CalibrationBin {
    /// Mean predicted probability of the rows in the bin.
    pub mean_predicted: f64,
    /// Fraction of them that are positive.
    pub fraction_positive: f64,
    /// Rows in the bin.
    pub count: usize,
}

/// Precision, recall and F1 at one decision threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThresholdPoint {
    /// Rows scoring at or above it are called positive.
    pub threshold: f64,
    /// Precision (0 when nothing is called positive, scikit-learn's `zero_division=0`).
    pub precision: f64,
    /// Recall.
    pub recall: f64,
    /// F1.
    pub f1: f64,
}

/// Cumulative (false positives, true positives) at each distinct score, highest first, with
/// that score: scikit-learn's `_binary_clf_curve`.
fn cumulative_counts(labels: &[bool], scores: &[f64]) -> Vec<(f64, f64, f64)> {
    let mut order: Vec<usize> = (0..scores.len().min(labels.len())).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut out = Vec::new();
    let (mut fp, mut tp) = (0.0, 0.0);
    for (i, &k) in order.iter().enumerate() {
        if labels[k] {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        let last_of_tie = order.get(i + 1).is_none_or(|&next| scores[next] != scores[k]);
        if last_of_tie {
            out.push((fp, tp, scores[k]));
        }
    }
    out
}

/// The ROC curve of `scores` for `labels`. Empty when only one class is present (its rates
/// are undefined).
pub fn roc_curve(labels: &[bool], scores: &[f64]) -> RocCurve {
    let counts = cumulative_counts(labels, scores);
    let (fp_total, tp_total) = counts.last().map(|(f, t, _)| (*f, *t)).unwrap_or((0.0, 0.0));
    if fp_total == 0.0 || tp_total == 0.0 {
        return RocCurve { fpr: Vec::new(), tpr: Vec::new(), thresholds: Vec::new() };
    }
    let mut curve = RocCurve { fpr: vec![0.0], tpr: vec![0.0], thresholds: vec![f64::INFINITY] };
    for (fp, tp, s) in counts {
        curve.fpr.push(fp / fp_total);
        curve.tpr.push(tp / tp_total);
        curve.thresholds.push(s);
    }
    curve
}

/// The precision–recall curve of `scores` for `labels`. Empty when no row is positive.
pub fn precision_recall_curve(labels: &[bool], scores: &[f64]) -> PrCurve {
    let counts = cumulative_counts(labels, scores);
    let tp_total = counts.last().map(|(_, t, _)| *t).unwrap_or(0.0);
    if tp_total == 0.0 {
        return PrCurve { precision: Vec::new(), recall: Vec::new(), thresholds: Vec::new() };
    }
    // Highest threshold first here; reversed below to rising recall, as scikit-learn returns.
    let mut curve = PrCurve { precision: Vec::new(), recall: Vec::new(), thresholds: Vec::new() };
    for (fp, tp, s) in counts {
        curve.precision.push(if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 });
        curve.recall.push(tp / tp_total);
        curve.thresholds.push(s);
    }
    curve.precision.reverse();
    curve.recall.reverse();
    curve.thresholds.reverse();
    curve.precision.push(1.0);
    curve.recall.push(0.0);
    curve
}

/// Average precision: `Σ (Rₙ − Rₙ₋₁) Pₙ` over the thresholds (scikit-learn's
/// `average_precision_score`, a step sum, not the trapezoid). NaN when no row is positive.
pub fn average_precision(labels: &[bool], scores: &[f64]) -> f64 {
    let curve = precision_recall_curve(labels, scores);
    if curve.recall.is_empty() {
        return f64::NAN;
    }
    // The points run in falling recall: `-Σ diff(recall) · precision[:-1]`.
    curve.recall.windows(2).zip(&curve.precision).map(|(r, p)| (r[0] - r[1]) * p).sum()
}

/// The Brier score of class probabilities (`rows × classes`) against the true class indices:
/// for two classes the mean squared error of the positive (second) class's probability, for
/// more the mean over rows of the summed squared errors over classes. These are scikit-learn's
/// `brier_score_loss` values (its `scale_by_half="auto"`). NaN for no rows.
pub fn brier_score(truth: &[u32], probabilities: &ndarray::Array2<f64>) -> f64 {
    if truth.is_empty() {
        return f64::NAN;
    }
    let k = probabilities.ncols();
    let mut total = 0.0;
    for (i, &t) in truth.iter().enumerate() {
        if k == 2 {
            let y = if t == 1 { 1.0 } else { 0.0 };
            total += (y - probabilities[(i, 1)]).powi(2);
        } else {
            for j in 0..k {
                let y = if t as usize == j { 1.0 } else { 0.0 };
                total += (y - probabilities[(i, j)]).powi(2);
            }
        }
    }
    total / truth.len() as f64
}

/// A reliability curve: `bins` equal-width bins over [0, 1] of `scores`; empty bins are left
/// out (scikit-learn's `calibration_curve` with `strategy="uniform"`).
pub fn calibration_curve(labels: &[bool], scores: &[f64], bins: usize) -> Vec<CalibrationBin> {
    let bins = bins.max(1);
    let mut sums = vec![(0.0, 0.0, 0usize); bins];
    for (label, score) in labels.iter().zip(scores) {
        if !score.is_finite() {
            continue;
        }
        // scikit-learn's `np.searchsorted(edges[1:-1], p)`: the number of inner edges below
        // `p`, so a score on an edge falls in the lower bin.
        let step = 1.0 / bins as f64;
        let b = (1..bins).filter(|j| *j as f64 * step < *score).count();
        sums[b].0 += score;
        sums[b].1 += if *label { 1.0 } else { 0.0 };
        sums[b].2 += 1;
    }
    sums.into_iter()
        .filter(|s| s.2 > 0)
        .map(|(p, y, n)| CalibrationBin { mean_predicted: p / n as f64, fraction_positive: y / n as f64, count: n })
        .collect()
}

/// The confusion matrix of `k` classes: row = true class, column = predicted class, as
/// scikit-learn's `confusion_matrix` with `labels=range(k)`. Indices at or above `k` are
/// not counted.
pub fn confusion_matrix(truth: &[u32], predicted: &[u32], k: usize) -> Vec<Vec<u64>> {
    let mut m = vec![vec![0u64; k]; k];
    for (&t, &p) in truth.iter().zip(predicted) {
        if let Some(cell) = m.get_mut(t as usize).and_then(|row| row.get_mut(p as usize)) {
            *cell += 1;
        }
    }
    m
}

/// Precision, recall and F1 of calling a row positive when its score is at or above each of
/// `thresholds`.
pub fn threshold_sweep(labels: &[bool], scores: &[f64], thresholds: &[f64]) -> Vec<ThresholdPoint> {
    thresholds
        .iter()
        .map(|&t| {
            let (mut tp, mut fp, mut fn_) = (0.0, 0.0, 0.0);
            for (label, score) in labels.iter().zip(scores) {
                match (*label, *score >= t) {
                    (true, true) => tp += 1.0,
                    (false, true) => fp += 1.0,
                    (true, false) => fn_ += 1.0,
                    _ => {}
                }
            }
            let precision = if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 };
            let recall = if tp + fn_ > 0.0 { tp / (tp + fn_) } else { 0.0 };
            let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
            ThresholdPoint { threshold: t, precision, recall, f1 }
        })
        .collect()
}

/// The class each row is given: for two classes the positive (second) class when its
/// probability is at or above `threshold`, otherwise the most probable class (argmax, ties to
/// the first).
pub fn decide(probabilities: &wharf_core::Probabilities, threshold: f64) -> Vec<u32> {
    if probabilities.values.ncols() == 2 {
        probabilities.values.rows().into_iter().map(|row| u32::from(row[1] >= threshold)).collect()
    } else {
        probabilities.argmax()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values from scikit-learn 1.9 on the same inputs.

    #[test]
    fn roc_and_pr_follow_sklearn() {
        let labels = [false, false, true, true];
        let scores = [0.1, 0.4, 0.35, 0.8];
        let roc = roc_curve(&labels, &scores);
        // roc_curve(..., drop_intermediate=False): fpr [0, 0, .5, .5, 1], tpr [0, .5, .5, 1, 1]
        assert_eq!(roc.fpr, vec![0.0, 0.0, 0.5, 0.5, 1.0]);
        assert_eq!(roc.tpr, vec![0.0, 0.5, 0.5, 1.0, 1.0]);
        // average_precision_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.8333...
        assert!((average_precision(&labels, &scores) - 0.833_333_333_333_333_4).abs() < 1e-12);
        let pr = precision_recall_curve(&labels, &scores);
        assert_eq!(pr.recall, vec![1.0, 1.0, 0.5, 0.5, 0.0]);
        assert_eq!(pr.precision.last(), Some(&1.0));
        assert!(roc_curve(&[true, true], &[0.1, 0.2]).fpr.is_empty());
        assert!(average_precision(&[false, false], &[0.1, 0.2]).is_nan());
    }

    #[test]
    fn brier_confusion_and_calibration() {
        let p = ndarray::array![[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]];
        // brier_score_loss([0, 1, 1], [0.1, 0.8, 0.4]) == (0.01 + 0.04 + 0.36) / 3
        assert!((brier_score(&[0, 1, 1], &p) - 0.41 / 3.0).abs() < 1e-12);
        assert_eq!(
            confusion_matrix(&[0, 1, 1, 2], &[0, 1, 0, 2], 3),
            vec![vec![1, 0, 0], vec![1, 1, 0], vec![0, 0, 1]]
        );
        let bins = calibration_curve(&[false, true, true, false], &[0.05, 0.95, 1.0, 0.5], 10);
        assert_eq!(bins.len(), 3);
        assert_eq!(bins[2].count, 2, "1.0 falls in the last bin");
        assert_eq!(calibration_curve(&[true, false], &[0.1, 0.05], 10).len(), 1, "an edge goes to the lower bin");
    }
}
