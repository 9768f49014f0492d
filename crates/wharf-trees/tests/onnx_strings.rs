//! Pipelines with string columns (features `kind` and `onnx`): scikit-learn
//! `ColumnTransformer`s of `StandardScaler` on two float columns and `OneHotEncoder` /
//! `OrdinalEncoder` on two string columns, exported by skl2onnx with one graph input per
//! column (or per group of columns of one type) at test time
//! (`tests/fixtures/generate_onnx.py`, its `string_cases`), imported as Wharf models and
//! scored from JSON records holding the strings, through the model kind's one scoring path.
//!
//! What must hold, on 12,000 rows per case (5% of them with a colour and 5% with a size no
//! encoder knows, except for the `handle_unknown="error"` case; for tree models, 5% of the
//! numbers missing): every probability within
//! 1e-6 relative of ONNX Runtime's (absolute 1e-9 near zero), as in `tests/onnx.rs`, and
//! bit for bit for tree models; the string columns are categorical features whose levels are
//! the encoders' strings; the answers survive save and load; an unknown string is refused
//! where ONNX Runtime fails on it (`handle_unknown="error"`).
//!
//! The data directory is `$WHARF_TEST_TREES_DATA/onnx`; without it the test says
//! `skipped:`, and fails under `WHARF_TEST_REQUIRE_BACKENDS=1` or `CI=true`.

use serde::Deserialize;
use wharf_core::{FeatureKind, Model, Records, Row};
use wharf_trees::model as trees_model;

mod common;
use common::read_f64;

#[derive(Deserialize)]
struct Manifest {
    string_cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    model: String,
    rows: usize,
    outputs: usize,
    /// The scored rows hold strings no encoder knows.
    unknown: bool,
    /// How many numbers of the scored rows are missing (JSON `null`).
    missing: usize,
    /// The training strings of `color` and `size`.
    levels: std::collections::BTreeMap<String, Vec<String>>,
}

#[test]
fn string_pipelines_score_json_records_as_onnx_runtime_does() {
    let Some(dir) = common::data_dir() else { return };
    let dir = dir.join("onnx");
    let text = std::fs::read_to_string(dir.join("manifest.json")).expect("onnx/manifest.json");
    let manifest: Manifest = serde_json::from_str(&text).expect("manifest with string_cases");
    assert!(manifest.string_cases.len() >= 6, "expected the full set of string cases");
    let saved = tempfile::tempdir().expect("tempdir");
    let mut failures = Vec::new();
    for case in &manifest.string_cases {
        let model = trees_model::onnx(dir.join(&case.model)).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        // Two float columns, then the two string columns as categorical features.
        let kinds: Vec<&FeatureKind> = model.signature().features.iter().map(|f| &f.kind).collect();
        assert!(matches!(kinds[..2], [FeatureKind::Numeric, FeatureKind::Numeric]), "{}: {kinds:?}", case.name);
        for (kind, column) in kinds[2..].iter().zip(["color", "size"]) {
            match kind {
                FeatureKind::Categorical { levels } => assert_eq!(levels, &case.levels[column], "{}", case.name),
                other => panic!("{}: {column} is {other:?}", case.name),
            }
        }
        let text = std::fs::read_to_string(dir.join(format!("{}.records.json", case.name))).expect("records");
        let rows: Vec<Row> = serde_json::from_str(&text).expect("records json");
        assert_eq!(rows.len(), case.rows);
        let nulls = rows.iter().flat_map(|r| r.values()).filter(|v| v.is_null()).count();
        assert_eq!(nulls, case.missing, "{}: missing numbers", case.name);
        assert!(case.rows >= 10_000);
        let records = Records::Rows(rows.clone());
        let proba = model.predict_proba(&records).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(proba.values.ncols(), case.outputs, "{}", case.name);
        let want = read_f64(&dir.join(format!("{}.out.f64", case.name)));
        let ours: Vec<f64> = proba.values.iter().copied().collect();
        let (differ, worst) = common::compare(&ours, &want);
        let op = model.metadata().params.get("operator").cloned().unwrap_or_default();
        eprintln!(
            "{:<34} {:<24} {differ} of {} values not bit-identical, worst relative error {worst:.2e}",
            case.name,
            op,
            ours.len()
        );
        if worst > 1e-6 {
            failures.push(format!("{}: relative error {worst:.2e} over 1e-6", case.name));
        }
        if op.starts_with("TreeEnsemble") && differ > 0 {
            failures.push(format!("{}: {differ} values not bit-identical", case.name));
        }
        if case.unknown {
            let purple = serde_json::Value::from("purple");
            let unknown = rows.iter().filter(|r| r.get("color").or(r.get("cat_0")) == Some(&purple));
            assert!(unknown.count() > 100, "{}: the rows hold unknown colours", case.name);
        }
        // Saved and loaded, the model gives the same answers.
        let path = saved.path().join(format!("{}.wharf", case.name));
        model.save(&path).expect("save");
        let loaded = Model::load(&path).expect("load");
        let first = Records::Rows(rows[..500].to_vec());
        let again = loaded.predict_proba(&first).expect("proba after load");
        assert_eq!(again.values, proba.values.slice(ndarray::s![..500, ..]), "{}", case.name);
        // Where ONNX Runtime fails on an unknown string, Wharf refuses the record, naming it.
        let mut row = rows[0].clone();
        let column = if row.contains_key("color") { "color" } else { "cat_0" };
        row.insert(column.into(), "purple".into());
        let result = model.predict_proba(&Records::Rows(vec![row]));
        if case.unknown || !case.name.contains("strict") {
            result.unwrap_or_else(|e| panic!("{}: an unknown colour scores: {e}", case.name));
        } else {
            let e = result.expect_err("handle_unknown='error' refuses an unknown colour").to_string();
            assert!(e.contains(&format!("records[0].{column}")) && e.contains("unknown level 'purple'"), "{e}");
        }
    }
    assert!(failures.is_empty(), "disagreements with ONNX Runtime:\n{}", failures.join("\n"));
}
