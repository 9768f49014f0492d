//! Importing models fitted elsewhere: scikit-learn models exported as plain JSON.
//!
//! The result is an ordinary [`Model`] (numeric features, classes, identity preprocessing,
//! a Wharf estimator), checked like any loaded artifact, so it saves, registers, serves and
//! predicts like a model Wharf trained itself.
//!
//! Two export shapes are understood (the ones the peer benchmarks write):
//!
//! - **`sklearn-logistic-json`**: a binary `LogisticRegression` as `{"coef": [...],
//!   "intercept": x, "classes": [0, 1]}`, optionally with `coef_hex`/`intercept_hex` (Python
//!   `float.hex`, bit-exact; preferred when present), `n_features`, `feature_names` and
//!   `reference_rows` (`[{"x": [...]}, ...]`, used as the model's sample input).
//! - **`sklearn-forest-json`**: a `RandomForestClassifier` (binary) as `{"classes": [0, 1],
//!   "n_features": n, "trees": [{"children_left", "children_right", "feature", "threshold",
//!   "proba_class1"}, ...]}` with sklearn's node arrays. scikit-learn casts inputs to `f32`
//!   before walking a tree (go left iff `(x as f32) as f64 <= threshold`); the importer
//!   rewrites each threshold into the `f64` threshold that makes Wharf's plain `x <= t`
//!   choose the same side for every input, so the artifact format is unchanged.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;

use wharf_core::{Model, ModelMetadata};

use crate::builtin::FittedEstimator;
use crate::estimator::tree::{f32_rule_threshold, FlatTree, Node, LEAF};
use crate::estimator::Estimator;
use crate::preprocess::{Preprocessor, Step};
use crate::train::library_versions;
use wharf_core::Row;
use wharf_core::{Feature, Signature, Task};
use wharf_core::{Result, WharfError};

/// Largest number of features or tree nodes an import accepts (a guard against absurd files).
const MAX_LEN: usize = 1 << 24;

