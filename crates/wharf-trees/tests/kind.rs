//! Imported ensembles as Wharf models (feature `kind`): the signature comes from the file and
//! the options, the model saves and loads as a `.wharf` artifact, scores every shape of
//! records like the bare ensemble, and a hostile artifact is refused at load.
//!
//! The first tests use the small models the libraries wrote into `tests/fixtures/seed_*` (and
//! single-output models cut from them); the last compares every model of the fixture script
//! (`WHARF_TEST_TREES_DATA`) through the model kind, after a save and a load, with the
//! library's own predictions.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ndarray::Array2;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use wharf_core::kind::{self, ModelKind};
use wharf_core::{
    artifact, ArtifactError, Column, Frame, Model, Predictions, Probabilities, Records, Result, Row, Signature, Task,
    WharfError,
};
use wharf_trees::model::{self as trees_model, ImportOptions, TreeEnsemble, KIND_ID};
use wharf_trees::{lightgbm, xgboost, EnsembleSpec, Link, Node, Semantics, SourceFormat, Tree};

mod common;
use common::{data_dir, read_f64};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// 40 rows of 20 columns: normal-ish values, NaNs, zeros, category codes in columns 7 and 8.
fn rows() -> Vec<f64> {
    (0..40 * 20)
        .map(|k| {
            let (i, j) = (k / 20, k % 20);
            match (i * 7 + j * 3) % 11 {
                0 => f64::NAN,
                1 => 0.0,
                _ if j == 7 || j == 8 => ((i * 5 + j) % 12) as f64,
                r => (r as f64 - 5.0) * 0.37 + (i as f64) * 0.01,
            }
        })
        .collect()
}

fn matrix(x: &[f64], width: usize) -> Records<'static> {
    Records::Matrix(Array2::from_shape_vec((x.len() / width, width), x.to_vec()).expect("shape").into())
}

fn json_rows(x: &[f64], names: &[&str]) -> Records<'static> {
    Records::Rows(
        x.chunks(names.len())
            .map(|r| {
                names
                    .iter()
                    .zip(r)
                    .map(|(n, v)| (n.to_string(), serde_json::Number::from_f64(*v).map_or(Value::Null, Value::Number)))
                    .collect::<Row>()
            })
            .collect(),
    )
}

/// Columns as CSV text would give them: the even columns as text (missing = empty), the odd
/// ones as numbers.
fn columns(x: &[f64], names: &[&str]) -> Records<'static> {
    let width = names.len();
    let n = x.len() / width;
    let mut frame = Frame::new();
    for (j, name) in names.iter().enumerate() {
        let values: Vec<f64> = (0..n).map(|i| x[i * width + j]).collect();
        let column = if j % 2 == 0 {
            Column::Text(values.iter().map(|v| Some(if v.is_nan() { String::new() } else { format!("{v}") })).collect())
        } else {
            Column::Numeric(values)
        };
        frame.push(*name, column).expect("column");
    }
    Records::Columns(frame)
}

fn names(model: &Model) -> Vec<&str> {
    model.signature().feature_names().collect()
}

#[test]
fn an_xgboost_file_becomes_a_model_with_its_signature() {
    let model = trees_model::xgboost(fixture("seed_xgboost.json")).expect("import");
    assert_eq!(model.kind_id(), KIND_ID);
    assert_eq!(model.task(), Task::Classification);
    assert_eq!(model.classes(), ["0", "1", "2"]);
    assert_eq!(names(&model), (0..20).map(|i| format!("f{i}")).collect::<Vec<_>>());
    let meta = model.metadata();
    assert_eq!(meta.algorithm, "xgboost");
    assert_eq!(meta.params["objective"], "multi:softprob");
    assert_eq!(meta.params["categorical_features"], "f7,f8");
    assert_eq!(meta.tags["imported"], "XGBoost");
    assert_eq!(meta.tags["objective"], "multi:softprob");
    assert_eq!(meta.tags["categorical_features"], "f7,f8");
    let kind = model.kind().as_any().downcast_ref::<TreeEnsemble>().expect("a tree ensemble");
    assert_eq!(kind.format(), SourceFormat::XGBoostJson);
    assert_eq!(kind.categorical_features(), [7, 8]);
    // The sample input is a real input.
    let p = model.predict_proba(&Records::Rows(meta.sample_input.clone())).expect("sample input");
    assert_eq!(p.values.dim(), (1, 3));
}

