//! `score_file` end to end on a generated 100k × 20 table: file in, scored file out, for
//! CSV → CSV and Parquet → Parquet, with a logistic regression and a 100-tree, depth-8
//! random forest. Throughput is in rows.
//!
//! `cargo bench -p wharf-batch --bench score_file`
//!
//! The side-by-side comparison with scikit-learn on the peers' table is a whole-command
//! benchmark instead (`peer_score.py` in this directory explains it).

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use parquet::arrow::ArrowWriter;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use wharf_batch::{score_file, unregistered_facts, ScoreOptions};
use wharf_core::{Column, Frame, ModelServers, NoOpLineage};
use wharf_ml::{CsvOptions, Dataset, Trainer};

const FEATURES: usize = 20;
const ROWS: usize = 100_000;

/// Columns of a seeded table whose label depends on a few features plus noise.
fn table(rows: usize, seed: u64) -> (Vec<Vec<f64>>, Vec<String>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut columns: Vec<Vec<f64>> = (0..FEATURES).map(|_| Vec::with_capacity(rows)).collect();
    let mut labels = Vec::with_capacity(rows);
    for _ in 0..rows {
        let mut z = rng.gen_range(-1.0..1.0);
        for (j, column) in columns.iter_mut().enumerate() {
            let v: f64 = rng.gen_range(-2.0..2.0);
            column.push(v);
            if j < 6 {
                z += v * (1.0 - j as f64 * 0.3);
            }
        }
        labels.push(if z > 0.0 { "1" } else { "0" }.to_string());
    }
    (columns, labels)
}

fn write_csv(path: &Path, columns: &[Vec<f64>]) {
    let mut writer = csv::Writer::from_path(path).expect("csv");
    writer.write_record((0..FEATURES).map(|j| format!("f{j}"))).expect("header");
    for i in 0..columns[0].len() {
        writer.write_record(columns.iter().map(|c| format!("{:?}", c[i]))).expect("row");
    }
    writer.flush().expect("flush");
}

fn write_parquet(path: &Path, columns: &[Vec<f64>]) {
    let schema = Arc::new(Schema::new(
        (0..FEATURES).map(|j| Field::new(format!("f{j}"), DataType::Float64, false)).collect::<Vec<_>>(),
    ));
    let arrays: Vec<ArrayRef> = columns.iter().map(|c| Arc::new(Float64Array::from(c.clone())) as ArrayRef).collect();
    let batch = RecordBatch::try_new(schema.clone(), arrays).expect("batch");
    let mut writer = ArrowWriter::try_new(std::fs::File::create(path).expect("file"), schema, None).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
}

fn bench(c: &mut Criterion) {
    let (train, labels) = table(20_000, 1);
    let mut frame = Frame::new();
    for (j, column) in train.into_iter().enumerate() {
        frame.push(format!("f{j}"), Column::Numeric(column)).expect("column");
    }
    frame.push("label", Column::Text(labels.into_iter().map(Some).collect())).expect("label");
    let data =
        Dataset::from_frame("bench", frame, &CsvOptions { target: Some("label".into()), ..CsvOptions::default() })
            .expect("dataset");

    let dir = tempfile::tempdir().expect("dir");
    let (score, _) = table(ROWS, 2);
    write_csv(&dir.path().join("in.csv"), &score);
    write_parquet(&dir.path().join("in.parquet"), &score);

    let models = [
        ("logistic", Trainer::logistic_regression().fit(&data).expect("logistic")),
        ("forest100_d8", Trainer::random_forest().trees(100).max_depth(Some(8)).fit(&data).expect("forest")),
    ];
    for (name, model) in &models {
        let facts = unregistered_facts(model, name);
        let server = ModelServers::local().serve(model.clone()).expect("serve");
        let mut group = c.benchmark_group(format!("score_file/{name}"));
        group.throughput(Throughput::Elements(ROWS as u64)).sample_size(10);
        for ext in ["csv", "parquet"] {
            let options =
                ScoreOptions::new(dir.path().join(format!("in.{ext}")), dir.path().join(format!("out.{ext}")));
            group.bench_function(format!("{ext}_100k"), |b| {
                b.iter(|| {
                    black_box(score_file(server.as_ref(), &facts, &options, &NoOpLineage::default(), &mut |_| {}))
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
