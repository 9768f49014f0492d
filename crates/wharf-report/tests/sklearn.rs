//! The card's numbers against real scikit-learn on the same predictions: `roc_auc_score`,
//! `average_precision_score`, `brier_score_loss` and `confusion_matrix`, read back from the
//! rendered card (its `data-metric`/`data-value` rows and its confusion table), for a binary
//! model at the default and at a moved threshold, a tie-heavy tree, and a multiclass model
//! (one-vs-rest, macro).
//!
//! The Python comes from `WHARF_TEST_TREES_PYTHON` (`cargo xtask test` sets it to the venv
//! holding scikit-learn); without it the test says `skipped:`, and fails under
//! `WHARF_TEST_REQUIRE_BACKENDS=1` or `CI=true`.

use std::collections::BTreeMap;
use std::process::Command;

use roxmltree::{Document, ParsingOptions};
use serde_json::{json, Value};
use wharf_core::{Model, Records};
use wharf_ml::{datasets, Dataset, Trainer};
use wharf_report::{ModelReport, ReportOptions};

fn python() -> Option<String> {
    match std::env::var("WHARF_TEST_TREES_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            let required = std::env::var("WHARF_TEST_REQUIRE_BACKENDS").as_deref() == Ok("1")
                || std::env::var("CI").as_deref() == Ok("true");
            assert!(!required, "WHARF_TEST_TREES_PYTHON is not set but WHARF_TEST_REQUIRE_BACKENDS=1 or CI=true");
            eprintln!("skipped: WHARF_TEST_TREES_PYTHON is not set (cargo xtask test sets it)");
            None
        }
    }
}

/// scikit-learn's numbers for the labels and probabilities in the JSON on stdin.
const SCRIPT: &str = r#"
import json, sys
import numpy as np
import sklearn
from sklearn.metrics import roc_auc_score, average_precision_score, brier_score_loss, confusion_matrix
from sklearn.preprocessing import label_binarize
case = json.load(sys.stdin)
y = np.array(case["y"]); p = np.array(case["p"]); k = p.shape[1]
if k == 2:
    s = p[:, 1]
    out = {
        "roc_auc": roc_auc_score(y, s),
        "average_precision": average_precision_score(y, s),
        "brier": brier_score_loss(y, s),
        "confusion": confusion_matrix(y, (s >= case["threshold"]).astype(int), labels=[0, 1]).tolist(),
    }
else:
    out = {
        "roc_auc_ovr": roc_auc_score(y, p, multi_class="ovr", average="macro"),
        "average_precision": average_precision_score(label_binarize(y, classes=list(range(k))), p, average="macro"),
        "brier": brier_score_loss(y, p, labels=list(range(k))),
        "confusion": confusion_matrix(y, p.argmax(axis=1), labels=list(range(k))).tolist(),
    }
out["version"] = sklearn.__version__
print(json.dumps(out))
"#;

fn sklearn(python: &str, case: &Value) -> Value {
    use std::io::Write as _;
    let mut child = Command::new(python)
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start python");
    child.stdin.take().expect("stdin").write_all(case.to_string().as_bytes()).expect("write case");
    let out = child.wait_with_output().expect("python");
    assert!(out.status.success(), "scikit-learn failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json from python")
}

/// The card's holdout metrics (`data-value`, written with every digit) and confusion table.
fn read_card(html: &str) -> (BTreeMap<String, f64>, Vec<Vec<u64>>) {
    let doc = Document::parse_with_options(html, ParsingOptions { allow_dtd: true, ..ParsingOptions::default() })
        .expect("well-formed card");
    let table = doc.descendants().find(|n| n.attribute("id") == Some("holdout-metrics")).expect("metrics table");
    let metrics = table
        .descendants()
        .filter_map(|n| Some((n.attribute("data-metric")?.to_string(), n.attribute("data-value")?.parse().ok()?)))
        .collect();
    let confusion = doc.descendants().find(|n| n.attribute("id") == Some("confusion-matrix")).expect("confusion table");
    let rows = confusion
        .descendants()
        .filter(|n| n.has_tag_name("tr"))
        .filter(|tr| tr.children().any(|c| c.has_tag_name("td")))
        .map(|tr| {
            tr.children().filter(|c| c.has_tag_name("td")).map(|td| td.text().unwrap_or("").parse().unwrap()).collect()
        })
        .collect();
    (metrics, rows)
}

fn compare(python: &str, label: &str, model: &Model, holdout: &Dataset, threshold: Option<f64>) {
    let options = ReportOptions { threshold, ..ReportOptions::default() };
    let report = ModelReport::builder(model).holdout(holdout).options(options).build().expect("report");
    let (metrics, confusion) = read_card(&report.render());
    assert_eq!(Some(confusion.as_slice()), report.confusion_matrix(), "{label}: the table is the matrix");

    let proba = model.predict_proba(&Records::Columns(holdout.features.clone())).expect("proba");
    let (name, column) = holdout.target.as_ref().expect("target");
    let y = wharf_ml::metrics::class_indices(model.classes(), name, column).expect("labels");
    let p: Vec<Vec<f64>> = proba.values.rows().into_iter().map(|r| r.to_vec()).collect();
    let theirs = sklearn(python, &json!({ "y": y, "p": p, "threshold": threshold.unwrap_or(0.5) }));
    eprintln!("{label}: scikit-learn {}", theirs["version"]);

    let keys: &[&str] = if model.classes().len() == 2 {
        &["roc_auc", "average_precision", "brier"]
    } else {
        &["roc_auc_ovr", "average_precision", "brier"]
    };
    for key in keys {
        let ours = metrics[*key];
        let want = theirs[*key].as_f64().expect("a number");
        // Same definitions, summed in a different order: equal to a few ulps.
        assert!((ours - want).abs() <= 1e-12 * want.abs().max(1.0), "{label} {key}: card {ours}, scikit-learn {want}");
    }
    let want: Vec<Vec<u64>> = serde_json::from_value(theirs["confusion"].clone()).expect("matrix");
    assert_eq!(confusion, want, "{label}: confusion matrix");
}

#[test]
fn card_metrics_equal_scikit_learn() {
    let Some(python) = python() else { return };
    let (train, test) = datasets::breast_cancer().split(0.3, 11).expect("split");
    let logistic = Trainer::logistic_regression().fit(&train).expect("fit");
    compare(&python, "logistic", &logistic, &test, None);
    compare(&python, "logistic at 0.3", &logistic, &test, Some(0.3));
    // A shallow tree gives few distinct scores: ties everywhere in the curves.
    let tree = Trainer::decision_tree().max_depth(Some(3)).fit(&train).expect("fit");
    compare(&python, "tree", &tree, &test, Some(0.5));
    let boosted = Trainer::gradient_boosting().trees(20).fit(&train).expect("fit");
    compare(&python, "gbdt", &boosted, &test, None);

    let (train, test) = datasets::iris().split(0.4, 3).expect("split");
    let multi = Trainer::logistic_regression().fit(&train).expect("fit");
    compare(&python, "iris logistic", &multi, &test, None);
    let multi_tree = Trainer::decision_tree().max_depth(Some(2)).fit(&train).expect("fit");
    compare(&python, "iris tree", &multi_tree, &test, None);
}
