//! The tree rows of `cargo xtask bench-peers`, as JSON: Wharf's time on the models
//! `tests/fixtures/bench.py` trained (XGBoost and LightGBM, 500 trees of depth 6; a
//! 100-tree scikit-learn forest exported to ONNX), on the rows that script timed the
//! libraries and ONNX Runtime on, one thread.
//!
//! `WHARF_BENCH_TREES_DIR=DIR cargo bench -p wharf-trees --features onnx --bench peers_trees`
//!
//! Prints one JSON object: per model, the 100,000-row batch (`rows_per_s_median`, median of
//! 7 runs) and one row (`median_us`, median of 31 runs of 2,000 calls each).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use serde_json::{json, Value};

const FEATURES: usize = 20;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `batch` scores all rows into its buffer; `row` scores row `i`.
fn measure(rows: usize, mut batch: impl FnMut(), mut row: impl FnMut(usize)) -> Value {
    batch();
    let batch_s = median(
        (0..7)
            .map(|_| {
                let start = Instant::now();
                batch();
                start.elapsed().as_secs_f64()
            })
            .collect(),
    );
    let row_us = median(
        (0..31)
            .map(|k| {
                let start = Instant::now();
                for i in 0..2000 {
                    row((k * 2000 + i) % rows);
                }
                start.elapsed().as_secs_f64() * 1e6 / 2000.0
            })
            .collect(),
    );
    json!({ "batch": { "rows_per_s_median": rows as f64 / batch_s, "seconds_median": batch_s },
            "row": { "median_us": row_us } })
}

fn main() {
    let Some(dir) = std::env::var_os("WHARF_BENCH_TREES_DIR").map(PathBuf::from) else {
        eprintln!("skipped: WHARF_BENCH_TREES_DIR is not set (python tests/fixtures/bench.py DIR writes it)");
        println!("{{}}");
        return;
    };
    let bytes = std::fs::read(dir.join("bench.x.f64")).expect("bench.x.f64");
    let x: Vec<f64> = bytes.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))).collect();
    let rows = x.len() / FEATURES;
    let mut result = serde_json::Map::new();
    for (name, model) in [
        ("xgboost_500", wharf_trees::xgboost::read(&dir.join("bench_xgb.json")).expect("bench_xgb.json")),
        ("lightgbm_500", wharf_trees::lightgbm::read(&dir.join("bench_lgb.txt")).expect("bench_lgb.txt")),
    ] {
        let e = &model.ensemble;
        let mut out = vec![0.0; rows * e.n_groups()];
        let mut one = vec![0.0; e.n_groups()];
        let v = measure(
            rows,
            || e.predict(black_box(&x), FEATURES, &mut out).expect("predict"),
            |i| e.predict_row(black_box(&x[i * FEATURES..(i + 1) * FEATURES]), &mut one).expect("row"),
        );
        result.insert(name.into(), v);
    }
    let onnx = dir.join("bench_rf.onnx");
    if onnx.is_file() {
        let model = wharf_trees::onnx::read(&onnx).expect("bench_rf.onnx");
        let p = &model.pipeline;
        let mut out = vec![0.0; rows * p.n_outputs()];
        let mut one = vec![0.0; p.n_outputs()];
        let v = measure(
            rows,
            || p.predict(black_box(&x), &mut out).expect("predict"),
            |i| p.predict(black_box(&x[i * FEATURES..(i + 1) * FEATURES]), &mut one).expect("row"),
        );
        result.insert("onnx_forest_100".into(), v);
    }
    println!("{}", Value::Object(result));
}
