//! `wharf models import --format onnx` end to end through the binary: scikit-learn models
//! exported by skl2onnx at test time (`WHARF_TEST_TREES_DATA/onnx`, which `cargo xtask test`
//! generates) are imported, scored by `wharf score` on 12,000 rows, and compared with ONNX
//! Runtime's own outputs; broken files are one-line errors that register nothing. Without
//! the data the test says `skipped:` (and fails under `WHARF_TEST_REQUIRE_BACKENDS=1` or
//! `CI=true`).

mod common;

use std::path::{Path, PathBuf};

use common::Sandbox;

const WIDTH: usize = 12;

fn data_dir() -> Option<PathBuf> {
    match std::env::var_os("WHARF_TEST_TREES_DATA") {
        Some(dir) => Some(PathBuf::from(dir).join("onnx")),
        None => {
            let required = std::env::var("WHARF_TEST_REQUIRE_BACKENDS").as_deref() == Ok("1")
                || std::env::var("CI").as_deref() == Ok("true");
            assert!(!required, "WHARF_TEST_TREES_DATA is not set but WHARF_TEST_REQUIRE_BACKENDS=1 or CI=true");
            eprintln!(
                "skipped: WHARF_TEST_TREES_DATA is not set (run cargo xtask test, or the fixture script: python \
                 crates/wharf-trees/tests/fixtures/generate_onnx.py DIR/onnx, then export WHARF_TEST_TREES_DATA=DIR)"
            );
            None
        }
    }
}

fn read_f64(path: &Path) -> Vec<f64> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))).collect()
}

fn csv(names: &[String], x: &[f64]) -> String {
    let mut text = format!("row,{}\n", names.join(","));
    for (i, r) in x.chunks(names.len()).enumerate() {
        let cells: Vec<String> = r.iter().map(|v| if v.is_nan() { String::new() } else { format!("{v}") }).collect();
        text += &format!("{i},{}\n", cells.join(","));
    }
    text
}

fn column(header: &[&str], name: &str) -> usize {
    header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no column {name} in {header:?}"))
}

/// (case, extra import arguments, classes as imported, bit for bit)
const CASES: &[(&str, &[&str], &[&str], bool)] = &[
    ("forest_multiclass", &[], &["0", "1", "2"], true),
    ("boosting_binary", &["--classes", "stays,churns"], &["stays", "churns"], true),
    ("scaler_logreg", &["--format", "onnx"], &["0", "1", "2"], false),
    ("forest_regression", &[], &[], true),
    ("onehot_boosting_binary", &[], &["0", "1"], true),
];

#[test]
fn onnx_models_import_score_like_onnx_runtime_and_bad_files_register_nothing() {
    let Some(dir) = data_dir() else { return };
    let s = Sandbox::new();
    let names: Vec<String> = (0..WIDTH).map(|i| format!("x{i}")).collect();
    for (case, extra, classes, exact) in CASES {
        let file = s.path(&format!("{case}.onnx"));
        std::fs::copy(dir.join(format!("{case}.onnx")), &file).expect("copy");
        let name = case.replace('_', "-");
        let features = names.join(",");
        let mut args =
            vec!["models", "import", file.to_str().expect("UTF-8"), "--name", &name, "--features", &features];
        args.extend_from_slice(extra);
        let v = s.json(&args);
        assert_eq!(v["format"], "onnx", "{case}");
        assert_eq!(v["features"], WIDTH);
        assert_eq!(v["classes"], serde_json::json!(classes), "{case}");
        assert_eq!(v["task"], if classes.is_empty() { "regression" } else { "classification" });

        let x = read_f64(&dir.join(format!("{case}.x.f64")));
        let want = read_f64(&dir.join(format!("{case}.out.f64")));
        let n = x.len() / WIDTH;
        s.write("in.csv", csv(&names, &x));
        s.ok(&["score", "--model", &name, "--input", "in.csv", "--output", "out.csv", "--id", "row"]);
        let text = s.read("out.csv");
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().expect("header").split(',').collect();
        let outputs: Vec<usize> = if classes.is_empty() {
            vec![column(&header, "prediction")]
        } else {
            classes.iter().map(|c| column(&header, &format!("prob_{c}"))).collect()
        };
        let k = outputs.len();
        let mut rows = 0;
        for (i, line) in lines.enumerate() {
            let cells: Vec<&str> = line.split(',').collect();
            assert_eq!(cells[column(&header, "row")], i.to_string());
            assert_row_agrees(case, i, &cells, &outputs, &want[i * k..(i + 1) * k], *exact);
            rows += 1;
        }
        assert_eq!(rows, n, "{case}");
        eprintln!("{case}: wharf score agrees with ONNX Runtime on {n} rows");
    }

    // Broken files: one error line naming the format; nothing registered.
    let good = std::fs::read(dir.join("forest_multiclass.onnx")).expect("read");
    std::fs::write(s.path("cut.onnx"), &good[..good.len() / 2]).expect("write");
    let err = s.error(&["models", "import", "cut.onnx", "--name", "broken"]);
    assert!(err.contains("cut.onnx") && err.contains("onnx"), "{err}");
    s.write("garbage.onnx", "this is not a protobuf at all\n");
    let err = s.error(&["models", "import", "garbage.onnx", "--name", "broken"]);
    assert!(err.contains("onnx"), "{err}");
    let err = s.error(&["models", "import", "forest_multiclass.onnx", "--name", "broken", "--classes", "no,yes"]);
    assert!(err.contains("classes") && err.contains("3 classes"), "{err}");
    let err = s.error(&["models", "import", "forest_regression.onnx", "--name", "broken", "--features", "a,b"]);
    assert!(err.contains("features") && err.contains("12 columns"), "{err}");
    let listed = s.json(&["models", "list"]);
    let mut registered: Vec<&str> =
        listed.as_array().expect("a list").iter().filter_map(|m| m["name"].as_str()).collect();
    registered.sort();
    assert_eq!(
        registered,
        ["boosting-binary", "forest-multiclass", "forest-regression", "onehot-boosting-binary", "scaler-logreg"]
    );
}

