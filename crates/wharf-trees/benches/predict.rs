//! Scoring speed: 500 trees of depth 6 on 20 features, a 100,000-row batch and a single row,
//! on one thread.
//!
//! `cargo bench -p wharf-trees --bench predict`
//!
//! Always: synthetic complete trees under XGBoost's and LightGBM's rules. With
//! `WHARF_BENCH_TREES_DIR` set to the directory `tests/fixtures/bench.py` wrote, also the
//! real XGBoost and LightGBM models trained there, and (with the feature `onnx`) its
//! 100-tree scikit-learn forest through ONNX, on the same rows the script timed the libraries
//! and ONNX Runtime on (its `python_timings.json` holds their times, for the ratios).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use wharf_trees::{lightgbm, xgboost, Ensemble, EnsembleSpec, Link, Node, Semantics, Tree};

const FEATURES: usize = 20;
const ROWS: usize = 100_000;
const TREES: usize = 500;
const DEPTH: u32 = 6;

/// A small deterministic generator (no dependency needed for noise).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A complete tree of `depth` in heap order with random splits.
fn tree(rng: &mut Lcg) -> Tree {
    let internal = (1usize << DEPTH) - 1;
    let mut nodes = Vec::new();
    for i in 0..internal {
        let threshold = ((rng.next() * 4.0 - 2.0) as f32) as f64;
        let feature = (rng.next() * FEATURES as f64) as u32;
        nodes.push(Node::numeric(feature, threshold, (2 * i + 1) as u32, (2 * i + 2) as u32, rng.next() < 0.5));
    }
    for _ in 0..=internal {
        nodes.push(Node::leaf(((rng.next() - 0.5) * 0.2) as f32 as f64));
    }
    Tree { group: 0, nodes }
}

fn synthetic(semantics: Semantics) -> Ensemble {
    let mut rng = Lcg(7);
    let trees = (0..TREES).map(|_| tree(&mut rng)).collect();
    Ensemble::new(EnsembleSpec {
        semantics,
        n_features: FEATURES,
        base_score: vec![0.0],
        link: Link::Sigmoid,
        average: false,
        trees,
    })
    .expect("synthetic ensemble")
}

fn rows() -> Vec<f64> {
    let mut rng = Lcg(11);
    (0..ROWS * FEATURES).map(|_| rng.next() * 4.0 - 2.0).collect()
}

fn run(c: &mut Criterion, name: &str, model: &Ensemble, x: &[f64]) {
    let rows = x.len() / FEATURES;
    let mut out = vec![0.0; rows * model.n_groups()];
    let mut group = c.benchmark_group(format!("{name} ({})", model.compiled_kind()));
    group.sample_size(10).measurement_time(Duration::from_secs(8)).warm_up_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(rows as u64));
    group.bench_function(format!("batch {rows} rows"), |b| {
        b.iter(|| model.predict(black_box(x), FEATURES, &mut out).expect("predict"))
    });
    group.throughput(Throughput::Elements(1));
    let mut one = vec![0.0; model.n_groups()];
    group.bench_function("single row", |b| {
        let mut r = 0;
        b.iter(|| {
            r = (r + 1) % rows;
            model.predict_row(black_box(&x[r * FEATURES..(r + 1) * FEATURES]), &mut one).expect("row");
        })
    });
    group.finish();
}

fn bench(c: &mut Criterion) {
    let x = rows();
    run(c, "synthetic xgboost rules", &synthetic(Semantics::XGBoost), &x);
    run(c, "synthetic lightgbm rules", &synthetic(Semantics::LightGBM), &x);
    if let Some(dir) = std::env::var_os("WHARF_BENCH_TREES_DIR").map(std::path::PathBuf::from) {
        let bytes = std::fs::read(dir.join("bench.x.f64")).expect("bench.x.f64");
        let x: Vec<f64> = bytes.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))).collect();
        let xgb = xgboost::read(&dir.join("bench_xgb.json")).expect("bench_xgb.json");
        run(c, "xgboost model", &xgb.ensemble, &x);
        let lgb = lightgbm::read(&dir.join("bench_lgb.txt")).expect("bench_lgb.txt");
        run(c, "lightgbm model", &lgb.ensemble, &x);
        #[cfg(feature = "onnx")]
        if dir.join("bench_rf.onnx").is_file() {
            onnx_forest(c, &dir.join("bench_rf.onnx"), &x);
        }
    } else {
        eprintln!("WHARF_BENCH_TREES_DIR is not set: only the synthetic ensembles are measured");
    }
}

/// The ONNX forest through the whole compiled pipeline (`f32` input rounding, the trees,
/// the two-class form), as `wharf score` runs it.
#[cfg(feature = "onnx")]
fn onnx_forest(c: &mut Criterion, path: &std::path::Path, x: &[f64]) {
    let model = wharf_trees::onnx::read(path).expect("bench_rf.onnx");
    let pipeline = &model.pipeline;
    let rows = x.len() / FEATURES;
    let k = pipeline.n_outputs();
    let mut out = vec![0.0; rows * k];
    let mut group = c.benchmark_group("onnx forest (100 trees)");
    group.sample_size(10).measurement_time(Duration::from_secs(8)).warm_up_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(rows as u64));
    group.bench_function(format!("batch {rows} rows"), |b| {
        b.iter(|| pipeline.predict(black_box(x), &mut out).expect("predict"))
    });
    group.throughput(Throughput::Elements(1));
    let mut one = vec![0.0; k];
    group.bench_function("single row", |b| {
        let mut r = 0;
        b.iter(|| {
            r = (r + 1) % rows;
            pipeline.predict(black_box(&x[r * FEATURES..(r + 1) * FEATURES]), &mut one).expect("row");
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
