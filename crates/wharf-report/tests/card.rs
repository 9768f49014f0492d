//! The card as a reader's program sees it: parsed as XML, each expected plot found by its
//! `data-plot`, and its `data-points` checked twice — against what the SVG really draws (data
//! are the palette's colours; reference lines are grey) and against a count worked out here
//! from the predictions.

use std::collections::{BTreeMap, BTreeSet};

use roxmltree::{Document, Node, ParsingOptions};
use wharf_core::{FileTracker, Records, TrackerPort, WharfError};
use wharf_ml::{datasets, Dataset, Trainer};
use wharf_report::{ModelReport, ReportOptions};

const PALETTE: [&str; 8] = ["#1F77B4", "#FF7F0E", "#2CA02C", "#D62728", "#9467BD", "#8C564B", "#E377C2", "#7F7F7F"];

/// The card as XML (its `<!DOCTYPE html>` is a DTD to an XML parser).
fn parse(html: &str) -> Result<Document<'_>, roxmltree::Error> {
    Document::parse_with_options(html, ParsingOptions { allow_dtd: true, ..ParsingOptions::default() })
}

/// Every plot in the card: id → (data-points, points counted in its SVG).
fn plots(html: &str) -> BTreeMap<String, (usize, usize)> {
    let doc = parse(html).unwrap_or_else(|e| panic!("the card is not well-formed: {e}"));
    assert!(!html.contains("<script"), "the card runs no script");
    for node in doc.descendants() {
        for attr in node.attributes() {
            let v = attr.value();
            assert!(
                !(matches!(attr.name(), "src" | "href") && (v.starts_with("http") || v.starts_with("//"))),
                "the card fetches nothing: {}={v}",
                attr.name()
            );
        }
    }
    let mut out = BTreeMap::new();
    for fig in doc.descendants().filter(|n| n.has_tag_name("figure")) {
        let id = fig.attribute("data-plot").expect("a figure names its plot").to_string();
        let points: usize = fig.attribute("data-points").expect("a figure counts its points").parse().unwrap();
        out.insert(id, (points, drawn(fig)));
    }
    out
}

/// Data points in a figure's SVG: vertices of palette-coloured polylines, palette-coloured
/// circles and palette-filled rectangles.
fn drawn(fig: Node<'_, '_>) -> usize {
    let svg = fig.descendants().find(|n| n.has_tag_name("svg")).expect("a plot holds an svg");
    let data = |n: &Node<'_, '_>, attr: &str| n.attribute(attr).is_some_and(|c| PALETTE.contains(&c));
    let mut count = 0;
    for n in svg.descendants() {
        match n.tag_name().name() {
            "polyline" if data(&n, "stroke") => {
                count += n.attribute("points").unwrap_or("").split_whitespace().count();
            }
            "circle" if data(&n, "fill") => count += 1,
            "rect" if data(&n, "fill") => count += 1,
            _ => {}
        }
    }
    count
}

fn missing(html: &str) -> BTreeSet<String> {
    let doc = parse(html).unwrap();
    doc.descendants().filter_map(|n| n.attribute("data-missing").map(str::to_string)).collect()
}

fn check(plots: &BTreeMap<String, (usize, usize)>, id: &str, expected: usize) {
    let (said, seen) = plots.get(id).unwrap_or_else(|| panic!("no plot '{id}' in {:?}", plots.keys()));
    assert_eq!(*said, *seen, "{id}: data-points must be what the SVG draws");
    assert_eq!(*said, expected, "{id}: points");
}

fn split(data: &Dataset) -> (Dataset, Dataset) {
    data.split(0.3, 7).unwrap()
}

fn distinct(values: impl Iterator<Item = f64>) -> usize {
    values.map(f64::to_bits).collect::<BTreeSet<_>>().len()
}

