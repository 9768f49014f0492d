//! Wharf's side of the peer benchmarks' in-process rows, on the peers' own data and models.
//!
//! Does what the peers' `inproc_bench.py` does for scikit-learn, with the same sample counts
//! and the same JSON keys, so the peers' `summarize.py --ours-inproc` (and `cargo xtask
//! bench-peers`) can put the two side by side: the fitted `logistic.json` and `rf_trees.json`
//! imported into Wharf, the 100k × 20 score matrix from `score_X.npy`, and before any timing
//! a check that Wharf reproduces scikit-learn's probabilities on all rows (logistic within
//! 1e-9, the forest exactly). Prints one JSON line on stdout.
//!
//! `cargo bench -p wharf-ml --bench peers` (needs the peer data in `$PEERS_DATA`, default
//! `/tmp/peers-data`; without it, it says so and exits successfully).

use std::path::{Path, PathBuf};
use std::time::Instant;

use ndarray::{s, Array2};
use serde_json::{json, Value};
use wharf_core::{LocalModelServer, Model, ModelServerPort, Records};
use wharf_ml::import::{sklearn_forest_json, sklearn_logistic_json};

#[path = "support/npy.rs"]
mod npy;
use npy::{read_npy, Failure};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(v: &[f64], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * q).round() as usize]
}

/// P(y=1) for every row, through the model server a user would call.
fn p1(server: &LocalModelServer, x: &Records) -> Result<Vec<f64>, Failure> {
    let proba = server.predict_proba(x)?;
    let j = proba.classes.iter().position(|c| c == "1").ok_or("no class 1")?;
    Ok(proba.values.column(j).to_vec())
}

/// Single-row latency: `calls` distinct rows after `warmup` calls, each call timed alone.
fn single_row(server: &LocalModelServer, x: &Array2<f64>, warmup: usize, calls: usize) -> Result<Value, Failure> {
    let rows: Vec<Records> = (0..warmup + calls)
        .map(|i| Records::Matrix(x.slice(s![i % x.nrows()..i % x.nrows() + 1, ..]).to_owned().into()))
        .collect();
    let mut times = Vec::with_capacity(calls);
    for (i, row) in rows.iter().enumerate() {
        let start = Instant::now();
        let p = server.predict_proba(row)?;
        let us = start.elapsed().as_secs_f64() * 1e6;
        std::hint::black_box(p);
        if i >= warmup {
            times.push(us);
        }
    }
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    Ok(json!({"median_us": median(times.clone()), "p90_us": percentile(&times, 0.9),
              "p99_us": percentile(&times, 0.99), "mean_us": mean, "calls": calls}))
}

/// Batch throughput: the median of `reps` calls on the whole matrix after one warm-up.
fn batch(server: &LocalModelServer, x: &Records, reps: usize) -> Result<Value, Failure> {
    std::hint::black_box(server.predict_proba(x)?);
    let mut secs = Vec::with_capacity(reps);
    for _ in 0..reps {
        let start = Instant::now();
        std::hint::black_box(server.predict_proba(x)?);
        secs.push(start.elapsed().as_secs_f64());
    }
    let rows = x.len() as f64;
    let best = secs.iter().copied().fold(f64::INFINITY, f64::min);
    Ok(json!({"rows_per_s_median": rows / median(secs.clone()), "seconds_median": median(secs),
              "rows_per_s_best": rows / best, "reps": reps}))
}

/// Loading the saved artifact: median of `reps` loads.
fn artifact_load(model: &Model, dir: &Path, name: &str, reps: usize) -> Result<Value, Failure> {
    let path = dir.join(name);
    model.save(&path)?;
    let mut us = Vec::with_capacity(reps);
    for _ in 0..reps {
        let start = Instant::now();
        std::hint::black_box(Model::load(&path)?);
        us.push(start.elapsed().as_secs_f64() * 1e6);
    }
    Ok(json!({"median_us": median(us), "bytes": std::fs::metadata(&path)?.len()}))
}

fn on_one_thread<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T, Failure> {
    Ok(rayon::ThreadPoolBuilder::new().num_threads(1).build()?.install(f))
}

fn main() -> Result<(), Failure> {
    // `cargo bench` passes `--bench`; a filter or `--list` from a workspace-wide run means
    // nothing here.
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let dir = PathBuf::from(std::env::var("PEERS_DATA").unwrap_or_else(|_| "/tmp/peers-data".into()));
    if !dir.join("score_X.npy").is_file() || !dir.join("rf_trees.json").is_file() {
        eprintln!("skipped: peer data not found in {} (run the peers' data.py)", dir.display());
        return Ok(());
    }
    let (shape, data) = read_npy(&dir.join("score_X.npy"))?;
    let x = Array2::from_shape_vec((shape[0], shape[1]), data)?;
    let records = Records::Matrix(x.clone().into());
    let (_, want_logistic) = read_npy(&dir.join("logistic_expected_proba.npy"))?;
    let (_, want_rf) = read_npy(&dir.join("rf_expected_proba.npy"))?;

    let started = Instant::now();
    let logistic = sklearn_logistic_json(&std::fs::read_to_string(dir.join("logistic.json"))?)?;
    let forest = sklearn_forest_json(&std::fs::read_to_string(dir.join("rf_trees.json"))?)?;
    let import_s = started.elapsed().as_secs_f64();
    let lr = LocalModelServer::with_model(logistic.clone());
    let rf = LocalModelServer::with_model(forest.clone());

    // The same answers as scikit-learn, or nothing is timed.
    let got = p1(&lr, &records)?;
    let lr_dev = got.iter().zip(&want_logistic).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    let got = p1(&rf, &records)?;
    let rf_mismatches = got.iter().zip(&want_rf).filter(|(a, b)| a != b).count();
    if lr_dev > 1e-9 || rf_mismatches > 0 {
        return Err(format!("wrong answers: logistic max dev {lr_dev:e}, forest {rf_mismatches} rows differ").into());
    }

    let tmp = tempfile::tempdir()?;
    let threads = rayon::current_num_threads();
    let result = json!({
        "engine": "wharf",
        "wharf": env!("CARGO_PKG_VERSION"),
        "rows": x.nrows(),
        "features": x.ncols(),
        "default_threads": threads,
        "check": {"logistic_max_abs_dev": lr_dev, "rf_rows_not_identical": rf_mismatches},
        "import_both_json_s": import_s,
        "logistic_single_row": single_row(&lr, &x, 500, 20_000)?,
        "rf_single_row": single_row(&rf, &x, 100, 5_000)?,
        "logistic_batch_100k_1thread": on_one_thread(|| batch(&lr, &records, 30))??,
        "logistic_batch_100k_default_threads": batch(&lr, &records, 30)?,
        "rf_batch_100k_1thread": on_one_thread(|| batch(&rf, &records, 5))??,
        "rf_batch_100k_njobs2": batch(&rf, &records, 5)?,
        "logistic_artifact_load": artifact_load(&logistic, tmp.path(), "logistic.wharf", 50)?,
        "rf_artifact_load": artifact_load(&forest, tmp.path(), "rf.wharf", 50)?,
    });
    println!("{result}");
    Ok(())
}
