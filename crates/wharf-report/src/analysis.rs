//! What the card computes from holdout predictions, run history and the model's own tags,
//! turned into plots (or the message saying why a plot is missing).
//!
//! Multiclass models: ROC, precision–recall and the reliability curve are drawn one class
//! against the rest (one line per class), and the card's AUC and AP are their macro means —
//! scikit-learn's `roc_auc_score(multi_class="ovr")` and `average_precision_score` of the
//! binarised labels with `average="macro"`. The confusion matrix is at the most probable
//! class. There is no threshold sweep: a multiclass model has no single threshold.

use std::collections::BTreeMap;

use wharf_core::{Column, Model, Predictions, Records, Result, RunRecord, Task, WharfError};
use wharf_ml::curves::{
    average_precision, brier_score, calibration_curve, confusion_matrix, decide, precision_recall_curve, roc_curve,
    threshold_sweep,
};
use wharf_ml::importance::permutation_importance;
use wharf_ml::metrics::{class_indices, classification_metrics, regression_metrics, roc_auc};
use wharf_ml::Dataset;

use crate::plots::{self, padded, Axes, Series};
use crate::report::{Plot, ReportOptions, Section};

/// Curves with more vertices than this are thinned (evenly, keeping both ends) before they
/// are drawn, so a large holdout does not make a card of megabytes; the caption says so.
const MAX_CURVE_POINTS: usize = 1000;
/// The same for scatter markers.
const MAX_MARKERS: usize = 2000;
/// Permutation importance is measured on at most this many holdout rows.
const MAX_PERMUTATION_ROWS: usize = 10_000;
/// At most this many features in an importance chart (the largest).
const MAX_BARS: usize = 25;

/// What the holdout gave: metrics and plots.
pub struct HoldoutAnalysis {
    pub metrics: BTreeMap<String, f64>,
    pub sections: Vec<Section>,
    /// A classifier's confusion matrix (rows true, columns predicted) and its class names.
    pub confusion: Option<(Vec<String>, Vec<Vec<u64>>)>,
}

/// Evenly spaced indices into `n` items, at most `max`, always the first and the last.
fn thin(n: usize, max: usize) -> Vec<usize> {
    if n <= max || max < 2 {
        return (0..n).collect();
    }
    let step = (n - 1) as f64 / (max - 1) as f64;
    let mut idx: Vec<usize> = (0..max).map(|i| (i as f64 * step).round() as usize).collect();
    idx.dedup();
    idx
}

fn thinned(points: Vec<(f64, f64)>, max: usize) -> (Vec<(f64, f64)>, bool) {
    let n = points.len();
    let keep = thin(n, max);
    let cut = keep.len() < n;
    (keep.into_iter().map(|i| points[i]).collect(), cut)
}

fn plot(
    id: &'static str,
    title: impl Into<String>,
    caption: String,
    drawn: (String, usize),
    legend: Vec<String>,
) -> Section {
    let (svg, points) = drawn;
    Section::Plot(Plot { id, title: title.into(), caption, points, svg, legend })
}

/// The holdout's metrics and plots for `model`.
pub fn holdout(model: &Model, data: &Dataset, options: &ReportOptions) -> Result<HoldoutAnalysis> {
    let (name, column) =
        data.target.as_ref().ok_or_else(|| WharfError::invalid(&data.name, "the holdout has no target column"))?;
    let records = Records::Columns(data.features.clone());
    let mut analysis = match model.task() {
        Task::Classification => classification(model, name, column, &records, options)?,
        Task::Regression => regression(name, column, model.predict(&records)?)?,
        other => return Err(WharfError::Unsupported(format!("a holdout report of a {other} model"))),
    };
    analysis.sections.push(permutation(model, data, options)?);
    Ok(analysis)
}