#[derive(Deserialize)]
#[serde(untagged)]
enum Coef {
    Flat(Vec<f64>),
    Nested(Vec<Vec<f64>>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Hexes {
    Flat(Vec<String>),
    Nested(Vec<Vec<String>>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Intercept {
    One(f64),
    List(Vec<f64>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum InterceptHex {
    One(String),
    List(Vec<String>),
}

#[derive(Deserialize)]
struct LogisticJson {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    sklearn_version: Option<String>,
    #[serde(default)]
    n_features: Option<usize>,
    #[serde(default)]
    feature_names: Option<Vec<String>>,
    classes: Vec<Value>,
    coef: Coef,
    intercept: Intercept,
    #[serde(default)]
    coef_hex: Option<Hexes>,
    #[serde(default)]
    intercept_hex: Option<InterceptHex>,
    #[serde(default)]
    reference_rows: Vec<ReferenceRow>,
}

#[derive(Deserialize)]
struct ReferenceRow {
    x: Vec<f64>,
}

#[derive(Deserialize)]
struct ForestJson {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    sklearn_version: Option<String>,
    n_features: usize,
    #[serde(default)]
    feature_names: Option<Vec<String>>,
    classes: Vec<Value>,
    trees: Vec<TreeJson>,
}

#[derive(Deserialize)]
struct TreeJson {
    children_left: Vec<i64>,
    children_right: Vec<i64>,
    feature: Vec<i64>,
    #[serde(deserialize_with = "exact_f64s")]
    threshold: Vec<f64>,
    #[serde(deserialize_with = "exact_f64s")]
    proba_class1: Vec<f64>,
}

/// A list of JSON numbers parsed with Rust's correctly rounding `str::parse::<f64>`, so a
/// shortest round-trip decimal (Python's `repr`) gives back exactly the exported `f64`.
fn exact_f64s<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<f64>, D::Error> {
    let raw: Vec<&'de serde_json::value::RawValue> = Vec::deserialize(d)?;
    raw.iter()
        .map(|r| {
            let text = r.get().trim();
            match text.as_bytes().first() {
                Some(b'-' | b'0'..=b'9') => text.parse::<f64>().ok(),
                _ => None,
            }
            .ok_or_else(|| serde::de::Error::custom(format!("expected a number, found {text}")))
        })
        .collect()
}

fn parse<'a, T: Deserialize<'a>>(json: &'a str, what: &str) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        WharfError::invalid(
            if path == "." { what.to_string() } else { format!("{what}.{path}") },
            e.into_inner().to_string(),
        )
    })
}

/// Imports a binary scikit-learn `LogisticRegression` exported as JSON (see the module docs).
pub fn sklearn_logistic_json(json: &str) -> Result<Model> {
    crate::register();
    let doc: LogisticJson = parse(json, "logistic")?;
    let classes = binary_classes(&doc.classes, "logistic.classes")?;
    let mut weights = match doc.coef {
        Coef::Flat(w) => w,
        Coef::Nested(mut rows) if rows.len() == 1 => rows.remove(0),
        Coef::Nested(rows) => {
            return Err(WharfError::Unsupported(format!(
                "multinomial logistic regression import ({} coefficient rows; only binary models)",
                rows.len()
            )))
        }
    };
    let mut intercept = match doc.intercept {
        Intercept::One(b) => b,
        Intercept::List(b) if b.len() == 1 => b[0],
        Intercept::List(b) => {
            return Err(WharfError::invalid("logistic.intercept", format!("{} values, expected 1", b.len())))
        }
    };
    if let Some(hexes) = doc.coef_hex {
        let hexes = match hexes {
            Hexes::Flat(h) => h,
            Hexes::Nested(mut rows) if rows.len() == 1 => rows.remove(0),
            Hexes::Nested(rows) => {
                return Err(WharfError::invalid("logistic.coef_hex", format!("{} rows, expected 1", rows.len())))
            }
        };
        if hexes.len() != weights.len() {
            return Err(WharfError::invalid(
                "logistic.coef_hex",
                format!("{} values but coef has {}", hexes.len(), weights.len()),
            ));
        }
        for (i, h) in hexes.iter().enumerate() {
            weights[i] = parse_hex_float(h).ok_or_else(|| {
                WharfError::invalid(format!("logistic.coef_hex[{i}]"), format!("'{h}' is not a hex float"))
            })?;
        }
    }
    if let Some(h) = doc.intercept_hex {
        let h = match h {
            InterceptHex::One(h) => h,
            InterceptHex::List(mut l) if l.len() == 1 => l.remove(0),
            InterceptHex::List(l) => {
                return Err(WharfError::invalid("logistic.intercept_hex", format!("{} values, expected 1", l.len())))
            }
        };
        intercept = parse_hex_float(&h)
            .ok_or_else(|| WharfError::invalid("logistic.intercept_hex", format!("'{h}' is not a hex float")))?;
    }
    let width = weights.len();
    if width == 0 || width > MAX_LEN {
        return Err(WharfError::invalid("logistic.coef", format!("{width} coefficients")));
    }
    if let Some(n) = doc.n_features {
        if n != width {
            return Err(WharfError::invalid("logistic.n_features", format!("{n}, but coef has {width} values")));
        }
    }
    if let Some(i) = weights.iter().position(|w| !w.is_finite()) {
        return Err(WharfError::invalid(format!("logistic.coef[{i}]"), "not a finite number"));
    }
    if !intercept.is_finite() {
        return Err(WharfError::invalid("logistic.intercept", "not a finite number"));
    }
    let names = feature_names(doc.feature_names, width, "logistic.feature_names")?;
    let mut sample: Vec<Row> = Vec::new();
    for (i, r) in doc.reference_rows.iter().take(3).enumerate() {
        if r.x.len() != width {
            return Err(WharfError::invalid(
                format!("logistic.reference_rows[{i}].x"),
                format!("{} values, expected {width}", r.x.len()),
            ));
        }
        sample.push(row(&names, &r.x));
    }
    let mut params = BTreeMap::new();
    params.insert("imported_from".to_string(), doc.model.unwrap_or_else(|| "LogisticRegression".into()));
    build(
        names,
        classes,
        "logistic",
        params,
        doc.sklearn_version,
        sample,
        Estimator::LogisticBinary { weights, intercept, positive: 1 },
    )
}

/// Imports a binary scikit-learn `RandomForestClassifier` exported as node arrays (see the
/// module docs). Predictions reproduce scikit-learn's `predict_proba` column 1 exactly.
pub fn sklearn_forest_json(json: &str) -> Result<Model> {
    crate::register();
    let doc: ForestJson = parse(json, "forest")?;
    let classes = binary_classes(&doc.classes, "forest.classes")?;
    let width = doc.n_features;
    if width == 0 || width > MAX_LEN {
        return Err(WharfError::invalid("forest.n_features", format!("{width}")));
    }
    if doc.trees.is_empty() {
        return Err(WharfError::invalid("forest.trees", "the forest has no trees"));
    }
    let names = feature_names(doc.feature_names, width, "forest.feature_names")?;
    let trees = doc
        .trees
        .iter()
        .enumerate()
        .map(|(t, tree)| convert_tree(tree, width).map_err(|m| WharfError::invalid(format!("forest.trees[{t}]"), m)))
        .collect::<Result<Vec<_>>>()?;
    let mut params = BTreeMap::new();
    params.insert("imported_from".to_string(), doc.model.unwrap_or_else(|| "RandomForestClassifier".into()));
    params.insert("n_trees".to_string(), trees.len().to_string());
    params.insert("split_rule".to_string(), "f32 inputs (scikit-learn)".to_string());
    let sample = vec![row(&names, &vec![0.0; width])];
    build(names, classes, "random-forest", params, doc.sklearn_version, sample, Estimator::Forest { trees })
}

fn build(
    names: Vec<String>,
    classes: Vec<String>,
    algorithm: &str,
    params: BTreeMap<String, String>,
    sklearn_version: Option<String>,
    sample_input: Vec<Row>,
    estimator: Estimator,
) -> Result<Model> {
    let steps = names.iter().map(|_| Step::Scale { mean: 0.0, scale: 1.0 }).collect();
    let mut library = library_versions();
    if let Some(v) = sklearn_version {
        library.insert("scikit-learn".into(), v);
    }
    let mut tags = BTreeMap::new();
    tags.insert("imported".to_string(), "scikit-learn".to_string());
    let metadata = ModelMetadata {
        signature: Signature {
            features: names.into_iter().map(Feature::numeric).collect(),
            target: None,
            task: Task::Classification,
            classes,
        },
        algorithm: algorithm.into(),
        params,
        metrics: BTreeMap::new(),
        tags,
        created_at: Utc::now(),
        data_fingerprint: String::new(),
        data_source: "scikit-learn export".into(),
        library_versions: library,
        sample_input,
    };
    let kind = FittedEstimator::new(Preprocessor { steps }, estimator);
    Model::new(metadata, Arc::new(kind))
        .map_err(|e| WharfError::invalid("import", format!("imported model is inconsistent: {e}")))
}

fn row(names: &[String], x: &[f64]) -> Row {
    names
        .iter()
        .zip(x)
        .map(|(n, v)| (n.clone(), serde_json::Number::from_f64(*v).map(Value::Number).unwrap_or(Value::Null)))
        .collect()
}

fn binary_classes(classes: &[Value], path: &str) -> Result<Vec<String>> {
    let labels = classes
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            _ => Err(WharfError::invalid(format!("{path}[{i}]"), "a class label must be a string or a number")),
        })
        .collect::<Result<Vec<_>>>()?;
    if labels.len() != 2 || labels[0] == labels[1] {
        return Err(WharfError::Unsupported(format!(
            "importing a model with {} classes (only binary classifiers)",
            labels.len()
        )));
    }
    Ok(labels)
}

fn feature_names(names: Option<Vec<String>>, width: usize, path: &str) -> Result<Vec<String>> {
    match names {
        None => Ok((0..width).map(|i| format!("f{i}")).collect()),
        Some(names) => {
            if names.len() != width {
                return Err(WharfError::invalid(path, format!("{} names for {width} features", names.len())));
            }
            // A set: linear in the number of names (a model may have 100k features).
            let mut seen = std::collections::HashSet::with_capacity(names.len());
            for (i, n) in names.iter().enumerate() {
                if n.is_empty() || !seen.insert(n.as_str()) {
                    return Err(WharfError::invalid(format!("{path}[{i}]"), "empty or duplicate name"));
                }
            }
            Ok(names)
        }
    }
}

/// Rewrites sklearn's node arrays into a [`FlatTree`] in pre-order (children after their
/// parent, as [`FlatTree::check`] requires), refusing cycles, shared nodes and bad indices.
fn convert_tree(tree: &TreeJson, width: usize) -> std::result::Result<FlatTree, String> {
    let n = tree.children_left.len();
    if n == 0 || n > MAX_LEN {
        return Err(format!("{n} nodes"));
    }
    for (name, len) in [
        ("children_right", tree.children_right.len()),
        ("feature", tree.feature.len()),
        ("threshold", tree.threshold.len()),
        ("proba_class1", tree.proba_class1.len()),
    ] {
        if len != n {
            return Err(format!("{name} has {len} entries, children_left has {n}"));
        }
    }
    let mut seen = vec![false; n];
    let mut nodes: Vec<Node> = Vec::new();
    let mut values: Vec<f64> = Vec::new();
    // (sklearn node, parent index in `nodes`, is left child)
    let mut stack = vec![(0usize, usize::MAX, false)];
    while let Some((s, parent, is_left)) = stack.pop() {
        if std::mem::replace(&mut seen[s], true) {
            return Err(format!("node {s} is reached twice"));
        }
        let idx = nodes.len();
        if let Some(p) = nodes.get_mut(parent) {
            if is_left {
                p.left = idx as u32;
            } else {
                p.right = idx as u32;
            }
        }
        let (l, r) = (tree.children_left[s], tree.children_right[s]);
        if l == -1 {
            let p1 = tree.proba_class1[s];
            if !(0.0..=1.0).contains(&p1) {
                return Err(format!("proba_class1[{s}] = {p1} is not a probability"));
            }
            nodes.push(Node { feature: LEAF, threshold: 0.0, left: (values.len() / 2) as u32, right: 0 });
            values.extend([1.0 - p1, p1]);
        } else {
            let child = |c: i64| usize::try_from(c).ok().filter(|&c| c < n);
            let (Some(l), Some(r)) = (child(l), child(r)) else {
                return Err(format!("node {s} has an invalid child ({l}, {r})"));
            };
            let feature = usize::try_from(tree.feature[s]).ok().filter(|&f| f < width);
            let Some(feature) = feature else {
                return Err(format!("node {s} splits on feature {} of {width}", tree.feature[s]));
            };
            let threshold = tree.threshold[s];
            if threshold.is_nan() {
                return Err(format!("threshold[{s}] is NaN"));
            }
            nodes.push(Node { feature: feature as u32, threshold: f32_rule_threshold(threshold), left: 0, right: 0 });
            stack.push((r, idx, false));
            stack.push((l, idx, true));
        }
    }
    Ok(FlatTree { nodes, values, n_outputs: 2 })
}

/// Parses Python's `float.hex()` output (`-0x1.91eb851eb851fp+1`, `inf`, `nan`).
fn parse_hex_float(s: &str) -> Option<f64> {
    let s = s.trim();
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let value = match body {
        "inf" | "infinity" => f64::INFINITY,
        "nan" => f64::NAN,
        _ => {
            let body = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X"))?;
            let (mantissa, exp) = body.split_once(['p', 'P']).unwrap_or((body, "0"));
            let exp: i32 = exp.parse().ok()?;
            let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
            if int.is_empty() || int.len() + frac.len() > 15 {
                return None;
            }
            let mut m: u64 = 0;
            for c in int.chars().chain(frac.chars()) {
                m = m.checked_mul(16)?.checked_add(c.to_digit(16)? as u64)?;
            }
            if m >= 1 << 53 {
                return None;
            }
            let mut e = exp.checked_sub(4 * frac.len() as i32)?;
            let mut v = m as f64;
            // Scale in representable powers of two; only the last step can round.
            while e > 1000 {
                v *= 2f64.powi(1000);
                e -= 1000;
            }
            while e < -1000 {
                v *= 2f64.powi(-1000);
                e += 1000;
            }
            v * 2f64.powi(e)
        }
    };
    Some(if neg { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_floats_parse_exactly() {
        for v in [0.0, 1.0, -2.5, 0.1, 1e-300, 4.9e-324, f64::MAX, f64::MIN_POSITIVE, -123.456e10] {
            let hex = hex(v);
            assert_eq!(parse_hex_float(&hex), Some(v), "{hex}");
        }
        assert_eq!(parse_hex_float("0x1.8p+1"), Some(3.0));
        assert_eq!(parse_hex_float("-0x1p-2"), Some(-0.25));
        assert_eq!(parse_hex_float("0x0.0000000000001p-1022"), Some(4.9e-324));
        assert_eq!(parse_hex_float("-inf"), Some(f64::NEG_INFINITY));
        for bad in ["", "0x", "1.5", "0x1.zp+0", "0x1.0p+x", "0x1.00000000000000000p+0"] {
            assert_eq!(parse_hex_float(bad), None, "{bad}");
        }
    }

    /// Python's float.hex format, for the round-trip test.
    fn hex(v: f64) -> String {
        let bits = v.to_bits();
        let sign = if bits >> 63 == 1 { "-" } else { "" };
        let exp = ((bits >> 52) & 0x7ff) as i32;
        let frac = bits & ((1 << 52) - 1);
        if exp == 0 && frac == 0 {
            return format!("{sign}0x0.0p+0");
        }
        let (lead, e) = if exp == 0 { (0, -1022) } else { (1, exp - 1023) };
        format!("{sign}0x{lead}.{frac:013x}p{e:+}")
    }

    fn f32_rule(x: f64, t: f64) -> bool {
        (x as f32) as f64 <= t
    }

    #[test]
    fn rewritten_thresholds_split_like_f32_inputs() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut thresholds =
            vec![0.0, -0.0, 1.0, -1.0, 0.5, 1e-45, -1e-45, 1e-40, f32::MAX as f64, f64::MAX, -f64::MAX];
        thresholds.extend([f64::INFINITY, f64::NEG_INFINITY, f32::MIN as f64, 3.4e38, -3.4e38]);
        for _ in 0..2000 {
            let a = f32::from_bits(next() as u32);
            if !a.is_finite() {
                continue;
            }
            // sklearn-style midpoints, the f32 values themselves, and arbitrary f64s.
            thresholds.push((a as f64 + a.next_up() as f64) / 2.0);
            thresholds.push(a as f64);
            thresholds.push(f64::from_bits(next()).clamp(-1e39, 1e39));
        }
        for &t in &thresholds {
            let t2 = f32_rule_threshold(t);
            let mut probes = vec![t, t.next_up(), t.next_down(), t2, t2.next_up(), t2.next_down()];
            let a = t as f32;
            for f in [a, a.next_up(), a.next_down()] {
                let f = f as f64;
                probes.extend([f, f.next_up(), f.next_down()]);
            }
            for x in probes.into_iter().filter(|x| !x.is_nan()) {
                assert_eq!(x <= t2, f32_rule(x, t), "x={x:e} t={t:e} t'={t2:e}");
            }
        }
    }

    #[test]
    fn tiny_logistic_imports_and_predicts() {
        let json = r#"{"model": "LogisticRegression", "classes": [0, 1], "n_features": 2,
            "coef": [0.5, -1.25], "intercept": 0.1,
            "coef_hex": ["0x1.0000000000000p-1", "-0x1.4000000000000p+0"],
            "reference_rows": [{"x": [1.0, 2.0], "p1": 0.0}]}"#;
        let model = sklearn_logistic_json(json).unwrap();
        assert_eq!(model.classes(), ["0", "1"]);
        assert_eq!(model.signature().feature_names().collect::<Vec<_>>(), ["f0", "f1"]);
        assert_eq!(model.metadata().sample_input.len(), 1);
        let x = ndarray::array![[1.0, 2.0], [-3.0, 0.5]];
        let p = model.predict_proba(&wharf_core::Records::Matrix(x.clone().into())).unwrap();
        for (i, row) in x.rows().into_iter().enumerate() {
            let want = 1.0 / (1.0 + (-(0.1 + 0.5 * row[0] - 1.25 * row[1])).exp());
            assert!((p.get(i, "1").unwrap() - want).abs() < 1e-15);
            assert!((p.get(i, "0").unwrap() - (1.0 - want)).abs() < 1e-15);
        }
        // Round-trips through the artifact format.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.wharf");
        model.save(&path).unwrap();
        assert_eq!(Model::load(&path).unwrap(), model);
    }

    #[test]
    fn tiny_forest_imports_and_predicts_with_the_f32_rule() {
        // Tree 0 splits f1 at 1.0; tree 1 is a single leaf.
        let t = 1.0f64;
        let json = format!(
            r#"{{"classes": [0, 1], "n_features": 2, "trees": [
            {{"children_left": [1, -1, -1], "children_right": [2, -1, -1], "feature": [1, -2, -2],
              "threshold": [{t:?}, -2.0, -2.0], "proba_class1": [0.5, 0.25, 1.0]}},
            {{"children_left": [-1], "children_right": [-1], "feature": [-2],
              "threshold": [-2.0], "proba_class1": [0.5]}}]}}"#
        );
        let model = sklearn_forest_json(&json).unwrap();
        // Row 0 is just above t in f64 but rounds to 1.0f32, so sklearn goes left; row 2 rounds
        // to the next f32 and goes right.
        let x = ndarray::array![[0.0, t.next_up()], [0.0, 2.0], [0.0, 1.0 + 1e-7]];
        let p = model.predict_proba(&wharf_core::Records::Matrix(x.into())).unwrap();
        assert_eq!(p.get(0, "1"), Some((0.25 + 0.5) / 2.0));
        assert_eq!(p.get(1, "1"), Some((1.0 + 0.5) / 2.0));
        assert_eq!(p.get(2, "1"), Some((1.0 + 0.5) / 2.0));
    }

    #[test]
    fn bad_exports_are_typed_errors() {
        let cases = [
            ("{", "logistic"),
            (r#"{"classes": [0, 1], "coef": [1.0], "intercept": "x"}"#, "logistic"),
            (r#"{"classes": [0, 1, 2], "coef": [1.0], "intercept": 0}"#, "logistic"),
            (r#"{"classes": [0, 1], "coef": [1.0], "intercept": 0, "n_features": 3}"#, "logistic"),
            (r#"{"classes": [0, 1], "coef": [[1.0], [2.0]], "intercept": 0}"#, "logistic"),
            (r#"{"classes": [0, 1], "coef": [1.0], "intercept": 0, "coef_hex": ["zz"]}"#, "logistic"),
            (r#"{"classes": [0, 1], "n_features": 1, "trees": []}"#, "forest"),
            (
                r#"{"classes": [0, 1], "n_features": 1, "trees": [{"children_left": [0], "children_right": [0],
                "feature": [0], "threshold": [0.0], "proba_class1": [0.5]}]}"#,
                "forest",
            ),
            (
                r#"{"classes": [0, 1], "n_features": 1, "trees": [{"children_left": [1, -1], "children_right": [7, -1],
                "feature": [0, -2], "threshold": [0.0, -2], "proba_class1": [0.5, 0.5]}]}"#,
                "forest",
            ),
            (
                r#"{"classes": [0, 1], "n_features": 1, "trees": [{"children_left": [1, -1, -1],
                "children_right": [2, -1, -1], "feature": [5, -2, -2], "threshold": [0.0, -2, -2],
                "proba_class1": [0.5, 0.5, 0.5]}]}"#,
                "forest",
            ),
            (
                r#"{"classes": [0, 1], "n_features": 1, "trees": [{"children_left": [-1], "children_right": [-1],
                "feature": [-2], "threshold": [-2], "proba_class1": [1.5]}]}"#,
                "forest",
            ),
            (
                r#"{"classes": [0, 1], "n_features": 1, "trees": [{"children_left": [-1], "children_right": [-1],
                "feature": [-2], "threshold": ["-2"], "proba_class1": [0.5]}]}"#,
                "forest",
            ),
        ];
        for (json, kind) in cases {
            let r = if kind == "logistic" { sklearn_logistic_json(json) } else { sklearn_forest_json(json) };
            match r {
                Err(WharfError::InvalidInput { .. }) | Err(WharfError::Unsupported(_)) => {}
                other => panic!("{json}: {other:?}"),
            }
        }
    }
}
