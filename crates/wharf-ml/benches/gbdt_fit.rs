//! Fit time of Wharf's gradient booster on the peers' 100k × 20 table (`score_X.npy`,
//! `score_y.npy` in `$PEERS_DATA`, default `/tmp/peers-data`): 200 trees of 31 leaves,
//! learning rate 0.1, on rayon pools of 1 and 2 threads; the best of `GBDT_FIT_REPEATS`
//! (default 3) fits each. `benches/gbdt_fit.py` times LightGBM and scikit-learn's
//! HistGradientBoosting the same way; `cargo xtask bench-peers` runs both in one sitting.
//! Prints one JSON line on stdout.
//!
//! `cargo bench -p wharf-ml --bench gbdt_fit` (without the data it says so and exits
//! successfully).

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;
use wharf_core::{Column, Frame};
use wharf_ml::{CsvOptions, Dataset, Trainer};

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// A C-ordered little-endian `.npy` of `<f8` or `<i8`, as `f64`s, with its shape.
fn read_npy(path: &Path) -> Result<(Vec<usize>, Vec<f64>), Failure> {
    let bytes = std::fs::read(path)?;
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(format!("{}: not an .npy file", path.display()).into());
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (u32::from_le_bytes(bytes[8..12].try_into()?) as usize, 12),
    };
    let header = std::str::from_utf8(bytes.get(start..start + header_len).ok_or("truncated header")?)?;
    let float = header.contains("'descr': '<f8'");
    if !(float || header.contains("'descr': '<i8'")) || !header.contains("'fortran_order': False") {
        return Err(format!("{}: expected C-ordered <f8 or <i8, found {header}", path.display()).into());
    }
    let shape_text = header.split("'shape': (").nth(1).and_then(|r| r.split(')').next()).ok_or("no shape")?;
    let shape: Vec<usize> =
        shape_text.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::parse).collect::<Result<_, _>>()?;
    let data = bytes[start + header_len..]
        .chunks_exact(8)
        .map(|c| {
            let b: [u8; 8] = c.try_into().unwrap_or([0; 8]);
            if float {
                f64::from_le_bytes(b)
            } else {
                i64::from_le_bytes(b) as f64
            }
        })
        .collect();
    Ok((shape, data))
}

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
    let trainer = Trainer::gradient_boosting().trees(trees).max_leaves(31).learning_rate(0.1);
    let mut out = serde_json::Map::new();
    for threads in [1usize, 2] {
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
    println!("{}", serde_json::Value::Object(out));
    Ok(())
}