fn classification(
    model: &Model,
    name: &str,
    column: &Column,
    records: &Records,
    options: &ReportOptions,
) -> Result<HoldoutAnalysis> {
    let classes = model.classes().to_vec();
    let truth = class_indices(&classes, name, column)?;
    let proba = model.predict_proba(records)?;
    let k = classes.len();
    let binary = k == 2;
    let threshold = options.threshold.unwrap_or(0.5);
    let decided = decide(&proba, threshold);
    let mut metrics = classification_metrics(&truth, &proba);
    let mut sections = Vec::new();

    // The one-vs-rest views: for a binary model only the positive (second) class.
    let views: Vec<(String, Vec<bool>, Vec<f64>)> = (if binary { 1..2 } else { 0..k })
        .map(|c| {
            (classes[c].clone(), truth.iter().map(|t| *t as usize == c).collect(), proba.values.column(c).to_vec())
        })
        .collect();

    // ROC.
    let mut series = Vec::new();
    let mut aucs = Vec::new();
    let mut cut = false;
    for (class, labels, scores) in &views {
        let roc = roc_curve(labels, scores);
        if roc.fpr.is_empty() {
            continue;
        }
        aucs.push(roc_auc(labels, scores));
        let (points, c) = thinned(roc.fpr.into_iter().zip(roc.tpr).collect(), MAX_CURVE_POINTS);
        cut |= c;
        series.push(Series { name: class.clone(), points });
    }
    let auc = if aucs.is_empty() { f64::NAN } else { aucs.iter().sum::<f64>() / aucs.len() as f64 };
    if series.is_empty() {
        sections.push(Section::missing(
            "roc",
            "ROC curve",
            "the holdout holds only one class, so the ROC curve is undefined",
        ));
    } else {
        let axes = Axes { x: "false positive rate", y: "true positive rate", x_range: 0.0..1.0, y_range: 0.0..1.0 };
        let what = if binary { format!("AUC {}", show(auc)) } else { format!("one-vs-rest, macro AUC {}", show(auc)) };
        let legend = series.iter().map(|s| s.name.clone()).collect();
        let drawn = plots::lines(&axes, &series, &[vec![(0.0, 0.0), (1.0, 1.0)]])?;
        sections.push(plot("roc", "ROC curve", caption(what, cut), drawn, legend));
    }
    metrics.insert(if binary { "roc_auc" } else { "roc_auc_ovr" }.into(), auc);

    // Precision–recall.
    let mut series = Vec::new();
    let mut aps = Vec::new();
    let mut cut = false;
    for (class, labels, scores) in &views {
        let pr = precision_recall_curve(labels, scores);
        if pr.recall.is_empty() {
            continue;
        }
        aps.push(average_precision(labels, scores));
        let (points, c) = thinned(pr.recall.into_iter().zip(pr.precision).collect(), MAX_CURVE_POINTS);
        cut |= c;
        series.push(Series { name: class.clone(), points });
    }
    let ap = if aps.is_empty() { f64::NAN } else { aps.iter().sum::<f64>() / aps.len() as f64 };
    if series.is_empty() {
        sections.push(Section::missing("pr", "Precision–recall", "no holdout row is of the positive class"));
    } else {
        let axes = Axes { x: "recall", y: "precision", x_range: 0.0..1.0, y_range: 0.0..1.05 };
        let what = if binary { format!("AP {}", show(ap)) } else { format!("one-vs-rest, macro AP {}", show(ap)) };
        let legend = series.iter().map(|s| s.name.clone()).collect();
        sections.push(plot("pr", "Precision–recall", caption(what, cut), plots::lines(&axes, &series, &[])?, legend));
    }
    metrics.insert("average_precision".into(), ap);

    // Reliability.
    let brier = brier_score(&truth, &proba.values);
    metrics.insert("brier".into(), brier);
    let series: Vec<Series> = views
        .iter()
        .map(|(class, labels, scores)| Series {
            name: class.clone(),
            points: calibration_curve(labels, scores, options.bins)
                .into_iter()
                .map(|b| (b.mean_predicted, b.fraction_positive))
                .collect(),
        })
        .collect();
    let axes = Axes { x: "mean predicted probability", y: "fraction positive", x_range: 0.0..1.0, y_range: 0.0..1.0 };
    let what = format!(
        "{}{} equal-width bins, Brier score {}",
        if binary { "" } else { "one-vs-rest, " },
        options.bins,
        show(brier)
    );
    let legend = series.iter().map(|s| s.name.clone()).collect();
    let drawn = plots::lines(&axes, &series, &[vec![(0.0, 0.0), (1.0, 1.0)]])?;
    sections.push(plot("calibration", "Reliability curve", what, drawn, legend));

    // Confusion matrix at the decision rule.
    let cells = confusion_matrix(&truth, &decided, k);
    let rule = if binary { format!("at threshold {threshold}") } else { "at the most probable class".to_string() };
    sections.push(plot(
        "confusion",
        "Confusion matrix",
        format!("rows true, columns predicted, {rule}"),
        plots::matrix(&classes, &cells)?,
        Vec::new(),
    ));
    if binary {
        metrics.insert("threshold".into(), threshold);
        let (p, r, f) = wharf_ml::metrics::precision_recall_f1(&truth, &decided, 1);
        metrics.insert("precision".into(), p);
        metrics.insert("recall".into(), r);
        metrics.insert("f1".into(), f);
        metrics.insert("accuracy".into(), wharf_ml::metrics::accuracy(&truth, &decided));
    }

    // Threshold sweep.
    if let Some((_, labels, scores)) = views.first().filter(|_| binary) {
        let thresholds: Vec<f64> = (0..=100).map(|i| i as f64 / 100.0).collect();
        let sweep = threshold_sweep(labels, scores, &thresholds);
        let series = vec![
            Series { name: "precision".into(), points: sweep.iter().map(|p| (p.threshold, p.precision)).collect() },
            Series { name: "recall".into(), points: sweep.iter().map(|p| (p.threshold, p.recall)).collect() },
            Series { name: "F1".into(), points: sweep.iter().map(|p| (p.threshold, p.f1)).collect() },
        ];
        let axes = Axes { x: "threshold", y: "score", x_range: 0.0..1.0, y_range: 0.0..1.05 };
        let legend = series.iter().map(|s| s.name.clone()).collect();
        let what =
            format!("positive class '{}' called at score ≥ threshold, thresholds 0.00 to 1.00 by 0.01", classes[1]);
        sections.push(plot(
            "threshold",
            "Threshold sweep",
            what,
            plots::lines(&axes, &series, &[vec![(threshold, 0.0), (threshold, 1.05)]])?,
            legend,
        ));
    } else {
        sections.push(Section::missing(
            "threshold",
            "Threshold sweep",
            "a multiclass model decides by its most probable class, so there is no single threshold to sweep",
        ));
    }
    Ok(HoldoutAnalysis { metrics, sections, confusion: Some((classes, cells)) })
}

