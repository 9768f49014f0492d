//! The peers' scikit-learn models imported into Wharf reproduce scikit-learn's
//! `predict_proba` on all 100,000 score rows: logistic within 1e-9, the forest exactly.
//!
//! The exports are generated, not committed: `cargo xtask test` writes them with
//! `xtask/python/sklearn_exports.py` (scikit-learn pinned) and sets
//! `WHARF_TEST_SKLEARN_EXPORTS` to their directory; `PEERS_DATA`, where the peer benchmarks
//! write the same files, works too. Without either the tests print `skipped:` and pass,
//! unless `WHARF_TEST_REQUIRE_BACKENDS=1`, where missing data fails them.

use std::path::PathBuf;

use ndarray::Array2;
use wharf_core::{Model, Records};
use wharf_ml::import::{sklearn_forest_json, sklearn_logistic_json};

fn peers_data() -> Option<PathBuf> {
    let needed = [
        "logistic.json",
        "rf_trees.json",
        "score.csv",
        "logistic_expected_proba.csv",
        "rf_expected_proba.csv",
        "body_100_expected_logistic.json",
    ];
    let dir = std::env::var_os("WHARF_TEST_SKLEARN_EXPORTS").or_else(|| std::env::var_os("PEERS_DATA"));
    let message = match dir.map(PathBuf::from) {
        Some(dir) if needed.iter().all(|f| dir.join(f).is_file()) => return Some(dir),
        Some(dir) => format!("the scikit-learn exports are not complete in {}", dir.display()),
        None => "WHARF_TEST_SKLEARN_EXPORTS is not set".to_string(),
    };
    let message = format!("{message} (generate them with xtask/python/sklearn_exports.py, or run cargo xtask test)");
    if std::env::var("WHARF_TEST_REQUIRE_BACKENDS").as_deref() == Ok("1") {
        panic!("{message}");
    }
    println!("skipped: {message}");
    None
}

/// `score.csv` (header f0..f19,y) as a matrix of the features.
fn score_rows(dir: &std::path::Path) -> Array2<f64> {
    let text = std::fs::read_to_string(dir.join("score.csv")).expect("score.csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let width = header.iter().filter(|h| h.starts_with('f')).count();
    let mut data = Vec::new();
    let mut n = 0;
    for line in lines.filter(|l| !l.is_empty()) {
        data.extend(line.split(',').take(width).map(|v| v.parse::<f64>().expect("number")));
        n += 1;
    }
    Array2::from_shape_vec((n, width), data).expect("rectangular")
}

fn expected(dir: &std::path::Path, file: &str) -> Vec<f64> {
    let text = std::fs::read_to_string(dir.join(file)).expect("expected file");
    text.lines().skip(1).filter(|l| !l.is_empty()).map(|l| l.parse::<f64>().expect("number")).collect()
}

fn p1(model: &Model, x: &Array2<f64>) -> Vec<f64> {
    let p = model.predict_proba(&Records::Matrix(x.clone().into())).expect("predict_proba");
    let j = model.classes().iter().position(|c| c == "1").expect("class 1");
    p.values.column(j).to_vec()
}

#[test]
fn logistic_matches_sklearn_within_1e_9() {
    let Some(dir) = peers_data() else { return };
    let model = sklearn_logistic_json(&std::fs::read_to_string(dir.join("logistic.json")).unwrap()).unwrap();
    let x = score_rows(&dir);
    let want = expected(&dir, "logistic_expected_proba.csv");
    assert_eq!(want.len(), x.nrows());
    let got = p1(&model, &x);
    let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    println!("logistic: {} rows, max |Δ P(y=1)| = {worst:e}", want.len());
    assert!(worst <= 1e-9, "max deviation {worst:e}");
    // The HTTP body reference the benchmark checks against.
    let body: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("body_100_expected_logistic.json")).unwrap()).unwrap();
    for (i, v) in body["p1"].as_array().unwrap().iter().enumerate() {
        assert!((v.as_f64().unwrap() - got[i]).abs() <= 1e-9);
    }
}

#[test]
fn forest_matches_sklearn_exactly() {
    let Some(dir) = peers_data() else { return };
    let model = sklearn_forest_json(&std::fs::read_to_string(dir.join("rf_trees.json")).unwrap()).unwrap();
    let x = score_rows(&dir);
    let want = expected(&dir, "rf_expected_proba.csv");
    assert_eq!(want.len(), x.nrows());
    let got = p1(&model, &x);
    let mismatches: Vec<usize> = (0..want.len()).filter(|&i| got[i] != want[i]).collect();
    println!("forest: {} rows, {} not bit-identical", want.len(), mismatches.len());
    assert!(mismatches.is_empty(), "first mismatches: {:?}", &mismatches[..mismatches.len().min(5)]);
    // Survives the artifact round trip unchanged.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("rf.wharf");
    model.save(&path).unwrap();
    assert_eq!(Model::load(&path).unwrap(), model);
}