/// A CSV cell for a JSON value of the records file: a number or a string as written, an
/// empty cell for `null` (a missing number).
fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[test]
fn string_pipelines_import_and_score_csv_with_strings_like_onnx_runtime() {
    let Some(dir) = data_dir() else { return };
    let s = Sandbox::new();
    // (case, its columns, classes, bit for bit): one input per column, and grouped inputs.
    let cases: &[(&str, &[&str], usize, bool)] = &[
        ("strings_onehot_forest", &["age", "income", "color", "size"], 3, true),
        ("strings_onehot_logreg_multiclass", &["num_0", "num_1", "cat_0", "cat_1"], 3, false),
        ("strings_ordinal_boosting", &["age", "income", "color", "size"], 3, true),
    ];
    for (case, columns, k, exact) in cases {
        let file = s.path(&format!("{case}.onnx"));
        std::fs::copy(dir.join(format!("{case}.onnx")), &file).expect("copy");
        let name = case.replace('_', "-");
        let v = s.json(&["models", "import", file.to_str().expect("UTF-8"), "--name", &name]);
        assert_eq!(v["features"], columns.len(), "{case}");
        // The records ONNX Runtime scored (strings, 5% of them unknown or empty; the trees'
        // with 5% missing numbers) as a CSV.
        let text = std::fs::read_to_string(dir.join(format!("{case}.records.json"))).expect("records");
        let records: Vec<serde_json::Map<String, serde_json::Value>> = serde_json::from_str(&text).expect("json");
        let mut csv = format!("row,{}\n", columns.join(","));
        for (i, r) in records.iter().enumerate() {
            let cells: Vec<String> = columns.iter().map(|c| cell(&r[*c])).collect();
            csv += &format!("{i},{}\n", cells.join(","));
        }
        s.write("strings.csv", csv);
        s.ok(&["score", "--model", &name, "--input", "strings.csv", "--output", "strings_out.csv", "--id", "row"]);
        let want = read_f64(&dir.join(format!("{case}.out.f64")));
        let out = s.read("strings_out.csv");
        let mut lines = out.lines();
        let header: Vec<&str> = lines.next().expect("header").split(',').collect();
        let outputs: Vec<usize> = (0..*k).map(|c| column(&header, &format!("prob_{c}"))).collect();
        let mut rows = 0;
        for (i, line) in lines.enumerate() {
            let cells: Vec<&str> = line.split(',').collect();
            assert_row_agrees(case, i, &cells, &outputs, &want[i * k..(i + 1) * k], *exact);
            rows += 1;
        }
        assert_eq!(rows, records.len(), "{case}");
        eprintln!("{case}: wharf score of a CSV with strings agrees with ONNX Runtime on {rows} rows");
    }
}

/// Row `i` of `wharf score`'s output (`cells`, its outputs in columns `outputs`) against
/// ONNX Runtime's `want`: bit for bit when `exact`, else within 1e-6 relative.
fn assert_row_agrees(case: &str, i: usize, cells: &[&str], outputs: &[usize], want: &[f64], exact: bool) {
    for (c, (j, w)) in outputs.iter().zip(want).enumerate() {
        let got: f64 = cells[*j].parse().expect("a number");
        if exact {
            assert_eq!(got.to_bits(), w.to_bits(), "{case} row {i} output {c}: wharf {got}, ONNX Runtime {w}");
        } else {
            assert!((got - w).abs() <= 1e-6 * got.abs().max(w.abs()) + 1e-9, "{case} row {i}: {got} vs {w}");
        }
    }
}
