//! The models and data both Ballista tests score, and the single-machine answer they must
//! reproduce.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use wharf_core::{FileRegistry, RegistryPort};
use wharf_datafusion::datafusion::arrow::array::RecordBatch;
use wharf_datafusion::datafusion::prelude::{ParquetReadOptions, SessionContext};
use wharf_datafusion::sql;
use wharf_ml::{datasets, Trainer};

/// The lead-scoring features, in the models' signature order.
pub const FEATURES: &str =
    "source, industry, pages_viewed, minutes_on_site, emails_opened, company_size, days_since_signup";

/// How many Parquet files the 1,200 leads are split into: one scan task each.
pub const FILES: usize = 4;

/// The query both engines run: a label and the probabilities from a logistic regression, and
/// a random forest's label, for every lead.
pub fn scoring_sql() -> String {
    format!(
        "SELECT lead_id, wharf_predict('lead', {FEATURES}) AS label, \
         wharf_predict_proba('lead', {FEATURES}) AS p, \
         wharf_predict('lead_rf@champion', {FEATURES}) AS rf_label \
         FROM leads ORDER BY lead_id"
    )
}

/// A file registry with `lead` (logistic regression) and `lead_rf` (random forest, alias
/// `champion`), and the lead-scoring data as [`FILES`] Parquet files in `leads/`.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub registry: Arc<dyn RegistryPort>,
}

impl Fixture {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let registry = Arc::new(FileRegistry::new(dir.path().join("registry")));
        let data = datasets::lead_scoring();
        let logistic = Trainer::logistic_regression().fit(&data).expect("fit logistic");
        registry.register(&logistic, "lead").expect("register lead");
        let forest = Trainer::random_forest().trees(8).seed(11).fit(&data).expect("fit forest");
        let version = registry.register(&forest, "lead_rf").expect("register lead_rf");
        registry.set_alias("lead_rf", "champion", &version).expect("alias");
        let fixture = Fixture { dir, registry };
        fixture.write_parquet().await;
        fixture
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn registry_dir(&self) -> PathBuf {
        self.path("registry")
    }

    /// The directory of Parquet files, as a table location (with the trailing slash that
    /// makes DataFusion read it as a directory).
    pub fn leads(&self) -> String {
        format!("{}/", self.path("leads").to_str().expect("utf-8 path"))
    }

    async fn write_parquet(&self) {
        let csv = self.path("leads.csv");
        std::fs::write(&csv, datasets::LEAD_SCORING_CSV).expect("write csv");
        std::fs::create_dir_all(self.path("leads")).expect("mkdir");
        let (ctx, _udfs) = sql::session(Arc::clone(&self.registry));
        let csv = csv.to_str().expect("utf-8 path");
        let per_file = 1200 / FILES;
        for i in 0..FILES {
            let out = self.path("leads").join(format!("part-{i}.parquet"));
            let out = out.to_str().expect("utf-8 path");
            sql::run_script(
                &ctx,
                &format!(
                    "COPY (SELECT * FROM '{csv}' ORDER BY lead_id LIMIT {per_file} OFFSET {}) \
                     TO '{out}' STORED AS PARQUET",
                    i * per_file
                ),
            )
            .await
            .unwrap_or_else(|e| panic!("writing {out}: {e}"));
        }
    }

    /// The single-machine answer: the same query through plain DataFusion.
    pub async fn expected(&self) -> Vec<serde_json::Value> {
        let (ctx, _udfs) = sql::session(Arc::clone(&self.registry));
        register_leads(&ctx, &self.leads()).await;
        let batches = sql::run_script(&ctx, &scoring_sql()).await.expect("single-machine query");
        rows(&batches)
    }
}

/// Registers the Parquet directory as table `leads`.
pub async fn register_leads(ctx: &SessionContext, location: &str) {
    ctx.register_parquet("leads", location, ParquetReadOptions::default()).await.expect("register parquet");
}

/// The rows as JSON objects. Numbers are written with the shortest text that reads back to
/// the same `f64`, so equal JSON means bit-for-bit equal scores.
pub fn rows(batches: &[RecordBatch]) -> Vec<serde_json::Value> {
    match sql::to_json(batches).expect("to json") {
        serde_json::Value::Array(rows) => rows,
        other => panic!("not an array: {other}"),
    }
}

/// Asserts `actual` equals `expected` row by row, naming the first difference.
pub fn assert_same_rows(actual: &[serde_json::Value], expected: &[serde_json::Value]) {
    assert_eq!(actual.len(), expected.len(), "row count");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert_eq!(a, e, "row {i} differs");
    }
}

/// Files under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}