#[test]
fn a_lightgbm_file_becomes_a_model_with_its_signature() {
    let options = ImportOptions::new().classes(["low", "mid", "high"]);
    let model = trees_model::lightgbm_with(fixture("seed_lightgbm.txt"), &options).expect("import");
    assert_eq!(model.classes(), ["low", "mid", "high"]);
    assert_eq!(names(&model)[19], "Column_19");
    assert_eq!(model.metadata().algorithm, "lightgbm");
    assert_eq!(model.metadata().params["objective"], "multiclass");
    assert_eq!(model.metadata().params["categorical_features"], "Column_7,Column_8");
}

/// The model kind scores exactly what the bare ensemble does, for every shape of records and
/// after a save and a load; labels are the arg-max of the probabilities.
#[test]
fn scores_equal_the_ensemble_for_every_shape_and_survive_save_and_load() {
    for (file, bare) in [
        ("seed_xgboost.json", xgboost::read(&fixture("seed_xgboost.json")).expect("bare")),
        ("seed_lightgbm.txt", lightgbm::read(&fixture("seed_lightgbm.txt")).expect("bare")),
    ] {
        let features: Vec<String> = (0..20).map(|i| format!("x{i}")).collect();
        let options = ImportOptions::new().features(features.clone()).classes(["a", "b", "c"]);
        let model = if file.ends_with(".json") {
            trees_model::xgboost_with(fixture(file), &options)
        } else {
            trees_model::lightgbm_with(fixture(file), &options)
        }
        .expect("import");
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("m.wharf");
        model.save(&path).expect("save");
        let loaded = Model::load(&path).expect("load");
        assert_eq!(loaded, model, "{file}: a loaded model equals the saved one");

        let x = rows();
        let mut want = vec![0.0; 40 * 3];
        bare.ensemble.predict(&x, 20, &mut want).expect("bare predict");
        let names: Vec<&str> = features.iter().map(String::as_str).collect();
        for records in [matrix(&x, 20), json_rows(&x, &names), columns(&x, &names)] {
            let p = loaded.predict_proba(&records).expect("predict_proba");
            assert_eq!(p.classes, ["a", "b", "c"]);
            let got: Vec<f64> = p.values.iter().copied().collect();
            assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "{file}: bit for bit");
            let Predictions::Classes { indices, classes } = loaded.predict(&records).expect("predict") else {
                panic!("classes expected")
            };
            assert_eq!(classes, ["a", "b", "c"]);
            assert_eq!(indices, Probabilities { classes: vec![], values: p.values }.argmax());
        }
        // One row goes through the single-row path and gives the batch's answer.
        let one = loaded.predict_proba(&matrix(&x[20..40], 20)).expect("one row");
        assert_eq!(one.values.iter().copied().collect::<Vec<_>>(), want[3..6]);
    }
}

/// The committed three-class XGBoost model cut down to a single-output one (its class-0
/// trees) with another objective: a binary classifier or a regressor, written to `dir`.
fn single_output_xgboost(dir: &Path, objective: &str, base_score: &str) -> PathBuf {
    let mut doc: Value = serde_json::from_str(include_str!("fixtures/seed_xgboost.json")).expect("seed");
    let learner = &mut doc["learner"];
    learner["objective"] = json!({ "name": objective });
    learner["learner_model_param"]["num_class"] = json!("0");
    learner["learner_model_param"]["base_score"] = json!(base_score);
    let model = &mut learner["gradient_booster"]["model"];
    let trees = model["trees"].as_array().expect("trees");
    let kept = json!([trees[0].clone(), trees[3].clone()]);
    model["trees"] = kept;
    model["tree_info"] = json!([0, 0]);
    model["iteration_indptr"] = json!([0, 1, 2]);
    model["gbtree_model_param"]["num_trees"] = json!("2");
    let path = dir.join(format!("{}.json", objective.replace(':', "_")));
    std::fs::write(&path, doc.to_string()).expect("write");
    path
}