#[test]
fn binary_classifier_card_has_every_plot_with_its_points() {
    let (train, test) = split(&datasets::breast_cancer());
    let model = Trainer::logistic_regression().fit(&train).unwrap();
    let report = ModelReport::builder(&model).name("cancer").holdout(&test).build().unwrap();
    let html = report.render();
    let plots = plots(&html);

    let proba = model.predict_proba(&Records::Columns(test.features.clone())).unwrap();
    let scores: Vec<f64> = proba.values.column(1).to_vec();
    let n_features = model.signature().features.len();
    // ROC: one vertex per distinct score, plus the origin.
    check(&plots, "roc", distinct(scores.iter().copied()) + 1);
    // Precision–recall: one per distinct score, plus the (0, 1) end.
    check(&plots, "pr", distinct(scores.iter().copied()) + 1);
    // Reliability: one per non-empty bin of ten.
    let bins = distinct(scores.iter().map(|s| (1..10).filter(|j| *j as f64 * 0.1 < *s).count() as f64));
    check(&plots, "calibration", bins);
    check(&plots, "confusion", 4);
    check(&plots, "threshold", 3 * 101);
    check(&plots, "permutation-importance", n_features.min(25));
    assert!(missing(&html).contains("gain-importance"), "a logistic regression has no gain to show");
    assert!(missing(&html).contains("learning-curve"));
    for key in ["roc_auc", "average_precision", "brier", "accuracy", "threshold"] {
        assert!(html.contains(&format!("data-metric=\"{key}\"")), "holdout metric {key}");
    }
    assert!(html.contains(&model.metadata().data_fingerprint), "the training data's fingerprint");
}

#[test]
fn multiclass_curves_are_one_against_the_rest() {
    let (train, test) = split(&datasets::iris());
    let model = Trainer::decision_tree().max_depth(Some(3)).fit(&train).unwrap();
    let report = ModelReport::builder(&model).holdout(&test).build().unwrap();
    let plots = plots(&report.render());
    let proba = model.predict_proba(&Records::Columns(test.features.clone())).unwrap();
    let roc: usize = (0..3).map(|c| distinct(proba.values.column(c).iter().copied()) + 1).sum();
    check(&plots, "roc", roc);
    check(&plots, "confusion", 9);
    assert!(!plots.contains_key("threshold"), "no single threshold for three classes");
    assert!(report.holdout_metrics().contains_key("roc_auc_ovr"));
}

#[test]
fn regression_card_draws_residuals() {
    let (train, test) = split(&datasets::diabetes());
    let model = Trainer::linear_regression().fit(&train).unwrap();
    let html = ModelReport::builder(&model).holdout(&test).build().unwrap().render();
    let plots = plots(&html);
    check(&plots, "predicted-actual", test.n_rows());
    check(&plots, "residuals-predicted", test.n_rows());
    check(&plots, "residual-histogram", 20);
    check(&plots, "permutation-importance", model.signature().features.len().min(25));
    assert!(!plots.contains_key("roc"));
}

#[test]
fn boosted_trees_show_gain_and_the_runs_learning_curve() {
    let (train, test) = split(&datasets::breast_cancer());
    let model = Trainer::gradient_boosting().trees(12).fit(&train).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tracker = FileTracker::new(dir.path());
    let run = tracker.begin_run(Some("boost")).unwrap();
    for step in 0..12u64 {
        let m = BTreeMap::from([("train_loss".to_string(), 1.0 / (step + 1) as f64)]);
        tracker.log_metrics(&run.id, &m, Some(step)).unwrap();
    }
    // A metric logged once is not a curve.
    tracker.log_metrics(&run.id, &BTreeMap::from([("holdout_auc".to_string(), 0.9)]), None).unwrap();
    let record = tracker.get_run(&run.id).unwrap();
    let html = ModelReport::builder(&model).holdout(&test).run(record).build().unwrap().render();
    let plots = plots(&html);
    check(&plots, "learning-curve", 12);
    let gain = model.metadata().tags["feature_importance_gain"].split(", ").count();
    check(&plots, "gain-importance", gain.min(25));
}

#[test]
fn missing_holdout_and_history_are_messages_not_failures() {
    let model = Trainer::logistic_regression().fit(&datasets::breast_cancer()).unwrap();
    let report = ModelReport::builder(&model).run_unavailable("the tracker keeps no runs").build().unwrap();
    let html = report.render();
    assert!(plots(&html).is_empty());
    let missing = missing(&html);
    for id in [
        "holdout-metrics",
        "roc",
        "pr",
        "calibration",
        "confusion",
        "threshold",
        "permutation-importance",
        "learning-curve",
    ] {
        assert!(missing.contains(id), "a message where {id} would be: {missing:?}");
    }
    assert!(html.contains("the tracker keeps no runs"));
}

