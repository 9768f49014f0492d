//! ONNX files as Wharf models (features `kind` and `onnx`), and hostile ONNX input.
//!
//! Uses the small files `tests/fixtures/seed_onnx.py` wrote (committed, no Python needed):
//! three skl2onnx exports (a random forest; a StandardScaler → LogisticRegression pipeline; a
//! ColumnTransformer of OneHotEncoder, OrdinalEncoder and StandardScaler before a
//! LogisticRegression), hand-made one-split regressors (a BRANCH_MEMBER one among them)
//! whose answers are known, a hand-made one-hot encoding of a string input whose answers ONNX
//! Runtime gave, and hostile files (a cycle, a feature index out of range, an unsupported
//! operator, BRANCH_MEMBER sets a bitset cannot hold, string inputs read by numeric
//! operators, a double input). The property test mutates the real
//! exports for a bounded number of cases: every result is a model or a typed error.

use std::path::{Path, PathBuf};

use ndarray::Array2;
use proptest::prelude::*;
use wharf_core::{Model, Predictions, Records, Task};
use wharf_trees::model::{self as trees_model, ImportOptions, OnnxPipeline, ONNX_KIND_ID};
use wharf_trees::onnx;
use wharf_trees::TreeError;

const FOREST: &[u8] = include_bytes!("fixtures/seed_onnx_forest.onnx");
const PIPELINE: &[u8] = include_bytes!("fixtures/seed_onnx_pipeline.onnx");
const ENCODED: &[u8] = include_bytes!("fixtures/seed_onnx_encoded.onnx");
const STRINGS: &[u8] = include_bytes!("fixtures/seed_onnx_string_onehot.onnx");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn rows(n: usize) -> Vec<f64> {
    (0..n * 4).map(|k| ((k * 37 % 23) as f64 - 11.0) * 0.21).collect()
}

#[test]
fn the_one_split_regressor_scores_as_written() {
    let model = onnx::read(fixture("seed_onnx_tiny_regressor.onnx")).expect("import");
    assert_eq!(model.pipeline.width(), 4);
    assert!(model.classes.is_empty());
    // x0 <= 0.5 → 1, else 2; NaN fails the comparison (no missing tracking) → 2.
    let x = [0.5, 9.0, 9.0, 9.0, 0.50001, 0.0, 0.0, 0.0, f64::NAN, 0.0, 0.0, 0.0, -3.0, 0.0, 0.0, 0.0];
    let mut out = [0.0; 4];
    model.pipeline.predict(&x, &mut out).expect("predict");
    assert_eq!(out, [1.0, 2.0, 2.0, 1.0]);
}

#[test]
fn the_opset_5_tree_ensemble_scores_as_written() {
    let model = onnx::read(fixture("seed_onnx_tree_ensemble_5.onnx")).expect("import");
    assert_eq!(model.model_op, "TreeEnsemble");
    let x = [0.5, 9.0, 9.0, 9.0, 0.50001, 0.0, 0.0, 0.0, f64::NAN, 0.0, 0.0, 0.0];
    let mut out = [0.0; 3];
    model.pipeline.predict(&x, &mut out).expect("predict");
    assert_eq!(out, [1.0, 2.0, 2.0]);
    let e = onnx::read(fixture("hostile_cycle_5.onnx")).expect_err("cycle");
    assert!(e.to_string().contains("reached twice"), "{e}");
}

