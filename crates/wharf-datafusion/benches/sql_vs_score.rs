//! Scoring a 1,000,000-row Parquet file of leads, Parquet out, two ways:
//!
//! - `datafusion_sql`: `COPY (SELECT lead_id, wharf_predict_proba('lead', ...) ...) TO ...`
//!   (and a variant that also writes the label, a second model call per row);
//! - `wharf_score`: `wharf_batch::score_file`, the engine of `wharf score` (id, label and
//!   the class probabilities).
//!
//! With a logistic regression and a 50-tree, depth-8 random forest, trained on the bundled
//! lead-scoring table (2 categorical + 5 numeric features). Throughput is in rows.
//!
//! `cargo bench -p wharf-datafusion --bench sql_vs_score`

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use wharf_batch::{score_file, unregistered_facts, ScoreOptions};
use wharf_core::{FileRegistry, ModelServers, NoOpLineage, RegistryPort};
use wharf_datafusion::sql::{run_script, session};
use wharf_ml::{datasets, Trainer};

const ROWS: usize = 1_000_000;
const FEATURES: &str =
    "source, industry, pages_viewed, minutes_on_site, emails_opened, company_size, days_since_signup";

/// Writes `ROWS` synthetic leads with the bundled table's columns, with DataFusion itself.
fn generate(runtime: &tokio::runtime::Runtime, registry: Arc<dyn RegistryPort>, path: &Path) {
    let sql = format!(
        "COPY (SELECT 'L' || CAST(value AS VARCHAR) AS lead_id,
                 CASE value % 5 WHEN 0 THEN 'cold_email' WHEN 1 THEN 'organic' WHEN 2 THEN 'paid_search'
                                WHEN 3 THEN 'referral' ELSE 'webinar' END AS source,
                 CASE (value * 7) % 5 WHEN 0 THEN 'finance' WHEN 1 THEN 'health' WHEN 2 THEN 'manufacturing'
                                      WHEN 3 THEN 'retail' ELSE 'software' END AS industry,
                 CAST((value * 13) % 25 AS DOUBLE) AS pages_viewed,
                 CAST((value * 31) % 600 AS DOUBLE) / 10.0 AS minutes_on_site,
                 CAST((value * 17) % 12 AS DOUBLE) AS emails_opened,
                 CAST((value * 101) % 500 + 5 AS DOUBLE) AS company_size,
                 CAST((value * 29) % 365 AS DOUBLE) AS days_since_signup
               FROM generate_series(1, {ROWS}))
         TO '{}' STORED AS PARQUET",
        path.display()
    );
    let (ctx, _) = session(registry);
    runtime.block_on(run_script(&ctx, &sql)).expect("generate the input");
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("dir");
    let registry = Arc::new(FileRegistry::new(dir.path().join("registry")));
    let data = datasets::lead_scoring();
    let models = [
        ("logistic", Trainer::logistic_regression().fit(&data).expect("logistic")),
        ("forest50_d8", Trainer::random_forest().trees(50).max_depth(Some(8)).fit(&data).expect("forest")),
    ];
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let input = dir.path().join("leads.parquet");
    generate(&runtime, registry.clone(), &input);

    for (name, model) in &models {
        registry.register(model, name).expect("register");
        // The session writes Snappy, as `wharf score` does.
        let (ctx, _udfs) = session(registry.clone());
        let mut group = c.benchmark_group(format!("score_1m/{name}"));
        group.throughput(Throughput::Elements(ROWS as u64)).sample_size(10);

        let proba_only = format!(
            "COPY (SELECT lead_id, wharf_predict_proba('{name}', {FEATURES}) AS p FROM '{}') TO '{}' STORED AS PARQUET",
            input.display(),
            dir.path().join("sql_proba.parquet").display()
        );
        group.bench_function("datafusion_sql_proba", |b| {
            b.iter(|| black_box(runtime.block_on(run_script(&ctx, &proba_only)).expect("sql")))
        });
        let label_and_proba = format!(
            "COPY (SELECT lead_id, wharf_predict('{name}', {FEATURES}) AS prediction, \
             wharf_predict_proba('{name}', {FEATURES}) AS p FROM '{}') TO '{}' STORED AS PARQUET",
            input.display(),
            dir.path().join("sql_label_proba.parquet").display()
        );
        group.bench_function("datafusion_sql_label_proba", |b| {
            b.iter(|| black_box(runtime.block_on(run_script(&ctx, &label_and_proba)).expect("sql")))
        });

        let facts = unregistered_facts(model, name);
        let server = ModelServers::local().serve(model.clone()).expect("serve");
        let options = ScoreOptions::new(&input, dir.path().join("score.parquet")).ids(["lead_id".to_string()]);
        group.bench_function("wharf_score", |b| {
            b.iter(|| {
                black_box(
                    score_file(server.as_ref(), &facts, &options, &NoOpLineage::default(), &mut |_| {}).expect("score"),
                )
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