fn regression(name: &str, column: &Column, predicted: Predictions) -> Result<HoldoutAnalysis> {
    let truth = match column {
        Column::Numeric(v) => v.clone(),
        Column::Text(_) => return Err(WharfError::invalid(name, "the target of a regression model must be numeric")),
    };
    let predicted = match predicted {
        Predictions::Values(v) => v,
        _ => return Err(WharfError::Unsupported("a regression report of a model that predicts no values".into())),
    };
    let metrics = regression_metrics(&truth, &predicted);
    let mut sections = Vec::new();
    let residuals: Vec<f64> = truth.iter().zip(&predicted).map(|(t, p)| t - p).collect();
    let finite = |v: &[f64]| {
        v.iter()
            .copied()
            .filter(|x| x.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)))
    };

    let (lo, hi) = {
        let (a, b) = finite(&truth);
        let (c, d) = finite(&predicted);
        (a.min(c), b.max(d))
    };
    let (points, cut) = thinned(truth.iter().copied().zip(predicted.iter().copied()).collect(), MAX_MARKERS);
    let axes = Axes { x: "actual", y: "predicted", x_range: padded(lo, hi), y_range: padded(lo, hi) };
    let what = caption(format!("R² {}, the grey line is predicted = actual", show(metrics["r2"])), cut);
    sections.push(plot(
        "predicted-actual",
        "Predicted against actual",
        what,
        plots::scatter(&axes, &points, &[vec![(lo, lo), (hi, hi)]])?,
        Vec::new(),
    ));

    let (rlo, rhi) = finite(&residuals);
    let bins = 20;
    // All residuals equal (or none finite): a unit-wide range around them.
    let (rlo, rhi) = if rlo.is_finite() && rhi > rlo {
        (rlo, rhi)
    } else {
        let centre = if rlo.is_finite() { rlo } else { 0.0 };
        (centre - 0.5, centre + 0.5)
    };
    let width = (rhi - rlo) / bins as f64;
    let edges: Vec<f64> = (0..=bins).map(|i| rlo + i as f64 * width).collect();
    let mut counts = vec![0usize; bins];
    for r in residuals.iter().filter(|r| r.is_finite()) {
        counts[(((r - rlo) / width) as usize).min(bins - 1)] += 1;
    }
    sections.push(plot(
        "residual-histogram",
        "Residuals",
        format!("actual − predicted, {bins} bins, RMSE {}", show(metrics["rmse"])),
        plots::histogram("residual", &edges, &counts)?,
        Vec::new(),
    ));

    let (plo, phi) = finite(&predicted);
    let (points, cut) = thinned(predicted.iter().copied().zip(residuals.iter().copied()).collect(), MAX_MARKERS);
    let axes = Axes { x: "predicted", y: "residual", x_range: padded(plo, phi), y_range: padded(rlo, rhi) };
    sections.push(plot(
        "residuals-predicted",
        "Residuals against predicted",
        caption("the grey line is zero".into(), cut),
        plots::scatter(&axes, &points, &[vec![(plo, 0.0), (phi, 0.0)]])?,
        Vec::new(),
    ));
    Ok(HoldoutAnalysis { metrics, sections, confusion: None })
}