#[test]
fn imported_models_have_the_files_signature_and_survive_save_and_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (file, classes) in [("seed_onnx_forest.onnx", vec!["0", "1", "2"]), ("seed_onnx_pipeline.onnx", vec!["0", "1"])]
    {
        let model = trees_model::onnx(fixture(file)).expect("import");
        assert_eq!(model.task(), Task::Classification, "{file}");
        assert_eq!(model.classes(), classes, "{file}");
        let names: Vec<&str> = model.signature().feature_names().collect();
        assert_eq!(names, ["f0", "f1", "f2", "f3"]);
        let x = rows(50);
        let records = Records::Matrix(Array2::from_shape_vec((50, 4), x.clone()).expect("shape").into());
        let proba = model.predict_proba(&records).expect("proba");
        let kind = model.kind().as_any().downcast_ref::<OnnxPipeline>().expect("an ONNX pipeline");
        let mut want = vec![0.0; 50 * classes.len()];
        kind.pipeline().predict(&x, &mut want).expect("predict");
        assert_eq!(proba.values.as_slice().expect("contiguous"), want.as_slice(), "{file}");

        let path = dir.path().join(format!("{file}.wharf"));
        model.save(&path).expect("save");
        let loaded = Model::load(&path).expect("load");
        assert_eq!(loaded.kind().kind_id(), ONNX_KIND_ID);
        assert_eq!(loaded.predict_proba(&records).expect("proba").values, proba.values, "{file}");
        match loaded.predict(&records).expect("predict") {
            Predictions::Classes { indices, .. } => assert_eq!(indices.len(), 50),
            other => panic!("{file}: expected classes, got {other:?}"),
        }
    }
}

#[test]
fn options_rename_and_a_conflict_is_an_error() {
    let options = ImportOptions::new().features(["a", "b", "c", "d"]).classes(["low", "mid", "high"]);
    let model = trees_model::onnx_with(fixture("seed_onnx_forest.onnx"), &options).expect("import");
    assert_eq!(model.classes(), ["low", "mid", "high"]);
    assert_eq!(model.signature().feature_names().collect::<Vec<_>>(), ["a", "b", "c", "d"]);
    let e = trees_model::onnx_with(fixture("seed_onnx_forest.onnx"), &ImportOptions::new().classes(["no", "yes"]))
        .expect_err("two labels for three classes");
    assert!(e.to_string().contains("classes") && e.to_string().contains("3 classes"), "{e}");
    let e = trees_model::onnx_with(fixture("seed_onnx_forest.onnx"), &ImportOptions::new().features(["a"]))
        .expect_err("one name for four columns");
    assert!(e.to_string().contains("4 columns"), "{e}");
    let e = trees_model::onnx_with(fixture("seed_onnx_tiny_regressor.onnx"), &ImportOptions::new().classes(["a", "b"]))
        .expect_err("labels for a regressor");
    assert!(e.to_string().contains("regressor"), "{e}");
}

