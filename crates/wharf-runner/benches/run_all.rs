//! Records per second through `run_all`: 3 models + 1 summary, batches of 1,000 records,
//! stored in a SQLite file (one transaction per batch).
//!
//! - `functions/sqlite`: three Rust-function models (the runner's own cost plus SQLite's);
//! - `functions/no-store`: the same without a store, to show the store's share;
//! - `wharf-models/sqlite`: three trained models on the lead-scoring data (logistic
//!   regression, decision tree, 20-tree random forest) scoring the batch as a matrix.
//!
//! ```bash
//! cargo bench -p wharf-runner --bench run_all
//! ```

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde_json::json;
use wharf_ml::{datasets, Trainer};
use wharf_runner::{
    run_all, Builtin, FieldSpec, InputSource, ModelSpec, Record, ResultStore, SqliteResultStore, Status, SummarySpec,
};

const BATCH: usize = 1_000;

fn summary(deps: [(&str, &str); 3], field: &str) -> SummarySpec {
    SummarySpec::builtin("best", "1", deps, Builtin::Max, field).status(Status::Active)
}

fn function_models() -> Vec<ModelSpec> {
    (1..=3)
        .map(|k| {
            ModelSpec::from_fn(format!("m{k}"), "1", move |row| {
                let a = row["a"].as_f64().ok_or("a")?;
                let b = row["b"].as_f64().ok_or("b")?;
                Ok(json!({ "score": (a * k as f64 + b).tanh(), "label": if a > b { "up" } else { "down" } }))
            })
            .field("a", FieldSpec::float())
            .field("b", FieldSpec::int().range(0.0, 1e9))
            .input(InputSource::Shared)
            .status(Status::Active)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut group = c.benchmark_group("run_all");
    group.sample_size(10).throughput(Throughput::Elements(BATCH as u64));

    let records: Vec<Record> = (0..BATCH)
        .map(|i| Record::new(i.to_string(), json!({"a": i as f64 / 7.0, "b": i % 13}).as_object().cloned().unwrap()))
        .collect();
    let models = function_models();
    let summaries = [summary([("m1", "1"), ("m2", "1"), ("m3", "1")], "score")];
    let store = SqliteResultStore::open(dir.path().join("functions.db")).expect("store");
    group.bench_function(BenchmarkId::new("functions", "sqlite"), |b| {
        b.iter(|| run_all(&records, &models, &summaries, Some(&store)).expect("run"))
    });
    group.bench_function(BenchmarkId::new("functions", "no-store"), |b| {
        b.iter(|| run_all(&records, &models, &summaries, None).expect("run"))
    });
    assert!(store.count().expect("count").records == BATCH as u64);

    let data = datasets::lead_scoring();
    let models = vec![
        ModelSpec::from_model("logistic", "1", Trainer::logistic_regression().fit(&data).expect("fit")),
        ModelSpec::from_model("tree", "1", Trainer::decision_tree().max_depth(Some(6)).fit(&data).expect("fit")),
        ModelSpec::from_model("forest", "1", Trainer::random_forest().trees(20).seed(1).fit(&data).expect("fit")),
    ];
    let models: Vec<ModelSpec> =
        models.into_iter().map(|m| m.input(InputSource::Shared).status(Status::Active)).collect();
    let summaries = [summary([("logistic", "1"), ("tree", "1"), ("forest", "1")], "prob_yes")];
    let records: Vec<Record> =
        (0..BATCH).map(|i| Record::new(i.to_string(), data.features.row(i % data.n_rows()))).collect();
    let store = SqliteResultStore::open(dir.path().join("models.db")).expect("store");
    group.bench_function(BenchmarkId::new("wharf-models", "sqlite"), |b| {
        b.iter(|| run_all(&records, &models, &summaries, Some(&store)).expect("run"))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