/// A binary classifier's one output is `P(classes[1])`: the probabilities are `1 - p` and
/// `p`, and the label is the second class exactly when `p > 0.5`.
#[test]
fn a_binary_model_gives_two_probability_columns_and_a_regressor_values() {
    let dir = tempfile::tempdir().expect("dir");
    let file = single_output_xgboost(dir.path(), "binary:logistic", "[5E-1]");
    let bare = xgboost::read(&file).expect("bare");
    assert_eq!(bare.ensemble.n_groups(), 1);
    let model = trees_model::xgboost_with(&file, &ImportOptions::new().classes(["no", "yes"])).expect("import");
    let path = dir.path().join("binary.wharf");
    model.save(&path).expect("save");
    let model = Model::load(&path).expect("load");
    let x = rows();
    let mut p = vec![0.0; 40];
    bare.ensemble.predict(&x, 20, &mut p).expect("bare predict");
    assert!(p.iter().any(|p| *p > 0.5) && p.iter().any(|p| *p < 0.5), "both classes occur: {p:?}");
    let proba = model.predict_proba(&matrix(&x, 20)).expect("predict_proba");
    assert_eq!(proba.classes, ["no", "yes"]);
    let Predictions::Classes { indices, .. } = model.predict(&matrix(&x, 20)).expect("predict") else {
        panic!("classes expected")
    };
    for (i, p) in p.iter().enumerate() {
        assert_eq!(proba.values[(i, 1)].to_bits(), p.to_bits(), "row {i}");
        assert_eq!(proba.values[(i, 0)], 1.0 - p, "row {i}");
        assert_eq!(indices[i], u32::from(*p > 0.5), "row {i}");
    }
    let e = trees_model::xgboost_with(&file, &ImportOptions::new().classes(["yes"])).expect_err("one label");
    assert!(matches!(e, WharfError::InvalidInput { ref path, .. } if path == "classes"), "{e}");

    let file = single_output_xgboost(dir.path(), "reg:squarederror", "[5E-1]");
    let bare = xgboost::read(&file).expect("bare");
    let model = trees_model::xgboost(&file).expect("import");
    assert_eq!(model.task(), Task::Regression);
    assert!(model.classes().is_empty());
    let mut want = vec![0.0; 40];
    bare.ensemble.predict(&x, 20, &mut want).expect("bare predict");
    assert_eq!(model.predict(&matrix(&x, 20)).expect("predict"), Predictions::Values(want));
    assert!(matches!(model.predict_proba(&matrix(&x, 20)), Err(WharfError::Unsupported(_))));
    let e = trees_model::xgboost_with(&file, &ImportOptions::new().classes(["a", "b"])).expect_err("a regressor");
    assert!(e.to_string().contains("regressor"), "{e}");
}

#[test]
fn records_that_do_not_fit_are_refused_naming_the_field() {
    let model = trees_model::xgboost(fixture("seed_xgboost.json")).expect("import");
    let path_of = |e: WharfError| match e {
        WharfError::SchemaMismatch { path, .. } | WharfError::InvalidInput { path, .. } => path,
        other => panic!("expected a schema error, got {other}"),
    };
    let mut row: Row = (0..20).map(|i| (format!("f{i}"), json!(1.0))).collect();
    row.insert("f3".into(), json!("high"));
    assert_eq!(path_of(model.predict(&Records::Rows(vec![row.clone()])).unwrap_err()), "records[0].f3");
    row.remove("f3");
    assert_eq!(path_of(model.validate(&Records::Rows(vec![row.clone()])).unwrap_err()), "records[0].f3");
    row.insert("f3".into(), Value::Null);
    row.insert("typo".into(), json!(1));
    assert_eq!(path_of(model.validate(&Records::Rows(vec![row])).unwrap_err()), "records[0].typo");
    let narrow = Records::Matrix(Array2::zeros((2, 19)).into());
    assert_eq!(path_of(model.predict_proba(&narrow).unwrap_err()), "records");
    let mut frame = Frame::new();
    for i in 0..20 {
        let text = if i == 4 { "abc" } else { "1" };
        frame.push(format!("f{i}"), Column::Text(vec![Some("2".into()), Some(text.into())])).expect("column");
    }
    assert_eq!(path_of(model.predict(&Records::Columns(frame)).unwrap_err()), "columns.f4[1]");
}

#[test]
fn options_that_contradict_the_file_are_typed_errors() {
    let file = fixture("seed_xgboost.json");
    let invalid_at = |r: Result<Model>| match r {
        Err(WharfError::InvalidInput { path, message }) => (path, message),
        other => panic!("expected invalid input, got {other:?}"),
    };
    let (path, message) = invalid_at(trees_model::xgboost_with(&file, &ImportOptions::new().features(["a", "b"])));
    assert_eq!(path, "features");
    assert!(message.contains("2 names") && message.contains("20 features"), "{message}");
    let (path, message) = invalid_at(trees_model::xgboost_with(&file, &ImportOptions::new().classes(["no", "yes"])));
    assert_eq!(path, "classes");
    assert!(message.contains("3 classes"), "{message}");
    let (path, _) = invalid_at(trees_model::xgboost_with(&file, &ImportOptions::new().classes(["a", "b", "a"])));
    assert_eq!(path, "classes[2]");
    let twenty: Vec<String> = (0..20).map(|i| if i == 5 { "f1".to_string() } else { format!("f{i}") }).collect();
    let (path, _) = invalid_at(trees_model::xgboost_with(&file, &ImportOptions::new().features(twenty)));
    assert_eq!(path, "features[5]");
}