#[test]
fn hostile_files_are_refused_with_the_node_and_attribute() {
    let e = onnx::read(fixture("hostile_cycle.onnx")).expect_err("cycle");
    assert!(e.to_string().contains("reached twice"), "{e}");
    let e = onnx::read(fixture("hostile_feature.onnx")).expect_err("feature 99");
    let text = e.to_string();
    assert!(text.contains("onnx") && text.contains("node 'trees'") && text.contains("nodes_featureids[0]"), "{text}");
    match onnx::read(fixture("hostile_unsupported_op.onnx")).expect_err("Sin") {
        TreeError::Unsupported { format, what, value, supported } => {
            assert_eq!((format, what), ("onnx", "operator"));
            assert!(value.starts_with("Sin"), "{value}");
            assert!(supported.contains("TreeEnsembleClassifier") && supported.contains("Scaler"), "{supported}");
        }
        other => panic!("expected an unsupported operator, got {other}"),
    }
    for bytes in [&b""[..], b"\x0a\xff\xff\xff\xff\x0f", b"not a protobuf", &FOREST[..FOREST.len() / 3]] {
        let e = onnx::parse(bytes).expect_err("garbage");
        assert!(e.to_string().starts_with("onnx"), "{e}");
    }
    // Nothing half-made: a failed import leaves no model to register.
    let e = trees_model::onnx(fixture("hostile_cycle.onnx")).expect_err("cycle");
    assert!(e.to_string().contains("hostile_cycle.onnx"), "{e}");
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Delete(usize, usize),
    Duplicate(usize, usize),
    Varint(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Mutation::Flip(a, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1usize..16).prop_map(|(a, n)| Mutation::Delete(a, n)),
        (any::<usize>(), 1usize..64).prop_map(|(a, n)| Mutation::Duplicate(a, n)),
        any::<usize>().prop_map(Mutation::Varint),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len();
    if len == 0 {
        return;
    }
    match *m {
        Mutation::Flip(at, v) => bytes[at % len] ^= v.max(1),
        Mutation::Truncate(at) => bytes.truncate(at % len),
        Mutation::Delete(at, n) => {
            let at = at % len;
            bytes.drain(at..(at + n).min(len));
        }
        Mutation::Duplicate(at, n) => {
            let at = at % len;
            let piece = bytes[at..(at + n).min(len)].to_vec();
            bytes.splice(at..at, piece);
        }
        // A huge length or count where a varint was.
        Mutation::Varint(at) => {
            let at = at % len;
            bytes.splice(at..at, [0xff, 0xff, 0xff, 0xff, 0x7f]);
        }
    }
}

/// Parses `file` with `mutations` applied, and scores what parses.
fn parse_mutated(file: &[u8], mutations: &[Mutation]) {
    let mut bytes = file.to_vec();
    for m in mutations {
        apply(&mut bytes, m);
    }
    exercise(onnx::parse(&bytes));
}

fn exercise(result: Result<onnx::OnnxModel, TreeError>) {
    match result {
        Ok(model) => {
            let width = model.pipeline.width();
            let specials = [f64::NAN, 0.0, -0.0, 1e-36, -1.0, 3.0, 1e10, -1e10, f64::INFINITY, f64::NEG_INFINITY];
            let x: Vec<f64> =
                (0..specials.len() * width).map(|i| specials[(i * 7 + i / width) % specials.len()]).collect();
            let mut out = vec![0.0; specials.len() * model.pipeline.n_outputs()];
            model.pipeline.predict(&x, &mut out).expect("shapes are right");
        }
        Err(e) => assert!(e.to_string().starts_with("onnx") || e.to_string().starts_with("ensemble"), "{e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_forest_files_never_panic(mutations in prop::collection::vec(mutation(), 1..6)) {
        parse_mutated(FOREST, &mutations);
    }

    #[test]
    fn mutated_encoder_files_never_panic(mutations in prop::collection::vec(mutation(), 1..6)) {
        parse_mutated(ENCODED, &mutations);
    }

    #[test]
    fn mutated_string_files_never_panic(mutations in prop::collection::vec(mutation(), 1..6)) {
        parse_mutated(STRINGS, &mutations);
    }

    #[test]
    fn mutated_pipeline_files_never_panic(mutations in prop::collection::vec(mutation(), 1..6)) {
        parse_mutated(PIPELINE, &mutations);
    }
}

/// The payload layout the kind writes (version 2), mirrored here to forge hostile
/// artifacts: the spec, its source, and the string columns (index, sorted levels, whether
/// an unknown string scores).
#[derive(serde::Serialize, serde::Deserialize)]
struct Body {
    spec: onnx::PipelineSpec,
    source: (String, String),
    text: Vec<(usize, Vec<String>, bool)>,
}

/// Version 1's layout: no string columns. Artifacts written before them still load.
#[derive(serde::Serialize)]
struct BodyV1 {
    spec: onnx::PipelineSpec,
    source: (String, String),
}

/// A kind that claims the ONNX id but writes whatever payload it is given: a hostile or
/// damaged artifact whose checksum is right.
#[derive(Debug)]
struct Forged(Vec<u8>);

impl wharf_core::kind::ModelKind for Forged {
    fn kind_id(&self) -> &str {
        ONNX_KIND_ID
    }
    fn validate(&self, _: &wharf_core::Signature, _: &Records) -> wharf_core::Result<()> {
        Ok(())
    }
    fn predict(&self, _: &wharf_core::Signature, _: &Records) -> wharf_core::Result<Predictions> {
        Err(wharf_core::WharfError::Unsupported("forged".into()))
    }
    fn encode(&self) -> wharf_core::Result<Vec<u8>> {
        Ok(self.0.clone())
    }
    fn check(&self, _: &wharf_core::Signature) -> std::result::Result<(), String> {
        Ok(())
    }
    fn work_per_row(&self) -> usize {
        1
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn forged(template: &Model, version: u32, body: Vec<u8>) -> Result<Model, wharf_core::ArtifactError> {
    use wharf_core::kind;
    let payload = kind::encode_payload(&(version, body)).expect("payload");
    let forged = Model::new(template.metadata().clone(), std::sync::Arc::new(Forged(payload))).expect("forged model");
    let bytes = wharf_core::artifact::encode(&forged).expect("encode");
    wharf_core::artifact::decode(&bytes)
}

fn forged_load(template: &Model, spec: onnx::PipelineSpec, source: &(String, String)) -> String {
    forged_text(template, spec, source, Vec::new())
}

fn forged_text(
    template: &Model,
    spec: onnx::PipelineSpec,
    source: &(String, String),
    text: Vec<(usize, Vec<String>, bool)>,
) -> String {
    let body = wharf_core::kind::encode_payload(&Body { spec, source: source.clone(), text }).expect("body");
    match forged(template, 2, body) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a forged payload loaded"),
    }
}

#[test]
fn a_hostile_payload_is_refused_at_load() {
    use wharf_core::kind;
    let model = trees_model::onnx(fixture("seed_onnx_encoded.onnx")).expect("import");
    let good = model.kind().encode().expect("encode");
    let (version, body): (u32, Vec<u8>) = kind::decode_payload(&good).expect("layout");
    assert_eq!(version, 2);
    let Body { spec, source, text } = kind::decode_payload(&body).expect("body");
    assert!(text.is_empty(), "no string columns");
    // Version 1 (before string columns) still loads.
    let v1 = kind::encode_payload(&BodyV1 { spec: spec.clone(), source: source.clone() }).expect("v1");
    forged(&model, 1, v1).expect("a version 1 payload loads");
    assert!(!spec.stages.is_empty(), "the encoder pipeline has stages");

    // A stage reading a value that does not exist yet (would index out of bounds).
    let mut bad = spec.clone();
    bad.stages[0].input[0] = 1_000_000;
    let message = forged_load(&model, bad, &source);
    assert!(message.contains("stages[0].input"), "{message}");

    // The model reading a value past the end.
    let mut bad = spec.clone();
    bad.features[0] = 1_000_000;
    let message = forged_load(&model, bad, &source);
    assert!(message.contains("features"), "{message}");

    // A pipeline for another input width than the signature's four columns.
    let mut bad = spec.clone();
    bad.width = 40;
    let message = forged_load(&model, bad, &source);
    assert!(message.contains("4 features") || message.contains("40"), "{message}");

    // A string column past the input, levels out of order, and a numeric signature
    // feature that the payload says holds strings.
    let message = forged_text(&model, spec.clone(), &source, vec![(9, vec!["a".into()], true)]);
    assert!(message.contains("string column 9 of a 4-column input"), "{message}");
    let message = forged_text(&model, spec.clone(), &source, vec![(0, vec!["b".into(), "a".into()], true)]);
    assert!(message.contains("not sorted"), "{message}");
    let message = forged_text(&model, spec, &source, vec![(0, vec!["a".into()], true)]);
    assert!(message.contains("feature 'f0' must be categorical"), "{message}");
}

#[test]
fn a_string_input_is_a_categorical_feature_and_unknown_strings_score_as_onnx_runtime_scores_them() {
    // OneHotEncoder(cats_strings=["b", "a"]) then y = 1·[s == "b"] + 10·[s == "a"]; ONNX
    // Runtime gives a → 10, b → 1, zz → 0, "" → 0 (seed_onnx.py).
    let model = trees_model::onnx(fixture("seed_onnx_string_onehot.onnx")).expect("import");
    let features = &model.signature().features;
    assert_eq!(features.len(), 1);
    assert_eq!(features[0].name, "s");
    assert_eq!(features[0].kind, wharf_core::FeatureKind::Categorical { levels: vec!["a".into(), "b".into()] });
    let rows: Vec<wharf_core::Row> =
        serde_json::from_str(r#"[{"s":"a"},{"s":"b"},{"s":"zz"},{"s":""},{"s":null},{"s":7}]"#).expect("json");
    let values = |records: &Records| match model.predict(records).expect("predict") {
        Predictions::Values(v) => v,
        other => panic!("expected values, got {other:?}"),
    };
    assert_eq!(values(&Records::Rows(rows)), [10.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
    // A CSV's columns: text, and a column of numbers that is the strings "1", "2".
    let text = wharf_core::Column::Text(vec![Some("b".into()), None, Some("a".into())]);
    let frame = wharf_core::Frame::from_columns(vec![("s".into(), text)]).expect("frame");
    assert_eq!(values(&Records::Columns(frame)), [1.0, 0.0, 10.0]);
    let numbers = wharf_core::Column::Numeric(vec![1.0, 2.0]);
    let frame = wharf_core::Frame::from_columns(vec![("s".into(), numbers)]).expect("frame");
    assert_eq!(values(&Records::Columns(frame)), [0.0, 0.0]);
    // Saved and loaded: the same signature and answers.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.wharf");
    model.save(&path).expect("save");
    let loaded = Model::load(&path).expect("load");
    assert_eq!(loaded.signature(), model.signature());
    let rows: Vec<wharf_core::Row> = serde_json::from_str(r#"[{"s":"a"},{"s":"q"}]"#).expect("json");
    match loaded.predict(&Records::Rows(rows)).expect("predict") {
        Predictions::Values(v) => assert_eq!(v, [10.0, 0.0]),
        other => panic!("expected values, got {other:?}"),
    }
}

#[test]
fn string_inputs_that_cannot_be_compiled_are_refused_at_import_naming_the_input_and_operator() {
    let message = |file: &str| onnx::read(fixture(file)).expect_err(file).to_string();
    for (file, want) in [
        ("hostile_string_scaler.onnx", "'s' (strings) is read by node #0 (Scaler)"),
        ("hostile_string_model.onnx", "'s' (strings) is read by node #1 (LinearRegressor)"),
        ("hostile_strings_on_float.onnx", "node #0 (OneHotEncoder) attribute input"),
        ("hostile_double_input.onnx", "element type 11 of 's'"),
    ] {
        let e = message(file);
        assert!(e.contains(want), "{file}: {e}");
    }
    let e = message("hostile_strings_on_float.onnx");
    assert!(e.contains("string categories on a value that is not a string input column"), "{e}");
}

#[test]
fn a_branch_member_split_scores_as_onnx_runtime_does() {
    // Opset 5's BRANCH_MEMBER (nodes_modes 6, membership_values {1, 4}): what a
    // HistGradientBoosting categorical split would be. ONNX Runtime 1.31 scores a set this
    // small as `x == 1 || x == 4`: 1.5 and 3.999 are not in it, nor is NaN (not tracked).
    let model = onnx::read(fixture("seed_onnx_member_5.onnx")).expect("import");
    let x0 = [1.0, 4.0, 1.5, 0.0, f64::NAN, -0.0, 3.999];
    let x: Vec<f64> = x0.iter().flat_map(|v| [*v, 0.0, 0.0, 0.0]).collect();
    let mut out = [0.0; 7];
    model.pipeline.predict(&x, &mut out).expect("predict");
    // ONNX Runtime's own answers for these rows.
    assert_eq!(out, [1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0]);
}

#[test]
fn member_sets_a_bitset_cannot_hold_are_refused_with_their_node() {
    let at = "onnx: field `node 'trees' (TreeEnsemble) attribute membership_values \
              (the set of nodes_modes[0], BRANCH_MEMBER)`: ";
    for (file, why) in [
        ("hostile_member_negative_5.onnx", "-1 is not a whole number from 0 to 65535 (the categories Wharf sets hold)"),
        (
            "hostile_member_fraction_5.onnx",
            "1.5 is not a whole number from 0 to 65535 (the categories Wharf sets hold)",
        ),
        // ONNX Runtime refuses it too ("must have at least one membership value").
        ("hostile_member_empty_5.onnx", "the set is empty"),
    ] {
        let e = onnx::read(fixture(file)).expect_err(file).to_string();
        assert_eq!(e, format!("{at}{why}"), "{file}");
    }
}