fn permutation(model: &Model, data: &Dataset, options: &ReportOptions) -> Result<Section> {
    // Each repeat of each feature scores the whole sample again: on a large holdout, a seeded
    // sample keeps a card (which every training run writes) from costing more than the fit.
    let rows = data.n_rows();
    let sampled;
    let data = if rows > MAX_PERMUTATION_ROWS {
        sampled = data.split(MAX_PERMUTATION_ROWS as f64 / rows as f64, options.seed)?.1;
        &sampled
    } else {
        data
    };
    let measured = permutation_importance(model, data, options.repeats, options.seed)?;
    let mut features = measured.features;
    features.sort_by(|a, b| b.mean.total_cmp(&a.mean).then(a.feature.cmp(&b.feature)));
    let shown = features.len().min(MAX_BARS);
    let labels: Vec<String> = features[..shown].iter().map(|f| f.feature.clone()).collect();
    let means: Vec<f64> = features[..shown].iter().map(|f| f.mean).collect();
    let errors: Vec<f64> = features[..shown].iter().map(|f| f.std).collect();
    let mut what = format!(
        "drop in holdout {} when a feature is shuffled; mean ± standard deviation over {} seeded repeats (seed {})",
        measured.scoring,
        options.repeats.max(1),
        options.seed
    );
    if data.n_rows() < rows {
        what.push_str(&format!("; on a seeded sample of {} of the {rows} holdout rows", data.n_rows()));
    }
    if shown < features.len() {
        what.push_str(&format!("; the {shown} largest of {}", features.len()));
    }
    let drawn = plots::bars(&format!("drop in {}", measured.scoring), &labels, &means, Some(&errors))?;
    Ok(plot("permutation-importance", "Permutation importance", what, drawn, Vec::new()))
}

/// The native gain importance a tree model's tags carry (`feature_importance_gain`,
/// `name=value, …`), when they do.
pub fn gain(model: &Model) -> Result<Section> {
    let Some(tag) = model.metadata().tags.get("feature_importance_gain") else {
        return Ok(Section::missing(
            "gain-importance",
            "Gain importance",
            "this model carries no native importance (only Wharf's gradient-boosted trees record their split gain)",
        ));
    };
    let pairs: Vec<(String, f64)> = tag
        .split(", ")
        .filter_map(|p| p.split_once('='))
        .filter_map(|(n, v)| v.trim().parse::<f64>().ok().map(|v| (n.trim().to_string(), v)))
        .take(MAX_BARS)
        .collect();
    if pairs.is_empty() {
        return Ok(Section::missing("gain-importance", "Gain importance", "no feature was split on"));
    }
    let labels: Vec<String> = pairs.iter().map(|p| p.0.clone()).collect();
    let values: Vec<f64> = pairs.iter().map(|p| p.1).collect();
    let drawn = plots::bars("total split gain", &labels, &values, None)?;
    Ok(plot(
        "gain-importance",
        "Gain importance",
        "total loss reduction of the splits on each feature, from the model's own record".into(),
        drawn,
        Vec::new(),
    ))
}

/// Learning curves: every metric the run logged at more than one step.
pub fn learning_curve(run: &RunRecord) -> Result<Section> {
    let mut by_key: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for p in &run.metrics {
        by_key.entry(p.key.as_str()).or_default().push((p.step as f64, p.value));
    }
    let series: Vec<Series> = by_key
        .into_iter()
        .filter(|(_, pts)| pts.len() > 1)
        .map(|(k, mut pts)| {
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            Series { name: k.to_string(), points: pts }
        })
        .collect();
    if series.is_empty() {
        return Ok(Section::missing(
            "learning-curve",
            "Learning curve",
            format!("run {} logged no metric at more than one step", run.info.id),
        ));
    }
    let all = series.iter().flat_map(|s| s.points.iter());
    let (x_max, y_lo, y_hi) = all.fold((1.0f64, f64::INFINITY, f64::NEG_INFINITY), |(x, lo, hi), (s, v)| {
        if v.is_finite() {
            (x.max(*s), lo.min(*v), hi.max(*v))
        } else {
            (x.max(*s), lo, hi)
        }
    });
    let axes = Axes { x: "step", y: "value", x_range: 0.0..x_max, y_range: padded(y_lo, y_hi) };
    let legend = series.iter().map(|s| s.name.clone()).collect();
    let what = format!("metrics of run {} by step", run.info.id);
    Ok(plot("learning-curve", "Learning curve", what, plots::lines(&axes, &series, &[])?, legend))
}

fn caption(what: String, cut: bool) -> String {
    if cut {
        format!("{what} (thinned to evenly spaced points for drawing)")
    } else {
        what
    }
}

/// A metric as the card prints it.
pub fn show(v: f64) -> String {
    if v.is_nan() {
        "n/a".into()
    } else {
        format!("{v:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::thin;

    #[test]
    fn thinning_keeps_both_ends_and_the_cap() {
        assert_eq!(thin(5, 10), vec![0, 1, 2, 3, 4]);
        let kept = thin(10_001, 1000);
        assert_eq!(kept.len(), 1000);
        assert_eq!((kept[0], kept[999]), (0, 10_000));
        assert!(kept.windows(2).all(|w| w[0] < w[1]));
    }
}
