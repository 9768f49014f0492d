//! Rows per second scoring 1,000,000 leads in 4 Parquet files, through Ballista's in-process
//! cluster and through plain DataFusion on the same machine. Ignored by default (it is a
//! measurement, and only meaningful in a release build):
//!
//! `cargo test --release -p wharf-ballista --test throughput -- --ignored --nocapture`

mod common;

use std::sync::Arc;
use std::time::Instant;

use ballista_core::extension::SessionConfigExt;
use common::{register_leads, FEATURES};
use wharf_core::{FileRegistry, RegistryPort};
use wharf_datafusion::datafusion::prelude::{SessionConfig, SessionContext};
use wharf_datafusion::sql::{run_script, session};
use wharf_ml::{datasets, Trainer};

const ROWS: usize = 1_000_000;
const FILES: usize = 4;
const RUNS: usize = 3;

/// Writes `ROWS` synthetic leads with the bundled table's columns into `FILES` files.
async fn generate(registry: Arc<dyn RegistryPort>, dir: &std::path::Path) {
    let (ctx, _) = session(registry);
    let per_file = ROWS / FILES;
    for i in 0..FILES {
        let out = dir.join(format!("part-{i}.parquet"));
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
                   FROM generate_series({}, {}))
             TO '{}' STORED AS PARQUET",
            i * per_file + 1,
            (i + 1) * per_file,
            out.display()
        );
        run_script(&ctx, &sql).await.expect("generate the input");
    }
}

/// The median rows/s of `RUNS` runs of `sql`, after one warm-up run.
async fn measure(ctx: &SessionContext, sql: &str) -> f64 {
    run_script(ctx, sql).await.expect("warm-up");
    let mut rates = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        run_script(ctx, sql).await.expect("run");
        rates.push(ROWS as f64 / start.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    rates[RUNS / 2]
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run in release with --ignored --nocapture"]
async fn rows_per_second_ballista_standalone_vs_datafusion() {
    let dir = tempfile::tempdir().expect("dir");
    let registry: Arc<dyn RegistryPort> = Arc::new(FileRegistry::new(dir.path().join("registry")));
    let data = datasets::lead_scoring();
    let forest = Trainer::random_forest().trees(50).max_depth(Some(8)).fit(&data).expect("forest");
    registry.register(&Trainer::logistic_regression().fit(&data).expect("logistic"), "logistic").expect("register");
    registry.register(&forest, "forest50_d8").expect("register");
    let leads = dir.path().join("leads");
    std::fs::create_dir_all(&leads).expect("mkdir");
    generate(registry.clone(), &leads).await;
    let location = format!("{}/", leads.display());

    // The same settings for both: one partition per file, Snappy (as `wharf sql` writes).
    let mut config = SessionConfig::new().with_target_partitions(FILES);
    config.options_mut().execution.parquet.compression = Some("snappy".to_string());
    let local = SessionContext::new_with_config(config.clone());
    wharf_datafusion::register(&local, registry.clone());
    register_leads(&local, &location).await;
    let config = config.with_ballista_standalone_parallelism(2);
    let (cluster, _udfs) = wharf_ballista::standalone_with_config(registry.clone(), config).await.expect("cluster");
    register_leads(&cluster, &location).await;

    eprintln!("{ROWS} rows in {FILES} Parquet files; load average before: {}", load_average());
    for model in ["logistic", "forest50_d8"] {
        // Scoring every row, and only a small aggregate back to the client: the engines'
        // scoring, not the transfer of a million rows to one process.
        let aggregate = format!(
            "SELECT count(*) AS n, sum(get_field(wharf_predict_proba('{model}', {FEATURES}), 'yes')) AS s FROM leads"
        );
        // A scoring job: every row's id and probabilities written to Parquet.
        let out = dir.path().join(format!("scored-{model}"));
        let copy = format!(
            "COPY (SELECT lead_id, wharf_predict_proba('{model}', {FEATURES}) AS p FROM leads) TO '{}/' STORED AS PARQUET",
            out.display()
        );
        for (what, sql) in [("score + aggregate", &aggregate), ("score → Parquet", &copy)] {
            let datafusion = measure(&local, sql).await;
            let ballista = measure(&cluster, sql).await;
            eprintln!(
                "{model:12} {what:18} DataFusion {:>10.0} rows/s   Ballista standalone {:>10.0} rows/s   ({:.2}×)",
                datafusion,
                ballista,
                ballista / datafusion
            );
        }
    }
    eprintln!("load average after: {}", load_average());
}
