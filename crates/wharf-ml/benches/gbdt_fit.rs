//! Fit time of Wharf's gradient booster on the peers' 100k × 20 table (`score_X.npy`,
//! `score_y.npy` in `$PEERS_DATA`, default `/tmp/peers-data`): 200 trees of 31 leaves,
//! learning rate 0.1, on rayon pools of 1 and 2 threads; the best of `GBDT_FIT_REPEATS`
//! (default 3) fits each. `benches/gbdt_fit.py` times LightGBM and scikit-learn's
//! HistGradientBoosting the same way; `cargo xtask bench-peers` runs both in one sitting.
//! Prints one JSON line on stdout.
//!
//! `cargo bench -p wharf-ml --bench gbdt_fit` (without the data it says so and exits
//! successfully).

use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;
use wharf_core::{Column, Frame};
use wharf_ml::{CsvOptions, Dataset, Trainer};

#[path = "support/npy.rs"]
mod npy;
use npy::{read_npy, Failure};

fn main() -> Result<(), Failure> {
    let dir = PathBuf::from(std::env::var("PEERS_DATA").unwrap_or_else(|_| "/tmp/peers-data".into()));
    let (x_path, y_path) = (dir.join("score_X.npy"), dir.join("score_y.npy"));
    if !x_path.is_file() || !y_path.is_file() {
        eprintln!("skipped: no {} (the peers' data.py writes it)", x_path.display());
        return Ok(());
    }
    let (shape, x) = read_npy(&x_path)?;
    let (_, y) = read_npy(&y_path)?;
    let (n, width) = (shape[0], shape[1]);
    let mut frame = Frame::new();
    for j in 0..width {
        frame.push(format!("f{j}"), Column::Numeric((0..n).map(|i| x[i * width + j]).collect()))?;
    }
    frame.push("y", Column::Numeric(y))?;
    let data = Dataset::from_frame("peers", frame, &CsvOptions { target: Some("y".into()), ..Default::default() })?;
    let repeats: usize = std::env::var("GBDT_FIT_REPEATS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    let trees: usize = std::env::var("GBDT_FIT_TREES").ok().and_then(|r| r.parse().ok()).unwrap_or(200);
    // `GBDT_FIT_EXACT=1` times the booster on exact gradients instead of quantized ones.
    let exact = std::env::var("GBDT_FIT_EXACT").is_ok_and(|v| v == "1");
    let trainer =
        Trainer::gradient_boosting().trees(trees).max_leaves(31).learning_rate(0.1).quantized_gradients(!exact);
    let mut out = serde_json::Map::new();
    // `GBDT_FIT_THREADS=1` times one pool only (for a profile).
    let pools: Vec<usize> = match std::env::var("GBDT_FIT_THREADS") {
        Ok(t) => t.split(',').filter_map(|t| t.trim().parse().ok()).collect(),
        Err(_) => vec![1, 2],
    };
    for threads in pools {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
        let mut best = f64::INFINITY;
        for _ in 0..repeats.max(1) {
            let start = Instant::now();
            let model = pool.install(|| trainer.fit(&data))?;
            best = best.min(start.elapsed().as_secs_f64());
            std::hint::black_box(model);
        }
        eprintln!("wharf gbdt fit, {threads} thread(s): {best:.3} s");
        out.insert(format!("wharf_gbdt_fit_{threads}t_s"), json!(best));
    }
    out.insert("rows".into(), json!(n));
    out.insert("features".into(), json!(width));
    out.insert("trees".into(), json!(trees));
    out.insert("gradients".into(), json!(if exact { "exact" } else { "quantized" }));
    println!("{}", serde_json::Value::Object(out));
    Ok(())
}
