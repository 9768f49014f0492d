//! Wharf's side of the tuning comparison with scikit-learn's `GridSearchCV`
//! (`xtask/python/tune_vs_sklearn.py` drives both and prints the table in the guide's
//! tuning page).
//!
//! ```text
//! tune_vs_sklearn DIR
//! ```
//!
//! For each bundled classification table: writes `DIR/NAME.csv` (features and target) and
//! prints one JSON line with the stratified 5-fold assignment Wharf uses (`test_fold[i]` is
//! row `i`'s test fold, for scikit-learn's `PredefinedSplit`), the declared logistic space's
//! grid search on those folds (each trial's mean and std), and its wall time (best of three);
//! then a successive-halving search of 27 log-uniform draws of `l2` (factor 3): its
//! candidates, its first round's rows, its winner and its time.

use std::path::Path;
use std::time::Instant;

use wharf_ml::select::{search, Folds, Search, SearchOptions};
use wharf_ml::{datasets, Dataset, Trainer};

type Failure = Box<dyn std::error::Error>;

fn write_csv(data: &Dataset, path: &Path) -> Result<(), Failure> {
    let mut out = csv::Writer::from_path(path)?;
    let (target, labels) = data.target.as_ref().ok_or("no target")?;
    let columns = data.features.columns();
    let mut header: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    header.push(target);
    out.write_record(&header)?;
    for i in 0..data.n_rows() {
        let mut row: Vec<String> = columns.iter().map(|(_, c)| c.text_at(i)).collect();
        row.push(labels.text_at(i));
        out.write_record(&row)?;
    }
    out.flush()?;
    Ok(())
}

fn main() -> Result<(), Failure> {
    let dir = std::env::args().nth(1).ok_or("usage: tune_vs_sklearn DIR")?;
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir)?;
    let tables = [
        ("breast_cancer", datasets::breast_cancer(), "roc_auc"),
        ("lead_scoring", datasets::lead_scoring(), "roc_auc"),
        ("iris", datasets::iris(), "accuracy"),
    ];
    for (name, data, metric) in tables {
        write_csv(&data, &dir.join(format!("{name}.csv")))?;
        let folds = Folds::stratified(5).seed(42);
        let mut test_fold = vec![0usize; data.n_rows()];
        for (f, split) in folds.split(&data)?.iter().enumerate() {
            split.test.iter().for_each(|&i| test_fold[i] = f);
        }
        let trainer = Trainer::logistic_regression();
        let options = SearchOptions { strategy: Search::Grid, folds, metric: metric.into(), seed: 42 };
        // The best of three runs, as for scikit-learn (whose first run also starts its workers).
        let mut seconds = f64::INFINITY;
        let mut report = None;
        for _ in 0..3 {
            let start = Instant::now();
            report = Some(search(&trainer, &data, &trainer.param_space(), &options, &|_| {})?);
            seconds = seconds.min(start.elapsed().as_secs_f64());
        }
        let report = report.ok_or("no search ran")?;
        let trials: Vec<serde_json::Value> = report
            .trials
            .iter()
            .map(|t| {
                let (mean, std) = match &t.outcome {
                    wharf_ml::select::Outcome::Scored { cv, score } => (Some(*score), cv.std.get(metric).copied()),
                    _ => (None, None),
                };
                serde_json::json!({ "l2": t.params["l2"], "mean": mean, "std": std })
            })
            .collect();
        // Successive halving over 27 log-uniform draws of l2, factor 3.
        let space = wharf_ml::select::ParamSpace::from_toml("l2 = { low = 0.001, high = 100.0, log = true }")?;
        let halving = SearchOptions {
            strategy: Search::Halving { trials: 27, factor: 3 },
            folds: Folds::stratified(5).seed(42),
            metric: metric.into(),
            seed: 42,
        };
        let mut halving_seconds = f64::INFINITY;
        let mut halved = None;
        for _ in 0..3 {
            let start = Instant::now();
            halved = Some(search(&trainer, &data, &space, &halving, &|_| {})?);
            halving_seconds = halving_seconds.min(start.elapsed().as_secs_f64());
        }
        let halved = halved.ok_or("no search ran")?;
        let candidates: Vec<&str> =
            halved.trials.iter().filter(|t| t.round == 0).map(|t| t.params["l2"].as_str()).collect();
        let first_rows = halved.trials.iter().map(|t| t.rows).min().unwrap_or(0);
        let line = serde_json::json!({
            "table": name,
            "metric": metric,
            "test_fold": test_fold,
            "trials": trials,
            "best": { "l2": report.best().params["l2"], "mean": report.best().score() },
            "seconds": seconds,
            "halving": {
                "candidates": candidates,
                "min_rows": first_rows,
                "trials": halved.trials.len(),
                "best": { "l2": halved.best().params["l2"], "mean": halved.best().score() },
                "seconds": halving_seconds,
            },
        });
        println!("{line}");
    }
    Ok(())
}
