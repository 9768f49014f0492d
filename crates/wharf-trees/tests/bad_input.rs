//! Hostile and broken inputs: every one is refused with a typed error that names the field,
//! and nothing panics. The property tests mutate real model files (small XGBoost and
//! LightGBM models with categorical splits and missing values, written by the libraries;
//! `tests/fixtures/seed_*`) for a bounded number of cases.

use proptest::prelude::*;
use wharf_trees::{lightgbm, xgboost, Ensemble, EnsembleSpec, Link, Node, Semantics, Tree, TreeError};

const XGB_SEED: &str = include_str!("fixtures/seed_xgboost.json");
const LGB_SEED: &str = include_str!("fixtures/seed_lightgbm.txt");

fn spec(trees: Vec<Tree>) -> EnsembleSpec {
    EnsembleSpec {
        semantics: Semantics::XGBoost,
        n_features: 2,
        base_score: vec![0.0],
        link: Link::Identity,
        average: false,
        trees,
    }
}

fn field_of(e: TreeError) -> String {
    match e {
        TreeError::Field { field, .. } => field,
        other => panic!("expected a field error, got {other}"),
    }
}

#[test]
fn a_cycle_is_refused_and_named() {
    let tree = Tree {
        group: 0,
        nodes: vec![Node::numeric(0, 0.5, 1, 2, true), Node::numeric(1, 0.5, 0, 2, true), Node::leaf(1.0)],
    };
    let e = Ensemble::new(spec(vec![tree])).expect_err("cycle");
    assert_eq!(field_of(e), "trees[0].nodes[1].left");
}

#[test]
fn a_shared_subtree_is_refused() {
    let tree = Tree { group: 0, nodes: vec![Node::numeric(0, 0.5, 1, 1, true), Node::leaf(1.0)] };
    let e = Ensemble::new(spec(vec![tree])).expect_err("shared");
    assert_eq!(field_of(e), "trees[0].nodes[0].right");
}

#[test]
fn out_of_range_children_features_and_groups_are_refused() {
    let child = Tree { group: 0, nodes: vec![Node::numeric(0, 0.5, 1, 7, true), Node::leaf(1.0)] };
    assert_eq!(field_of(Ensemble::new(spec(vec![child])).expect_err("child")), "trees[0].nodes[0].right");
    let feature = Tree { group: 0, nodes: vec![Node::numeric(2, 0.5, 1, 2, true), Node::leaf(1.0), Node::leaf(2.0)] };
    assert_eq!(field_of(Ensemble::new(spec(vec![feature])).expect_err("feature")), "trees[0].nodes[0].feature");
    let group = Tree { group: 1, nodes: vec![Node::leaf(1.0)] };
    assert_eq!(field_of(Ensemble::new(spec(vec![group])).expect_err("group")), "trees[0].group");
    let empty = Tree { group: 0, nodes: vec![] };
    assert_eq!(field_of(Ensemble::new(spec(vec![empty])).expect_err("empty")), "trees[0]");
}

#[test]
fn non_finite_values_and_wrong_precision_thresholds_are_refused() {
    let nan_leaf = Tree { group: 0, nodes: vec![Node::leaf(f64::NAN)] };
    assert_eq!(field_of(Ensemble::new(spec(vec![nan_leaf])).expect_err("nan")), "trees[0].nodes[0].value");
    // 0.1 is not an f32: an XGBoost threshold must be one.
    let t = Tree { group: 0, nodes: vec![Node::numeric(0, 0.1, 1, 2, true), Node::leaf(1.0), Node::leaf(2.0)] };
    assert_eq!(field_of(Ensemble::new(spec(vec![t])).expect_err("f32")), "trees[0].nodes[0].threshold");
    // A sigmoid's scale comes from the file (LightGBM's `sigmoid:` parameter, where `nan` and
    // `inf` parse as floats), so it is checked like every other number.
    for scale in [f64::NAN, f64::INFINITY, 0.0, -1.0] {
        let leaf = Tree { group: 0, nodes: vec![Node::leaf(1.0)] };
        let scaled = EnsembleSpec { link: Link::ScaledSigmoid(scale), ..spec(vec![leaf]) };
        assert_eq!(field_of(Ensemble::new(scaled).expect_err("scale")), "link", "{scale}");
    }
}

#[test]
fn wrong_shapes_are_errors_not_panics() {
    let model = Ensemble::new(spec(vec![Tree { group: 0, nodes: vec![Node::leaf(1.0)] }])).expect("model");
    let mut out = [0.0; 2];
    assert!(matches!(model.predict(&[1.0, 2.0, 3.0], 2, &mut out), Err(TreeError::Shape(_))));
    assert!(matches!(model.predict(&[1.0, 2.0, 3.0], 3, &mut out[..1]), Err(TreeError::Shape(_))));
    assert!(matches!(model.predict(&[1.0; 4], 2, &mut out[..1]), Err(TreeError::Shape(_))));
    assert!(matches!(model.predict_row(&[1.0], &mut out[..1]), Err(TreeError::Shape(_))));
    model.predict(&[1.0; 4], 2, &mut out).expect("two rows");
    assert_eq!(out, [1.0, 1.0]);
}

