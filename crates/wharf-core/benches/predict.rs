//! `LocalModelServer` predict: single row and a 100k × 20 batch, logistic regression and a
//! random forest (100 trees, depth 8), on a seeded synthetic table shaped like the peer
//! benchmarks' (20 numeric features).
//!
//! `cargo bench -p wharf-core --bench predict`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::hint::black_box;
use wharf_core::{Column, CsvOptions, Dataset, Frame, LocalModelServer, ModelServerPort, Records, Trainer};

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

fn bench(c: &mut Criterion) {
    let (train_x, train_y) = table(20_000, 1);
    let data = dataset(&train_x, &train_y);
    let (batch, _) = table(100_000, 2);
    let single = Records::Matrix(batch.slice(ndarray::s![0..1, ..]).to_owned());
    let batch = Records::Matrix(batch);

    let models = [
        ("logistic", Trainer::logistic_regression().fit(&data).expect("logistic")),
        ("forest100_d8", Trainer::random_forest().trees(100).max_depth(Some(8)).fit(&data).expect("forest")),
    ];
    for (name, model) in models {
        let server = LocalModelServer::new();
        server.load(model).expect("load");
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(1));
        group.bench_function("single_row_predict_proba", |b| {
            b.iter(|| black_box(server.predict_proba(black_box(&single)).expect("predict")))
        });
        group.sample_size(10);
        group.throughput(Throughput::Elements(100_000));
        group.bench_function("batch_100k_predict_proba", |b| {
            b.iter_batched(|| (), |_| black_box(server.predict_proba(&batch).expect("predict")), BatchSize::SmallInput)
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
