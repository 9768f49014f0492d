//! Overhead of the proxy: `predict` through `BentoMlModelServer`, the same HTTP request from
//! Python's `requests`, and `LocalModelServer` (no network) on the same records.
//!
//! Ignored by default (timings, not assertions). Run against the test service with
//! `cargo test -p wharf-bentoml --release --test bench -- --ignored --nocapture`
//! after exporting the variables `cargo xtask backends` prints.

mod common;

use std::process::Command;
use std::time::Instant;

use wharf_core::{LocalModelServer, ModelServerPort, Records};

const ROUNDS: usize = 300;

struct Timing {
    mean_us: f64,
    p50_us: f64,
    p99_us: f64,
}

fn time(mut f: impl FnMut()) -> Timing {
    for _ in 0..10 {
        f();
    }
    let mut times: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    Timing {
        mean_us: times.iter().sum::<f64>() / times.len() as f64,
        p50_us: times[times.len() / 2],
        p99_us: times[(times.len() * 99 / 100).min(times.len() - 1)],
    }
}

fn python(url: &str, rows: &[Vec<f64>]) -> Option<Timing> {
    let python = std::env::var("WHARF_TEST_BENTOML_PYTHON").ok()?;
    let body = serde_json::json!({ "input_data": rows });
    let file = std::env::temp_dir().join(format!("wharf-bench-body-{}-{}.json", std::process::id(), rows.len()));
    std::fs::write(&file, body.to_string()).expect("write body");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/bench_requests.py");
    let out = Command::new(python)
        .arg(script)
        .arg(format!("{}/predict", url.trim_end_matches('/')))
        .arg(&file)
        .arg(ROUNDS.to_string())
        .output()
        .expect("run python");
    let _ = std::fs::remove_file(&file);
    assert!(out.status.success(), "python: {}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("python prints JSON");
    Some(Timing {
        mean_us: json["mean_us"].as_f64()?,
        p50_us: json["p50_us"].as_f64()?,
        p99_us: json["p99_us"].as_f64()?,
    })
}

#[test]
#[ignore = "benchmark: prints timings"]
fn proxy_overhead() {
    let Some(url) = common::bentoml_url() else { return };
    let known = common::known();
    let model = common::iris_model();
    let proxy = common::server(&common::config(&url));
    proxy.load(model.clone()).expect("load");
    let local = LocalModelServer::new();
    local.load(model).expect("load");
    println!("{ROUNDS} predict calls each, µs per call (mean / p50 / p99)");
    for batch in [1usize, 100] {
        let matrix = known.inputs.slice(ndarray::s![..batch, ..]).to_owned();
        let rows: Vec<Vec<f64>> = matrix.rows().into_iter().map(|r| r.to_vec()).collect();
        let records = Records::Matrix(matrix.into());
        let through_proxy = time(|| {
            proxy.predict(&records).expect("proxy");
        });
        let in_process = time(|| {
            local.predict(&records).expect("local");
        });
        let report = |name: &str, t: &Timing| {
            println!("  batch {batch:>3}  {name:<28} {:>9.1} / {:>9.1} / {:>9.1}", t.mean_us, t.p50_us, t.p99_us)
        };
        report("wharf BentoMlModelServer", &through_proxy);
        match python(&url, &rows) {
            Some(t) => {
                report("python requests (Session)", &t);
                println!(
                    "  batch {batch:>3}  proxy overhead vs requests: {:+.1} µs mean ({:+.1}%)",
                    through_proxy.mean_us - t.mean_us,
                    100.0 * (through_proxy.mean_us - t.mean_us) / t.mean_us
                );
            }
            None => println!("  batch {batch:>3}  python requests: skipped (WHARF_TEST_BENTOML_PYTHON not set)"),
        }
        report("wharf LocalModelServer", &in_process);
    }
}