#[test]
fn bad_files_name_the_file_the_format_and_the_field() {
    let dir = tempfile::tempdir().expect("dir");
    let text = std::fs::read_to_string(fixture("seed_xgboost.json")).expect("seed");
    let broken = text.replacen("\"left_children\":[1,", "\"left_children\":[99,", 1);
    assert_ne!(broken, text, "the seed has the pattern");
    std::fs::write(dir.path().join("bad.json"), broken).expect("write");
    match trees_model::xgboost(dir.path().join("bad.json")) {
        Err(WharfError::InvalidInput { path, message }) => {
            assert!(path.contains("bad.json") && path.contains("xgboost") && path.contains("trees[0]"), "{path}");
            assert!(message.contains("99"), "{message}");
        }
        other => panic!("expected invalid input, got {other:?}"),
    }
    std::fs::write(dir.path().join("cut.json"), &text[..text.len() / 2]).expect("write");
    match trees_model::xgboost(dir.path().join("cut.json")) {
        Err(WharfError::InvalidInput { path, .. }) => assert!(path.contains("(xgboost) at line 1 column"), "{path}"),
        other => panic!("expected invalid input, got {other:?}"),
    }
    // A LightGBM file given as XGBoost is refused, not misread.
    assert!(trees_model::xgboost(fixture("seed_lightgbm.txt")).is_err());
    match trees_model::lightgbm(dir.path().join("missing.txt")) {
        Err(WharfError::Io { path, .. }) => assert!(path.ends_with("missing.txt")),
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

/// The payload layout the kind writes, mirrored here to forge hostile artifacts.
#[derive(Serialize, Deserialize)]
struct Body {
    spec: EnsembleSpec,
    source: (SourceFormat, String, Vec<usize>),
}

/// A kind that claims the tree-ensemble id but writes whatever payload it is given: what a
/// hostile or damaged artifact looks like once its checksum is right.
#[derive(Debug)]
struct Forged(Vec<u8>);

impl ModelKind for Forged {
    fn kind_id(&self) -> &str {
        KIND_ID
    }
    fn validate(&self, _: &Signature, _: &Records) -> Result<()> {
        Ok(())
    }
    fn predict(&self, _: &Signature, _: &Records) -> Result<Predictions> {
        Err(WharfError::Unsupported("forged".into()))
    }
    fn encode(&self) -> Result<Vec<u8>> {
        Ok(self.0.clone())
    }
    fn check(&self, _: &Signature) -> std::result::Result<(), String> {
        Ok(())
    }
    fn work_per_row(&self) -> usize {
        1
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

fn forged_load(template: &Model, payload: Vec<u8>) -> ArtifactError {
    let forged = Model::new(template.metadata().clone(), Arc::new(Forged(payload))).expect("forged model");
    let bytes = artifact::encode(&forged).expect("encode");
    match artifact::decode(&bytes) {
        Err(e) => e,
        Ok(_) => panic!("a forged payload loaded"),
    }
}

#[test]
fn a_hostile_payload_is_refused_at_load() {
    let model = trees_model::xgboost(fixture("seed_xgboost.json")).expect("import");
    let good = model.kind().encode().expect("encode");
    let (version, body): (u32, Vec<u8>) = kind::decode_payload(&good).expect("layout");
    assert_eq!(version, 1);
    let Body { spec, source } = kind::decode_payload(&body).expect("body");

    // A child index out of range, which would index out of bounds if trusted.
    let mut bad = spec.clone();
    if let Node::Internal { right, .. } = &mut bad.trees[0].nodes[0] {
        *right = 1_000_000;
    }
    let payload =
        kind::encode_payload(&(1u32, kind::encode_payload(&Body { spec: bad, source: source.clone() }).unwrap()))
            .unwrap();
    match forged_load(&model, payload) {
        ArtifactError::Decode(message) => assert!(message.contains("trees[0].nodes[0].right"), "{message}"),
        other => panic!("expected a decode error, got {other}"),
    }

    // A cycle.
    let mut bad = spec.clone();
    bad.trees[0] = Tree {
        group: 0,
        nodes: vec![Node::numeric(0, 0.5, 1, 2, true), Node::numeric(1, 0.5, 0, 2, true), Node::leaf(1.0)],
    };
    let payload =
        kind::encode_payload(&(1u32, kind::encode_payload(&Body { spec: bad, source: source.clone() }).unwrap()))
            .unwrap();
    assert!(matches!(forged_load(&model, payload), ArtifactError::Decode(m) if m.contains("reached twice")));

    // A spec that fits another signature (10 features for 20 named ones).
    let narrow = EnsembleSpec {
        semantics: Semantics::XGBoost,
        n_features: 10,
        base_score: vec![0.0; 3],
        link: Link::Softmax,
        average: false,
        trees: vec![Tree { group: 0, nodes: vec![Node::leaf(0.5)] }],
    };
    let payload =
        kind::encode_payload(&(1u32, kind::encode_payload(&Body { spec: narrow, source: source.clone() }).unwrap()))
            .unwrap();
    assert!(matches!(forged_load(&model, payload), ArtifactError::Decode(m) if m.contains("20 features")));

    // Another payload version, truncated bytes, trailing bytes.
    let payload = kind::encode_payload(&(2u32, body.clone())).unwrap();
    assert!(matches!(forged_load(&model, payload), ArtifactError::Decode(m) if m.contains("version 2")));
    assert!(matches!(forged_load(&model, good[..good.len() / 2].to_vec()), ArtifactError::Decode(_)));
    let mut long = good.clone();
    long.push(0);
    assert!(matches!(forged_load(&model, long), ArtifactError::Decode(_)));
}

// --- Agreement with the libraries, through the model kind (fixture script's data). ---

fn close(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a - b).abs() <= 1e-6 * a.abs().max(b.abs()) || (a - b).abs() < 1e-15
}

/// Every model of the fixture script, imported as a Wharf model, saved, loaded and scored
/// (predict and predict_proba), against the library's own predictions.
#[test]
fn imported_models_score_like_the_libraries_after_save_and_load() {
    let Some(dir) = data_dir() else { return };
    let manifest = common::manifest(&dir);
    let tmp = tempfile::tempdir().expect("dir");
    for case in &manifest.cases {
        let path = dir.join(&case.model);
        let model = match case.format.as_str() {
            "xgboost" => trees_model::xgboost(&path),
            _ => trees_model::lightgbm(&path),
        }
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let saved = tmp.path().join(format!("{}.wharf", case.name));
        model.save(&saved).expect("save");
        let model = Model::load(&saved).expect("load");
        let x = read_f64(&dir.join(format!("{}.x.f64", case.data)));
        let want = read_f64(&dir.join(format!("{}.pred.f64", case.name)));
        let records = matrix(&x, case.width);
        let predictions = model.predict(&records).expect("predict");
        let label_of = |i: usize| predictions.display(i);
        match (model.task(), case.objective.as_str()) {
            (Task::Classification, "multi:softmax") => {
                assert_eq!(want.len(), case.rows);
                for (i, want) in want.iter().enumerate() {
                    assert_eq!(label_of(i), format!("{}", *want as u32), "{} row {i}", case.name);
                }
            }
            (Task::Classification, "binary:logitraw") => {
                // The library's prediction is the margin; the model's class is its sign.
                let p = model.predict_proba(&records).expect("proba");
                assert_eq!(want.len(), case.rows);
                for (i, margin) in want.iter().enumerate() {
                    assert_eq!(label_of(i), if *margin > 0.0 { "1" } else { "0" }, "{} row {i}", case.name);
                    assert_eq!(p.values[(i, 1)] > 0.5, *margin > 0.0, "{} row {i}", case.name);
                }
            }
            (Task::Classification, _) => {
                let p = model.predict_proba(&records).expect("proba");
                let groups = want.len() / case.rows;
                for i in 0..case.rows {
                    if groups == 1 {
                        assert!(
                            close(p.values[(i, 1)], want[i]),
                            "{} row {i}: {} vs {}",
                            case.name,
                            p.values[(i, 1)],
                            want[i]
                        );
                        assert_eq!(label_of(i), if want[i] > 0.5 { "1" } else { "0" }, "{} row {i}", case.name);
                    } else {
                        for c in 0..groups {
                            assert!(close(p.values[(i, c)], want[i * groups + c]), "{} row {i} class {c}", case.name);
                        }
                    }
                }
            }
            _ => {
                let Predictions::Values(values) = predictions else { panic!("{}: values", case.name) };
                for i in 0..case.rows {
                    assert!(close(values[i], want[i]), "{} row {i}: {} vs {}", case.name, values[i], want[i]);
                }
            }
        }
        eprintln!("{:<24} {:<17} {} rows agree", case.name, case.objective, case.rows);
    }
}
