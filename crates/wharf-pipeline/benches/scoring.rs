//! Records per second through the four-stage scoring pipe (enrich → featurize → predict →
//! route_by_confidence) with a logistic model, on 1 and 2 worker threads, 10,000 records in
//! batches of 100.
//!
//! - `miss`: write-through off, so every record is featurized from its raw data.
//! - `hit`: the cache already holds every record's features (the steady state of
//!   write-through), so featurize passes them on.
//!
//! `cargo bench -p wharf-pipeline --bench scoring`

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use wharf_ml::Trainer;
use wharf_pipeline::scoring::{scoring_pipeline, FeatureStore, ScoringOptions};
use wharf_pipeline::{demo, RunContext, Sessions};

const RECORDS: u64 = 10_000;

fn scoring(c: &mut Criterion) {
    let sessions = Arc::new(Sessions::new());
    let report = sessions.open("bench").train(&Trainer::logistic_regression(), &demo::dataset_a(42)).expect("trains");
    let records = demo::test_records(RECORDS, 7);
    let ctx = RunContext::new().session("bench").meta("model_id", report.model_id.as_str());

    let mut group = c.benchmark_group("scoring_pipe");
    group.throughput(Throughput::Elements(RECORDS));
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    for (label, write_through) in [("miss", false), ("hit", true)] {
        for workers in [1, 2] {
            let cache = Arc::new(FeatureStore::new("bench"));
            let options =
                ScoringOptions { batch_size: 100, workers: Some(workers), write_through, ..Default::default() };
            let pipe = scoring_pipeline(cache, sessions.clone(), &options).expect("valid");
            // Warm-up run: fills the cache in the write-through case; checks the output.
            let out = pipe.run(records.clone(), ctx.clone()).expect("runs");
            assert_eq!(out.len() as u64, RECORDS);
            // The input is cloned outside the timed part: only the run is measured.
            group.bench_function(format!("{label}/workers={workers}"), |b| {
                b.iter_batched(
                    || records.clone(),
                    |input| pipe.run(input, ctx.clone()).expect("runs"),
                    BatchSize::LargeInput,
                )
            });
        }
    }
    group.finish();
}

criterion_group!(benches, scoring);
criterion_main!(benches);
