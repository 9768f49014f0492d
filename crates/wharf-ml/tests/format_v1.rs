//! Artifacts written by format 1 (before model kinds) load and predict bit for bit, forever.
//!
//! The fixtures under `tests/fixtures/v1` were written by the last release that wrote format
//! 1, with the inputs and outputs it gave. Never regenerate them: they stand for files users
//! already have.

use std::path::{Path, PathBuf};

use serde_json::Value;
use wharf_core::artifact::{read_header, FORMAT_VERSION_1};
use wharf_core::kind::BUILTIN_ESTIMATOR_KIND;
use wharf_core::{Model, Predictions, Records, Row};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1")
}

fn bits(value: &Value) -> f64 {
    let text = value.as_str().expect("bits are hex strings");
    f64::from_bits(u64::from_str_radix(text, 16).expect("hex"))
}

fn check(name: &str) {
    wharf_ml::register();
    let dir = fixtures();
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json"))).expect("read")).expect("json");
    let path = dir.join(format!("{name}.wharf"));
    let bytes = std::fs::read(&path).expect("read artifact");
    assert_eq!(read_header(&bytes).expect("header").format_version, FORMAT_VERSION_1, "{name} is a format-1 file");
    let model = Model::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(model.kind_id(), BUILTIN_ESTIMATOR_KIND);
    let rows: Vec<Row> = serde_json::from_value(expected["inputs"].clone()).expect("rows");
    let records = Records::Rows(rows);
    let predictions = model.predict(&records).expect("predict");
    let want = expected["predictions"].as_array().expect("predictions");
    assert_eq!(predictions.len(), want.len(), "{name}: one prediction per input");
    match &predictions {
        Predictions::Values(values) => {
            for (i, (got, want)) in values.iter().zip(want).enumerate() {
                assert_eq!(got.to_bits(), bits(want).to_bits(), "{name}: value {i}");
            }
        }
        other => {
            for (i, want) in want.iter().enumerate() {
                assert_eq!(other.display(i), want.as_str().expect("label"), "{name}: prediction {i}");
            }
        }
    }
    match expected["probabilities"].as_array() {
        Some(rows) => {
            let proba = model.predict_proba(&records).expect("predict_proba");
            assert_eq!(proba.values.nrows(), rows.len(), "{name}: one probability row per input");
            for (i, row) in rows.iter().enumerate() {
                let row = row.as_array().expect("row");
                assert_eq!(proba.values.ncols(), row.len(), "{name}: classes");
                for (j, want) in row.iter().enumerate() {
                    assert_eq!(proba.values[(i, j)].to_bits(), bits(want).to_bits(), "{name}: P[{i}][{j}]");
                }
            }
        }
        None => assert!(model.predict_proba(&records).is_err(), "{name}: no probabilities"),
    }
    // Saved again, the model is written in the current format and reads back equal.
    let dir = tempfile::tempdir().expect("tempdir");
    let again = dir.path().join("again.wharf");
    model.save(&again).expect("save");
    assert_eq!(Model::load(&again).expect("load"), model, "{name}: format-2 round trip");
}

#[test]
fn logistic_binary() {
    check("logistic_binary");
}

#[test]
fn logistic_multiclass() {
    check("logistic_multi");
}

#[test]
fn decision_tree() {
    check("tree");
}

#[test]
fn random_forest() {
    check("random_forest");
    check("random_forest_lead");
}

#[test]
fn linear_regression() {
    check("linear");
}

#[test]
fn kmeans() {
    check("kmeans");
}
