//! `LocalModelServer::predict_proba`: single row and a 100k × 20 batch (on one thread and on
//! rayon's default pool), for logistic regression and a random forest (100 trees, depth 8)
//! trained by Wharf on a seeded synthetic table shaped like the peer benchmarks' (20 numeric
//! features), and for the peers' own fitted scikit-learn models imported into Wharf, on the
//! peers' score rows, when their data is present.
//!
//! `cargo bench -p wharf-core --bench predict`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::hint::black_box;
use wharf_core::{Column, Frame, LocalModelServer, Model, ModelServerPort, Records};
use wharf_ml::{CsvOptions, Dataset, Trainer};

const FEATURES: usize = 20;

/// A linearly separable-ish table: the label depends on a few informative features + noise.
fn table(rows: usize, seed: u64) -> (Array2<f64>, Vec<String>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let weights: Vec<f64> = (0..FEATURES).map(|j| if j < 6 { 1.0 - j as f64 * 0.3 } else { 0.0 }).collect();
    let mut x = Array2::zeros((rows, FEATURES));
    let mut y = Vec::with_capacity(rows);
    for i in 0..rows {
        let mut z = 0.0;
        for j in 0..FEATURES {
            let v: f64 = rng.gen_range(-2.0..2.0);
            x[(i, j)] = v;
            z += v * weights[j];
        }
        z += rng.gen_range(-1.0..1.0);
        y.push(if z > 0.0 { "1".to_string() } else { "0".to_string() });
    }
    (x, y)
}

fn dataset(x: &Array2<f64>, y: &[String]) -> Dataset {
    let mut frame = Frame::new();
    for j in 0..FEATURES {
        frame.push(format!("f{j}"), Column::Numeric(x.column(j).to_vec())).expect("column");
    }
    frame.push("label", Column::Text(y.iter().cloned().map(Some).collect())).expect("label");
    Dataset::from_frame("bench", frame, &CsvOptions { target: Some("label".into()), ..CsvOptions::default() })
        .expect("dataset")
}

/// A named model to benchmark.
type Case = (&'static str, Model);

/// The peers' fitted scikit-learn models, imported, with their 100k score rows, when the peer
/// data is present (`$PEERS_DATA`, default `/tmp/peers-data`).
fn peer_models() -> Option<(Vec<Case>, Array2<f64>)> {
    let dir = std::path::PathBuf::from(std::env::var("PEERS_DATA").unwrap_or_else(|_| "/tmp/peers-data".into()));
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
    let logistic = wharf_ml::import::sklearn_logistic_json(&read("logistic.json")?).ok()?;
    let forest = wharf_ml::import::sklearn_forest_json(&read("rf_trees.json")?).ok()?;
    let text = read("score.csv")?;
    let mut rows = 0;
    let mut values = Vec::new();
    for line in text.lines().skip(1).filter(|l| !l.is_empty()) {
        values.extend(line.split(',').take(FEATURES).map(|v| v.parse::<f64>().unwrap_or(f64::NAN)));
        rows += 1;
    }
    let x = Array2::from_shape_vec((rows, FEATURES), values).ok()?;
    Some((vec![("peer_logistic", logistic), ("peer_forest100_d8", forest)], x))
}

fn bench(c: &mut Criterion) {
    let (train_x, train_y) = table(20_000, 1);
    let data = dataset(&train_x, &train_y);
    let (synthetic, _) = table(100_000, 2);
    let mut cases = vec![
        ("logistic", Trainer::logistic_regression().fit(&data).expect("logistic"), synthetic.clone()),
        ("forest100_d8", Trainer::random_forest().trees(100).max_depth(Some(8)).fit(&data).expect("forest"), synthetic),
    ];
    match peer_models() {
        Some((models, x)) => cases.extend(models.into_iter().map(|(name, m)| (name, m, x.clone()))),
        None => eprintln!("peer data not found: benchmarking the synthetic models only"),
    }
    let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("pool");
    for (name, model, x) in cases {
        let single = Records::Matrix(x.slice(ndarray::s![0..1, ..]).to_owned().into());
        let batch = Records::Matrix(x.into());
        let server = LocalModelServer::new();
        server.load(model).expect("load");
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(1));
        group.bench_function("single_row_predict_proba", |b| {
            b.iter(|| black_box(server.predict_proba(black_box(&single)).expect("predict")))
        });
        group.sample_size(10);
        group.throughput(Throughput::Elements(batch.len() as u64));
        group.bench_function("batch_100k_1thread", |b| {
            b.iter(|| one_thread.install(|| black_box(server.predict_proba(&batch).expect("predict"))))
        });
        group.bench_function("batch_100k_default_threads", |b| {
            b.iter(|| black_box(server.predict_proba(&batch).expect("predict")))
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