#[test]
fn bad_input_is_a_clear_error() {
    let (train, test) = split(&datasets::diabetes());
    let regressor = Trainer::linear_regression().fit(&train).unwrap();
    let err = ModelReport::builder(&regressor).holdout(&test).threshold(0.3).build().unwrap_err();
    assert!(matches!(&err, WharfError::InvalidInput { path, .. } if path == "threshold"), "{err}");
    assert!(err.to_string().contains("classification"), "{err}");

    let (train, mut test) = split(&datasets::breast_cancer());
    let classifier = Trainer::logistic_regression().fit(&train).unwrap();
    let gone = classifier.signature().features[2].name.clone();
    test.features.remove(&gone);
    let err = ModelReport::builder(&classifier).holdout(&test).build().unwrap_err();
    assert!(matches!(&err, WharfError::InvalidInput { path, .. } if *path == gone), "{err}");
    assert!(err.to_string().contains(&format!("'{gone}'")), "{err}");

    let err = ModelReport::builder(&classifier).threshold(1.5).build().unwrap_err();
    assert!(err.to_string().contains("[0, 1]"), "{err}");

    let mut unlabelled = split(&datasets::breast_cancer()).1;
    unlabelled.target = None;
    let err = ModelReport::builder(&classifier).holdout(&unlabelled).build().unwrap_err();
    assert!(err.to_string().contains("target"), "{err}");
}

#[test]
fn the_threshold_moves_the_confusion_matrix() {
    let (train, test) = split(&datasets::breast_cancer());
    let model = Trainer::logistic_regression().fit(&train).unwrap();
    let at = |t: f64| {
        let options = ReportOptions { threshold: Some(t), ..ReportOptions::default() };
        ModelReport::builder(&model).holdout(&test).options(options).build().unwrap().holdout_metrics()["recall"]
    };
    assert!(at(0.05) >= at(0.95), "a lower threshold calls more rows positive");
    assert_eq!(at(0.0), 1.0, "threshold 0 calls every row positive");
}

#[test]
fn write_is_atomic_and_complete() {
    let model = Trainer::logistic_regression().fit(&datasets::breast_cancer()).unwrap();
    let report = ModelReport::builder(&model).build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.html");
    report.write(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), report.render());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
}

#[test]
fn a_large_holdout_is_thinned_and_the_count_stays_true() {
    use wharf_core::{Column, Frame};
    let n: usize = 24_000;
    let x: Vec<f64> = (0..n).map(|i| ((i * 7919) % n) as f64 / n as f64).collect();
    let y: Vec<Option<String>> = x
        .iter()
        .enumerate()
        .map(|(i, v)| Some(if (v + (i % 5) as f64 * 0.1) > 0.7 { "yes" } else { "no" }.into()))
        .collect();
    let z: Vec<f64> = (0..n).map(|i| ((i * 104_729) % 997) as f64).collect();
    let frame = Frame::from_columns(vec![
        ("x".into(), Column::Numeric(x)),
        ("z".into(), Column::Numeric(z)),
        ("y".into(), Column::Text(y)),
    ])
    .unwrap();
    let options = wharf_ml::CsvOptions { target: Some("y".into()), ..Default::default() };
    let data = Dataset::from_frame("synthetic", frame, &options).unwrap();
    let (train, test) = data.split(0.5, 1).unwrap();
    let model = Trainer::logistic_regression().fit(&train).unwrap();
    let html = ModelReport::builder(&model).holdout(&test).build().unwrap().render();
    let plots = plots(&html);
    let (said, seen) = plots["roc"];
    assert_eq!(said, seen);
    assert_eq!(said, 1000, "a curve of thousands of distinct scores is drawn with 1000 points");
    assert!(html.contains("thinned"), "the caption says so");
    assert!(
        html.contains("on a seeded sample of 10000 of the 12000 holdout rows"),
        "permutation importance samples a large holdout and says so"
    );
}