#[test]
fn truncated_and_foreign_files_name_where() {
    let e = xgboost::parse(&XGB_SEED.as_bytes()[..XGB_SEED.len() / 2]).expect_err("truncated");
    assert!(matches!(e, TreeError::Malformed { format: "xgboost", .. }), "{e}");
    assert!(e.to_string().contains("line"), "{e}");
    let e = lightgbm::parse(&LGB_SEED.as_bytes()[..LGB_SEED.len() / 2]).expect_err("truncated");
    assert!(e.to_string().contains("end of trees"), "{e}");
    let e = lightgbm::parse(b"\xff\xfe").expect_err("binary");
    assert!(e.to_string().contains("byte 0"), "{e}");
    let e = xgboost::parse(LGB_SEED.as_bytes()).expect_err("lightgbm as xgboost");
    assert!(matches!(e, TreeError::Malformed { .. }), "{e}");
}

#[test]
fn unsupported_objectives_list_the_supported_ones() {
    let text = XGB_SEED.replacen("\"multi:softprob\"", "\"rank:pairwise\"", 1);
    let e = xgboost::parse(text.as_bytes()).expect_err("ranking");
    assert!(e.to_string().contains("rank:pairwise") && e.to_string().contains("binary:logistic"), "{e}");
    let text = LGB_SEED.replacen("objective=multiclass", "objective=lambdarank", 1);
    let e = lightgbm::parse(text.as_bytes()).expect_err("ranking");
    assert!(e.to_string().contains("lambdarank") && e.to_string().contains("multiclass"), "{e}");
}

#[test]
fn the_seeds_themselves_import() {
    let x = xgboost::parse(XGB_SEED.as_bytes()).expect("xgboost seed");
    assert_eq!((x.n_classes, x.n_features()), (3, 20));
    assert_eq!(x.categorical_features, vec![7, 8]);
    let l = lightgbm::parse(LGB_SEED.as_bytes()).expect("lightgbm seed");
    assert_eq!((l.n_classes, l.n_features()), (3, 20));
    assert_eq!(l.categorical_features, vec![7, 8]);
}

/// Values a mutated number may take: boundaries of every integer type the parsers convert
/// to, negative indices, non-finite and non-numeric text.
const INTERESTING: &[&str] = &[
    "-1",
    "0",
    "1",
    "2",
    "7",
    "31",
    "32",
    "-2",
    "2147483647",
    "2147483648",
    "-2147483649",
    "4294967296",
    "99999999999999999999",
    "1e308",
    "-1e308",
    "NaN",
    "inf",
    "",
    "0.5",
    "-0.0",
    "16777216",
    "3.4e38",
];

#[derive(Debug, Clone)]
enum Mutation {
    FlipByte(usize, u8),
    Truncate(usize),
    Delete(usize, usize),
    Duplicate(usize, usize),
    /// Replace the `n`-th number in the text with an interesting value.
    Number(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Mutation::FlipByte(a, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1usize..64).prop_map(|(a, n)| Mutation::Delete(a, n)),
        (any::<usize>(), 1usize..256).prop_map(|(a, n)| Mutation::Duplicate(a, n)),
        (any::<usize>(), 0..INTERESTING.len()).prop_map(|(a, v)| Mutation::Number(a, v)),
        (any::<usize>(), 0..INTERESTING.len()).prop_map(|(a, v)| Mutation::Number(a, v)),
        (any::<usize>(), 0..INTERESTING.len()).prop_map(|(a, v)| Mutation::Number(a, v)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    let len = bytes.len();
    match *m {
        Mutation::FlipByte(at, b) => bytes[at % len] ^= b.max(1),
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
        Mutation::Number(k, v) => {
            // Spans of digits (with a leading minus) in the text.
            let mut spans = Vec::new();
            let mut i = 0;
            while i < len {
                if bytes[i].is_ascii_digit() {
                    let start = if i > 0 && bytes[i - 1] == b'-' { i - 1 } else { i };
                    while i < len
                        && (bytes[i].is_ascii_digit() || bytes[i] == b'.' || bytes[i] == b'E' || bytes[i] == b'e')
                    {
                        i += 1;
                    }
                    spans.push((start, i));
                } else {
                    i += 1;
                }
            }
            if let Some(&(s, e)) = spans.get(k % spans.len().max(1)) {
                bytes.splice(s..e, INTERESTING[v].bytes());
            }
        }
    }
}

/// Scores a few awkward rows: must not panic, whatever the model.
fn exercise(result: Result<wharf_trees::ImportedModel, TreeError>) {
    match result {
        Ok(model) => {
            let width = model.n_features();
            let groups = model.ensemble.n_groups();
            let specials = [f64::NAN, 0.0, -0.0, 1e-36, -1.0, 3.0, 7.0, 1e10, -1e10, f64::INFINITY, f64::NEG_INFINITY];
            let rows: Vec<f64> =
                (0..specials.len() * width).map(|i| specials[(i * 7 + i / width) % specials.len()]).collect();
            let mut out = vec![0.0; specials.len() * groups];
            model.ensemble.predict(&rows, width, &mut out).expect("shapes are right");
            let mut one = vec![0.0; groups];
            model.ensemble.predict_row(&rows[..width], &mut one).expect("shapes are right");
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_xgboost_files_never_panic(mutations in prop::collection::vec(mutation(), 1..6)) {
        let mut bytes = XGB_SEED.as_bytes().to_vec();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        exercise(xgboost::parse(&bytes));
    }

    #[test]
    fn mutated_lightgbm_files_never_panic(mutations in prop::collection::vec(mutation(), 1..6)) {
        let mut bytes = LGB_SEED.as_bytes().to_vec();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        exercise(lightgbm::parse(&bytes));
    }
}
