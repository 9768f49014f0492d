//! `cargo xtask bench-peers`: Wharf next to its peers, in one sitting, as one table of ratios.
//!
//! The peers (scikit-learn and ONNX Runtime in-process, FastAPI over HTTP, a hand-written
//! minimal axum server as the HTTP ceiling) and their scripts live outside this repository,
//! in `$WHARF_PEERS_DIR` (default `../shared/peers`). This command:
//!
//! 1. makes sure the peers' Python venv, `wrk` and data exist (their `setup.sh` installs from
//!    PyPI and Debian only; `data.py` writes the seeded 100k × 20 table and the fitted models);
//! 2. builds Wharf (`wharf` release binary, the in-process bench) and the ceiling server;
//! 3. for each round (`BENCH_ROUNDS`, default 3), alternating the order of the contenders:
//!    the memory-bandwidth probe, scikit-learn's and ONNX Runtime's in-process benches,
//!    Wharf's in-process bench (`benches/peers.rs`, which first checks it reproduces
//!    scikit-learn's probabilities), and the same `wrk` load against `wharf serve` (serving
//!    the imported models), the ceiling server and FastAPI, and, on the same `wharf serve`,
//!    the Open Inference Protocol v2 `infer` route with the same rows (`wharf-v2`);
//!    Then the booster's fit time: Wharf's (`benches/gbdt_fit.rs`) and LightGBM's and
//!    scikit-learn's HistGradientBoosting's (`benches/gbdt_fit.py`, in the venv `cargo
//!    xtask test` makes for the tree libraries), on the same 100k × 20 table, 1 and 2 threads;
//!    and the imported trees' scoring (`wharf-trees`' `benches/peers_trees.rs`) on the models
//!    `crates/wharf-trees/tests/fixtures/bench.py` trained once for the sitting (XGBoost and
//!    LightGBM, 500 trees of depth 6; a 100-tree forest through ONNX), whose own one-thread
//!    times (XGBoost `inplace_predict`, LightGBM `predict`, ONNX Runtime) that script took;
//!    and Wharf called from Python (the wheel, in a venv of its own: `crates/wharf-py/benches/
//!    peers.py`) on the same logistic model and rows, one thread, as the Python peers are;
//! 4. prints a markdown table of medians and per-round ratio medians against each target,
//!    and writes it with the raw results under `target/bench-peers/<time>/`.
//!
//! Slow (about 5 minutes a round) and machine-dependent, so it is not part of `cargo xtask
//! test`. `BENCH_ROUNDS=1 BENCH_HTTP_DURATION=5s` makes a quick smoke run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::backends::free_port;

/// Where the peers live and where results go.
struct Setup {
    root: PathBuf,
    peers: PathBuf,
    python: PathBuf,
    data: PathBuf,
    out: PathBuf,
    onnx: bool,
    /// Python with LightGBM and scikit-learn (the tree libraries' venv).
    trees_python: PathBuf,
    /// The tree models `bench.py` trained for this sitting, and its timings of the libraries.
    trees: PathBuf,
    trees_peers: Value,
    /// Python with the `wharf` wheel built for this sitting, NumPy and pandas.
    wharf_python: PathBuf,
}

/// One round's measurements, keyed like the peers' JSON.
#[derive(Default)]
struct Round {
    membw: Value,
    sklearn: Value,
    onnx: Value,
    ours: Value,
    /// `(target, rows per request)` → wrk record.
    http: BTreeMap<(String, u64), Value>,
    /// Peak RSS of `wharf serve` after its load, in kB.
    serve_rss_kb: Option<f64>,
    /// The booster's fit times: Wharf's, and LightGBM's and scikit-learn's.
    gbdt_ours: Value,
    gbdt_peers: Value,
    /// Wharf's scoring of the imported trees (`benches/peers_trees.rs`), and the libraries'
    /// times from the sitting's `bench.py`.
    trees_ours: Value,
    trees_peers: Value,
    /// Wharf from Python (`crates/wharf-py/benches/peers.py`).
    python: Value,
}

pub fn bench_peers(root: &Path) -> Result<(), String> {
    let setup = prepare(root)?;
    eprintln!("==> results in {}", setup.out.display());
    let wharf = build(&setup)?;
    let registry = import_models(&setup, &wharf)?;
    let rounds: usize = env_or("BENCH_ROUNDS", "3").parse().map_err(|_| "BENCH_ROUNDS: not a number")?;
    let mut results = Vec::new();
    for r in 0..rounds {
        eprintln!("\n==> round {} of {rounds}", r + 1);
        results.push(round(&setup, &wharf, &registry, r)?);
    }
    let table = report(&results);
    std::fs::write(setup.out.join("table.md"), &table).map_err(|e| e.to_string())?;
    println!("{table}");
    Ok(())
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let status = cmd.status().map_err(|e| format!("{what}: could not start: {e}"))?;
    status.success().then_some(()).ok_or_else(|| format!("{what} failed ({status})"))
}

/// Runs `cmd` and returns its stdout's last line that parses as a JSON object.
fn json_of(cmd: &mut Command, what: &str) -> Result<Value, String> {
    eprintln!("--> {what}");
    let out = cmd.stderr(Stdio::inherit()).output().map_err(|e| format!("{what}: could not start: {e}"))?;
    if !out.status.success() {
        return Err(format!("{what} failed ({})", out.status));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l.trim()).ok().filter(Value::is_object))
        .ok_or_else(|| format!("{what}: no JSON result in its output"))
}

fn prepare(root: &Path) -> Result<Setup, String> {
    let peers = std::env::var_os("WHARF_PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("..").join("shared").join("peers"));
    if !peers.join("setup.sh").is_file() || !peers.join("http_bench.sh").is_file() {
        return Err(format!(
            "the peer benchmark scripts are not in {} (set WHARF_PEERS_DIR to their directory)",
            peers.display()
        ));
    }
    let venv = PathBuf::from(env_or("PEERS_VENV", "/tmp/peers-venv"));
    let python = venv.join("bin").join("python");
    let data = PathBuf::from(env_or("PEERS_DATA", "/tmp/peers-data"));
    let onnx = env_or("BENCH_ONNX", "1") != "0";
    let has = |module: &str| {
        python.is_file()
            && Command::new(&python)
                .args(["-c", &format!("import {module}")])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
    };
    let wrk = Command::new("wrk").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    if !wrk || !has("sklearn") || (onnx && !has("onnxruntime")) {
        eprintln!("==> installing the peers (venv {}, wrk) with their setup.sh", venv.display());
        let mut cmd = Command::new("bash");
        cmd.arg(peers.join("setup.sh")).env("PEERS_VENV", &venv);
        if onnx {
            cmd.env("WITH_ONNX", "1");
        }
        run(&mut cmd, "setup.sh")?;
    }
    let needed = ["score_X.npy", "logistic.json", "rf_trees.json", "body_1.json", "body_100.json"];
    if !needed.iter().all(|f| data.join(f).is_file()) {
        eprintln!("==> writing the peer data into {}", data.display());
        run(Command::new(&python).arg(peers.join("data.py")).env("PEERS_DATA", &data), "data.py")?;
    }
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let out = root.join("target").join("bench-peers").join(stamp.to_string());
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let backends = root.join("target").join("backends");
    std::fs::create_dir_all(&backends).map_err(|e| format!("{}: {e}", backends.display()))?;
    let trees_python =
        crate::backends::venv(&backends, "trees", crate::backends::TREES_SPECS)?.join("bin").join("python");
    let trees = out.join("trees");
    eprintln!("==> training the tree models and timing their libraries (bench.py)");
    run(
        Command::new(&trees_python).arg(root.join("crates/wharf-trees/tests/fixtures/bench.py")).arg(&trees),
        "wharf-trees bench.py",
    )?;
    let compiled_python =
        crate::backends::venv(&backends, "trees-compiled", COMPILED_SPECS)?.join("bin").join("python");
    eprintln!("==> compiling the tree models with TL2cgen and lleaves, and timing them (bench_compiled.py)");
    run(
        Command::new(&compiled_python)
            .arg(root.join("crates/wharf-trees/tests/fixtures/bench_compiled.py"))
            .arg(&trees),
        "wharf-trees bench_compiled.py",
    )?;
    let mut trees_peers = Value::Object(Default::default());
    for file in ["python_timings.json", "compiled_timings.json"] {
        let timings = trees.join(file);
        let text = std::fs::read_to_string(&timings).map_err(|e| format!("{}: {e}", timings.display()))?;
        let value: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", timings.display()))?;
        if let (Value::Object(all), Value::Object(these)) = (&mut trees_peers, value) {
            for (key, value) in these {
                match (all.get_mut(&key), value) {
                    (Some(Value::Object(versions)), Value::Object(more)) => versions.extend(more),
                    (_, value) => {
                        all.insert(key, value);
                    }
                }
            }
        }
    }
    eprintln!("==> the wharf wheel (release) in a venv of its own, for the Python row");
    let wheel = crate::python::build_wheel(root, &backends)?;
    let specs: Vec<&str> = crate::python::TEST_SPECS
        .iter()
        .copied()
        .filter(|s| s.starts_with("numpy") || s.starts_with("pandas"))
        .collect();
    let wharf_python = crate::python::fresh_venv(&backends, "bench-python", &specs, &wheel)?.join("bin").join("python");
    Ok(Setup {
        root: root.to_path_buf(),
        peers,
        python,
        data,
        out,
        onnx,
        trees_python,
        trees,
        trees_peers,
        wharf_python,
    })
}

/// Builds the release `wharf` binary, Wharf's in-process bench and the ceiling server;
/// returns the `wharf` binary.
fn build(s: &Setup) -> Result<PathBuf, String> {
    eprintln!("==> building (release)");
    run(crate::cargo().current_dir(&s.root).args(["build", "--release", "-p", "wharf-cli"]), "build wharf")?;
    run(
        crate::cargo().current_dir(&s.root).args(["bench", "-p", "wharf-ml", "--bench", "peers", "--no-run"]),
        "build bench",
    )?;
    run(
        crate::cargo().current_dir(&s.root).args(["bench", "-p", "wharf-ml", "--bench", "gbdt_fit", "--no-run"]),
        "build the booster's bench",
    )?;
    run(
        crate::cargo().current_dir(&s.root).args([
            "bench",
            "-p",
            "wharf-trees",
            "--features",
            "onnx",
            "--bench",
            "peers_trees",
            "--no-run",
        ]),
        "build the imported trees' bench",
    )?;
    run(
        crate::cargo()
            .current_dir(&s.root)
            .args(["build", "--release", "--manifest-path"])
            .arg(s.peers.join("limit").join("Cargo.toml"))
            .arg("--target-dir")
            .arg(s.root.join("target").join("peers-limit")),
        "build the ceiling server",
    )?;
    Ok(s.root.join("target").join("release").join("wharf"))
}

/// Imports the peers' fitted models into a fresh file registry; returns its directory.
fn import_models(s: &Setup, wharf: &Path) -> Result<PathBuf, String> {
    let registry = s.out.join("registry");
    for (format, file, name) in
        [("sklearn-logistic-json", "logistic.json", "peer-lr"), ("sklearn-forest-json", "rf_trees.json", "peer-rf")]
    {
        run(
            Command::new(wharf)
                .current_dir(&s.out)
                .env("WHARF_REGISTRY__DIR", &registry)
                .args(["models", "import", "--format", format])
                .arg(s.data.join(file))
                .args(["--name", name, "--alias", "champion"]),
            "wharf models import",
        )?;
    }
    // The logistic model once more, with the training table as its drift reference: what the
    // watch's cost is measured on (drift binning every request, the log sampling 10%).
    run(
        Command::new(wharf)
            .current_dir(&s.out)
            .env("WHARF_REGISTRY__DIR", &registry)
            .args(["models", "import", "--format", "sklearn-logistic-json"])
            .arg(s.data.join("logistic.json"))
            .args(["--name", "peer-lr-watched", "--alias", "champion", "--reference"])
            .arg(s.data.join("train.csv")),
        "wharf models import --reference",
    )?;
    Ok(registry)
}

fn round(s: &Setup, wharf: &Path, registry: &Path, index: usize) -> Result<Round, String> {
    let reverse = index % 2 == 1;
    let py = |script: &str| {
        let mut cmd = Command::new(&s.python);
        cmd.arg(s.peers.join(script)).env("PEERS_DATA", &s.data);
        cmd
    };
    let mut r = Round::default();
    let ours = |s: &Setup| {
        json_of(
            crate::cargo().current_dir(&s.root).args(["bench", "-q", "-p", "wharf-ml", "--bench", "peers"]),
            "wharf in-process (benches/peers.rs)",
        )
    };
    r.membw = json_of(&mut py("membw.py"), "membw.py")?;
    if reverse {
        r.ours = ours(s)?;
    }
    r.sklearn = json_of(&mut py("inproc_bench.py"), "inproc_bench.py (scikit-learn)")?;
    if s.onnx {
        r.onnx = json_of(&mut py("onnx_bench.py"), "onnx_bench.py (ONNX Runtime)")?;
    }
    if !reverse {
        r.ours = ours(s)?;
    }
    r.python = json_of(
        Command::new(&s.wharf_python)
            .arg(s.root.join("crates/wharf-py/benches/peers.py"))
            .arg(registry)
            .arg(&s.data)
            .env("RAYON_NUM_THREADS", "1"),
        "wharf from Python (crates/wharf-py/benches/peers.py)",
    )?;
    let gbdt_ours = |s: &Setup| {
        json_of(
            crate::cargo()
                .current_dir(&s.root)
                .env("PEERS_DATA", &s.data)
                .args(["bench", "-q", "-p", "wharf-ml", "--bench", "gbdt_fit"]),
            "wharf booster fit (benches/gbdt_fit.rs)",
        )
    };
    let gbdt_peers = |s: &Setup| {
        json_of(
            Command::new(&s.trees_python)
                .arg(s.root.join("crates/wharf-ml/benches/gbdt_fit.py"))
                .env("PEERS_DATA", &s.data),
            "LightGBM and scikit-learn fit (benches/gbdt_fit.py)",
        )
    };
    if reverse {
        r.gbdt_ours = gbdt_ours(s)?;
        r.gbdt_peers = gbdt_peers(s)?;
    } else {
        r.gbdt_peers = gbdt_peers(s)?;
        r.gbdt_ours = gbdt_ours(s)?;
    }
    r.trees_ours = json_of(
        crate::cargo().current_dir(&s.root).env("WHARF_BENCH_TREES_DIR", &s.trees).args([
            "bench",
            "-q",
            "-p",
            "wharf-trees",
            "--features",
            "onnx",
            "--bench",
            "peers_trees",
        ]),
        "wharf imported trees (wharf-trees benches/peers_trees.rs)",
    )?;
    r.trees_peers = s.trees_peers.clone();
    let results = s.out.join(format!("http-round{index}.jsonl"));
    let _ = std::fs::remove_file(&results);
    let mut order = ["wharf", "limit", "fastapi", "watch-off", "watch-on"];
    if reverse {
        order.reverse();
    }
    for target in order {
        match target {
            "wharf" => r.serve_rss_kb = http_wharf(s, wharf, registry, &results)?,
            "limit" => http_limit(s, &results)?,
            "watch-off" => http_watch(s, wharf, registry, &results, false)?,
            "watch-on" => http_watch(s, wharf, registry, &results, true)?,
            _ => http_bench(s, &results, &[], &[("MODES", "tuned"), ("PORT", &free_port()?.to_string())])?,
        }
    }
    let text = std::fs::read_to_string(&results).map_err(|e| format!("{}: {e}", results.display()))?;
    for line in text.lines() {
        if let Ok(v) = serde_json::from_str::<Value>(line) {
            let target = v["target"].as_str().unwrap_or_default().to_string();
            let rows = v["rows_per_request"].as_u64().unwrap_or_default();
            r.http.insert((target, rows), v);
        }
    }
    let keep = s.out.join(format!("round{index}.json"));
    let raw = serde_json::json!({"membw": r.membw, "sklearn": r.sklearn, "onnx": r.onnx, "wharf": r.ours,
        "http": text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).collect::<Vec<_>>(),
        "wharf_serve_peak_rss_kb": r.serve_rss_kb, "gbdt_wharf": r.gbdt_ours, "gbdt_peers": r.gbdt_peers,
        "trees_wharf": r.trees_ours, "trees_peers": r.trees_peers, "wharf_python": r.python});
    std::fs::write(keep, raw.to_string()).map_err(|e| e.to_string())?;
    Ok(r)
}

fn http_bench(s: &Setup, results: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    let mut cmd = Command::new("bash");
    cmd.arg(s.peers.join("http_bench.sh"))
        .args(args)
        .env("RESULTS", results)
        .env("PEERS_DATA", &s.data)
        .env("DURATION", env_or("BENCH_HTTP_DURATION", "10s"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd, "http_bench.sh")
}

/// A server started here; stopped (SIGTERM, then SIGKILL) when dropped.
/// The compiled peers of the imported trees: TL2cgen (treelite's C code generator) for the
/// XGBoost model and lleaves (LLVM) for the LightGBM one, beside the libraries themselves.
/// lleaves 1.3 still uses LLVM's legacy pass manager, which llvmlite dropped after 0.43.
const COMPILED_SPECS: &[&str] = &[
    "xgboost-cpu==3.2.0",
    "lightgbm==4.7.0",
    "numpy==2.4.6",
    "treelite==4.8.1",
    "tl2cgen==1.0.0",
    "lleaves==1.3.0",
    "llvmlite==0.43.0",
];

pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until `GET url` answers 200.
pub fn wait_ready(server: &mut Server, port: u16, path: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = server.0.try_wait() {
            return Err(format!("server exited early ({status})"));
        }
        let ok = Command::new("curl")
            .args(["-sf", "-o", "/dev/null", &format!("http://127.0.0.1:{port}{path}")])
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("no answer on port {port} within 60 s"))
}

/// Loads `wharf serve` (both imported models, default settings) with the peers' wrk runs;
/// returns its peak RSS in kB.
fn http_wharf(s: &Setup, wharf: &Path, registry: &Path, results: &Path) -> Result<Option<f64>, String> {
    let port = free_port()?;
    let child = Command::new(wharf)
        .current_dir(&s.out)
        .env("WHARF_LOG", "warn")
        .args(["serve", "-m", "peer-lr@champion", "-m", "peer-rf@champion", "--registry"])
        .arg(registry)
        .args(["--addr", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("wharf serve: {e}"))?;
    let mut server = Server(child);
    wait_ready(&mut server, port, "/livez")?;
    let pid = server.0.id().to_string();
    let url = format!("http://127.0.0.1:{port}/models/peer-lr/predict_proba?probabilities=array");
    http_bench(s, results, &["--url", &url, "--label", "wharf", "--pid", &pid], &[])?;
    http_v2(s, results, port, &pid)?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    Ok(status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()))
}

/// The v2 body of the peers' `body_<n>.json` rows (`{"instances": [[...]]}`): one FP64
/// `[n, F]` tensor, asking for `predict_proba` only, as the native row asks for.
fn v2_body(instances: &Value) -> Result<Value, String> {
    let rows = instances["instances"].as_array().ok_or("a peers body without instances")?;
    let width = rows.first().and_then(Value::as_array).map_or(0, Vec::len);
    let data: Vec<&Value> = rows.iter().filter_map(Value::as_array).flatten().collect();
    Ok(serde_json::json!({
        "inputs": [{"name": "input", "shape": [rows.len(), width], "datatype": "FP64", "data": data}],
        "outputs": [{"name": "predict_proba"}],
    }))
}

/// The same `wrk` load as `http_bench.sh` (its `post.lua` and `record_wrk.py`), on the v2
/// `infer` route of the running `wharf serve`, after checking its P(y=1) against
/// scikit-learn's. Run here rather than by the peers' script, whose response check knows
/// only `/predict`-shaped answers.
fn http_v2(s: &Setup, results: &Path, port: u16, pid: &str) -> Result<(), String> {
    let url = format!("http://127.0.0.1:{port}/v2/models/peer-lr/infer");
    let threads = env_or("THREADS", "2");
    let conns = env_or("CONNS", "16");
    let duration = env_or("BENCH_HTTP_DURATION", "10s");
    let ticks = || -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                let fields: Vec<u64> = stat
                    .rsplit(')')
                    .next()?
                    .split_whitespace()
                    .skip(11)
                    .take(2)
                    .filter_map(|f| f.parse().ok())
                    .collect();
                Some(fields.iter().sum())
            })
            .unwrap_or(0)
    };
    let clk = Command::new("getconf").arg("CLK_TCK").output().map_err(|e| format!("getconf: {e}"))?;
    let clk = String::from_utf8_lossy(&clk.stdout).trim().to_string();
    for n in [1u64, 100] {
        let read = |name: &str| -> Result<Value, String> {
            let path = s.data.join(name);
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
        };
        let body_file = s.out.join(format!("v2_body_{n}.json"));
        std::fs::write(&body_file, v2_body(&read(&format!("body_{n}.json"))?)?.to_string())
            .map_err(|e| format!("{}: {e}", body_file.display()))?;
        // One request first: the answer must be scikit-learn's probabilities.
        let answer = Command::new("curl")
            .args(["-sf", "-X", "POST", "-H", "Content-Type: application/json", "--data-binary"])
            .arg(format!("@{}", body_file.display()))
            .arg(&url)
            .output()
            .map_err(|e| format!("curl: {e}"))?;
        let answer: Value = serde_json::from_slice(&answer.stdout).map_err(|e| format!("v2 infer answered: {e}"))?;
        let proba = answer["outputs"][0]["data"].as_array().ok_or_else(|| format!("v2 infer answered {answer}"))?;
        let expected = read(&format!("body_{n}_expected_logistic.json"))?;
        let p1: Vec<f64> = proba.iter().skip(1).step_by(2).filter_map(Value::as_f64).collect();
        let want: Vec<f64> = expected["p1"].as_array().into_iter().flatten().filter_map(Value::as_f64).collect();
        if p1.len() != want.len() || p1.iter().zip(&want).any(|(a, b)| (a - b).abs() > 1e-9) {
            return Err(format!("v2 infer, {n} row(s): P(y=1) differs from scikit-learn's"));
        }
        let wrk = |seconds: &str, out: Option<&Path>| -> Result<(), String> {
            let mut cmd = Command::new("wrk");
            cmd.env("BODY_FILE", &body_file)
                .args([format!("-t{threads}"), format!("-c{conns}"), format!("-d{seconds}")])
                .arg("--latency")
                .arg("-s")
                .arg(s.peers.join("post.lua"))
                .arg(&url);
            let output = cmd.output().map_err(|e| format!("wrk: {e}"))?;
            if !output.status.success() {
                return Err(format!("wrk failed ({})", output.status));
            }
            if let Some(out) = out {
                std::fs::write(out, &output.stdout).map_err(|e| format!("{}: {e}", out.display()))?;
            }
            Ok(())
        };
        wrk(&format!("{}s", env_or("WARMUP_S", "2")), None)?;
        let before = ticks();
        let wrk_out = s.out.join(format!("v2_wrk_{n}.txt"));
        wrk(&duration, Some(&wrk_out))?;
        let spent = ticks().saturating_sub(before);
        run(
            Command::new(&s.python)
                .arg(s.peers.join("record_wrk.py"))
                .arg(results)
                .args(["wharf-v2", &n.to_string(), &threads, &conns, &duration, "ok"])
                .args([spent.to_string(), clk.clone(), pid.to_string()])
                .arg(&wrk_out),
            "record_wrk.py",
        )?;
    }
    Ok(())
}

/// Loads `wharf serve` with 1-row bodies on the model that has a drift reference: with the
/// prediction log at 10% and drift on (`watched`), or both off; labelled `wharf-watch-on` /
/// `wharf-watch-off`.
fn http_watch(s: &Setup, wharf: &Path, registry: &Path, results: &Path, watched: bool) -> Result<(), String> {
    let port = free_port()?;
    let log = s.out.join("prediction-log");
    let mut cmd = Command::new(wharf);
    cmd.current_dir(&s.out)
        .env("WHARF_LOG", "warn")
        .args(["serve", "-m", "peer-lr-watched@champion", "--registry"])
        .arg(registry)
        .args(["--addr", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null());
    if watched {
        cmd.args(["--log-sample", "0.1", "--log-path"]).arg(&log);
    } else {
        cmd.arg("--no-drift");
    }
    let mut server = Server(cmd.spawn().map_err(|e| format!("wharf serve: {e}"))?);
    wait_ready(&mut server, port, "/livez")?;
    let pid = server.0.id().to_string();
    let url = format!("http://127.0.0.1:{port}/models/peer-lr-watched/predict_proba?probabilities=array");
    let label = if watched { "wharf-watch-on" } else { "wharf-watch-off" };
    http_bench(s, results, &["--url", &url, "--label", label, "--pid", &pid], &[("BODIES", "1")])
}

/// Loads the hand-written ceiling server the same way.
fn http_limit(s: &Setup, results: &Path) -> Result<(), String> {
    let port = free_port()?;
    let binary = s.root.join("target").join("peers-limit").join("release").join("limit-server");
    let child = Command::new(binary)
        .env("LIMIT_ADDR", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("limit-server: {e}"))?;
    let mut server = Server(child);
    wait_ready(&mut server, port, "/livez")?;
    let pid = server.0.id().to_string();
    let url = format!("http://127.0.0.1:{port}/predict");
    http_bench(s, results, &["--url", &url, "--label", "limit-axum", "--pid", &pid], &[])
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    v.sort_by(f64::total_cmp);
    (!v.is_empty()).then(|| v[v.len() / 2])
}

fn at(v: &Value, path: &[&str]) -> Option<f64> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_f64()
}

/// Median over rounds of `f(round)`.
fn med(rounds: &[Round], f: impl Fn(&Round) -> Option<f64>) -> Option<f64> {
    median(rounds.iter().filter_map(f).collect())
}

fn show(x: Option<f64>, unit: &str) -> String {
    match x {
        None => "—".into(),
        Some(x) if unit == "rows/s" && x >= 1e6 => format!("{:.1} M rows/s", x / 1e6),
        Some(x) if unit == "rows/s" => format!("{:.0} k rows/s", x / 1e3),
        Some(x) if x >= 100.0 => format!("{x:.0} {unit}"),
        Some(x) if x >= 10.0 => format!("{x:.1} {unit}"),
        Some(x) => format!("{x:.2} {unit}"),
    }
}

fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "met",
        Some(false) => "**not met**",
        None => "not measured",
    }
}

fn report(rounds: &[Round]) -> String {
    let http = |r: &Round, target: &str, rows: u64, key: &str| {
        r.http.get(&(target.to_string(), rows)).and_then(|v| v.get(key)).and_then(Value::as_f64)
    };
    let ours = |path: &'static [&'static str]| move |r: &Round| at(&r.ours, path);
    let sk = |path: &'static [&'static str]| move |r: &Round| at(&r.sklearn, path);
    let ort = |path: &'static [&'static str]| move |r: &Round| at(&r.onnx, path);
    // Per-round ratio, then the median over rounds.
    let ratio =
        |a: &dyn Fn(&Round) -> Option<f64>, b: &dyn Fn(&Round) -> Option<f64>| med(rounds, |r| Some(a(r)? / b(r)?));
    let floor_ms = |r: &Round| at(&r.membw, &["floor_logistic_100k", "read_ms_dram_1thread"]);
    let lr_batch_ms = |r: &Round| Some(at(&r.ours, &["logistic_batch_100k_1thread", "seconds_median"])? * 1e3);

    let mut t = String::new();
    let machine = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| l.strip_prefix("model name")?.split(':').nth(1).map(|s| s.trim().to_string()))
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    t.push_str(&format!(
        "Wharf vs peers, {} round(s) alternated, medians (ratios: median of per-round ratios). Machine: {machine}, {cores} cores. sklearn {}, onnxruntime {}.\n\n",
        rounds.len(),
        rounds.first().and_then(|r| r.sklearn["versions"]["sklearn"].as_str()).unwrap_or("?"),
        rounds.first().and_then(|r| r.onnx["versions"]["onnxruntime"].as_str()).unwrap_or("?"),
    ));
    t.push_str("| row | sklearn | ONNX Runtime | anchor | Wharf | ratio | target | verdict |\n|---|---:|---:|---:|---:|---:|---|---|\n");

    // Single-row latency: Wharf's median against an absolute target.
    let latency = |t: &mut String, label: &str, ort_key: &'static str, ours_key: &'static str, target_us: f64| {
        let mine = med(rounds, |r| at(&r.ours, &[ours_key, "median_us"]));
        t.push_str(&format!(
            "| {label} single-row predict_proba (median) | {} | {} | — | {} | {} × faster than ORT | ≤ {target_us} µs | {} |\n",
            show(med(rounds, |r| at(&r.sklearn, &[ours_key, "median_us"])), "µs"),
            show(med(rounds, |r| at(&r.onnx, &[ort_key, "median_us"])), "µs"),
            show(mine, "µs"),
            show(med(rounds, |r| Some(at(&r.onnx, &[ort_key, "median_us"])? / at(&r.ours, &[ours_key, "median_us"])?)), ""),
            verdict(mine.map(|v| v <= target_us)),
        ));
    };
    latency(&mut t, "logistic", "logistic_single_row_f32", "logistic_single_row", 1.0);
    // Logistic batch vs the memory floor.
    let vs_floor = ratio(&lr_batch_ms, &floor_ms);
    let vs_ort = ratio(
        &ours(&["logistic_batch_100k_1thread", "rows_per_s_median"]),
        &ort(&["logistic_batch_100k_1thread_f32", "rows_per_s_median"]),
    );
    t.push_str(&format!(
        "| logistic batch 100k×20, 1 thread | {} | {} | floor {} | {} ({}) | {} × floor; {} × ORT | ≤ 1.5 × floor, ≥ 2 × ORT | {} |\n",
        show(med(rounds, sk(&["logistic_batch_100k_1thread", "rows_per_s_median"])), "rows/s"),
        show(med(rounds, ort(&["logistic_batch_100k_1thread_f32", "rows_per_s_median"])), "rows/s"),
        show(med(rounds, floor_ms), "ms"),
        show(med(rounds, ours(&["logistic_batch_100k_1thread", "rows_per_s_median"])), "rows/s"),
        show(med(rounds, lr_batch_ms), "ms"),
        show(vs_floor, ""),
        show(vs_ort, ""),
        verdict(vs_floor.zip(vs_ort).map(|(f, o)| f <= 1.5 && o >= 2.0)),
    ));
    // Wharf from Python: the same model and rows through the wheel, one thread.
    let py = |path: &'static [&'static str]| move |r: &Round| at(&r.python, path);
    let py_numpy = ratio(
        &py(&["numpy_batch_100k", "rows_per_s_median"]),
        &ours(&["logistic_batch_100k_1thread", "rows_per_s_median"]),
    );
    let py_pandas = ratio(
        &py(&["pandas_batch_100k", "rows_per_s_median"]),
        &ours(&["logistic_batch_100k_1thread", "rows_per_s_median"]),
    );
    let py_ort = ratio(
        &py(&["numpy_batch_100k", "rows_per_s_median"]),
        &ort(&["logistic_batch_100k_1thread_f32", "rows_per_s_median"]),
    );
    t.push_str(&format!(
        "| logistic batch 100k×20 from Python, 1 thread (NumPy; pandas) | {} | {} | Wharf in Rust {} | {}; {} | NumPy {} × in Rust, {} × ORT; pandas {} × in Rust | pandas ≥ 0.8 × in Rust | {} |\n",
        show(med(rounds, sk(&["logistic_batch_100k_1thread", "rows_per_s_median"])), "rows/s"),
        show(med(rounds, ort(&["logistic_batch_100k_1thread_f32", "rows_per_s_median"])), "rows/s"),
        show(med(rounds, ours(&["logistic_batch_100k_1thread", "rows_per_s_median"])), "rows/s"),
        show(med(rounds, py(&["numpy_batch_100k", "rows_per_s_median"])), "rows/s"),
        show(med(rounds, py(&["pandas_batch_100k", "rows_per_s_median"])), "rows/s"),
        show(py_numpy, ""),
        show(py_ort, ""),
        show(py_pandas, ""),
        verdict(py_pandas.map(|p| p >= 0.8)),
    ));
    let py_row = med(rounds, py(&["single_row_numpy", "median_us"]));
    t.push_str(&format!(
        "| logistic single-row predict_proba from Python, NumPy row (median) | {} | {} | — | {} | {} × faster than ORT | ≤ 5 µs | {} |\n",
        show(med(rounds, |r| at(&r.sklearn, &["logistic_single_row", "median_us"])), "µs"),
        show(med(rounds, |r| at(&r.onnx, &["logistic_single_row_f32", "median_us"])), "µs"),
        show(py_row, "µs"),
        show(ratio(&|r: &Round| at(&r.onnx, &["logistic_single_row_f32", "median_us"]), &py(&["single_row_numpy", "median_us"])), ""),
        verdict(py_row.map(|v| v <= 5.0)),
    ));
    // Forest batch.
    let rf_ort = ratio(
        &ours(&["rf_batch_100k_1thread", "rows_per_s_median"]),
        &ort(&["rf_batch_100k_1thread", "rows_per_s_median"]),
    );
    let rf_sk = ratio(
        &ours(&["rf_batch_100k_1thread", "rows_per_s_median"]),
        &sk(&["rf_batch_100k_1thread", "rows_per_s_median"]),
    );
    let rf_2t = ratio(
        &ours(&["rf_batch_100k_njobs2", "rows_per_s_median"]),
        &ours(&["rf_batch_100k_1thread", "rows_per_s_median"]),
    );
    t.push_str(&format!(
        "| forest 100 trees d8, batch 100k, 1 thread | {} | {} | — | {} | {} × ORT; {} × sklearn | ≥ 5 × ORT, ≥ 10 × sklearn | {} |\n",
        show(med(rounds, sk(&["rf_batch_100k_1thread", "rows_per_s_median"])), "rows/s"),
        show(med(rounds, ort(&["rf_batch_100k_1thread", "rows_per_s_median"])), "rows/s"),
        show(med(rounds, ours(&["rf_batch_100k_1thread", "rows_per_s_median"])), "rows/s"),
        show(rf_ort, ""),
        show(rf_sk, ""),
        verdict(rf_ort.zip(rf_sk).map(|(o, s)| o >= 5.0 && s >= 10.0)),
    ));
    t.push_str(&format!(
        "| forest batch, 2 threads | {} (n_jobs=2) | — | — | {} | {} × Wharf 1 thread | near-linear (→ 2 ×) | see note |\n",
        show(med(rounds, sk(&["rf_batch_100k_njobs2", "rows_per_s_median"])), "rows/s"),
        show(med(rounds, ours(&["rf_batch_100k_njobs2", "rows_per_s_median"])), "rows/s"),
        show(rf_2t, ""),
    ));
    latency(&mut t, "forest", "rf_single_row", "rf_single_row", 5.0);
    // The booster's fit time: LightGBM is the anchor; a ratio above 1 means Wharf is faster.
    for threads in [1, 2] {
        let (w, l, k) = (
            format!("wharf_gbdt_fit_{threads}t_s"),
            format!("lightgbm_fit_{threads}t_s"),
            format!("sklearn_hgb_fit_{threads}t_s"),
        );
        let mine = |r: &Round| r.gbdt_ours.get(&w).and_then(Value::as_f64);
        let lgb = |r: &Round| r.gbdt_peers.get(&l).and_then(Value::as_f64);
        let hgb = |r: &Round| r.gbdt_peers.get(&k).and_then(Value::as_f64);
        let vs_lgb = ratio(&lgb, &mine);
        let vs_hgb = ratio(&hgb, &mine);
        let (target, ok) = if threads == 1 {
            ("≥ 1 × LightGBM, ≥ 2 × sklearn", verdict(vs_lgb.zip(vs_hgb).map(|(l, k)| l >= 1.0 && k >= 2.0)))
        } else {
            ("report the scaling", "see note")
        };
        t.push_str(&format!(
            "| gbdt fit 100k×20, 200 trees, 31 leaves, {threads} thread(s) | HGB {} | — | LightGBM {} | {} | {} × LightGBM; {} × sklearn | {target} | {ok} |\n",
            show(med(rounds, hgb), "s"),
            show(med(rounds, lgb), "s"),
            show(med(rounds, mine), "s"),
            show(vs_lgb, ""),
            show(vs_hgb, ""),
        ));
    }
    // Imported trees: the library's own predict (or ONNX Runtime) on one thread is the anchor.
    let rows_n = rounds.first().and_then(|r| r.trees_peers["rows"].as_f64()).unwrap_or(100_000.0);
    for (label, ours_key, batch_key, row_key, anchor, compiled) in [
        (
            "XGBoost 500 trees d6",
            "xgboost_500",
            "xgboost_batch_s",
            "xgboost_row_us",
            "XGBoost inplace_predict",
            Some(("TL2cgen", "tl2cgen_xgboost_batch_s", "tl2cgen_xgboost_row_us")),
        ),
        (
            "LightGBM 500 trees d6",
            "lightgbm_500",
            "lightgbm_batch_s",
            "lightgbm_row_us",
            "LightGBM predict",
            Some(("lleaves", "lleaves_batch_s", "lleaves_row_us")),
        ),
        (
            "forest 100 trees d8 through ONNX",
            "onnx_forest_100",
            "onnxruntime_forest_batch_s",
            "onnxruntime_forest_row_us",
            "ONNX Runtime",
            None,
        ),
    ] {
        let theirs = |r: &Round| Some(rows_n / r.trees_peers.get(batch_key)?.as_f64()?);
        let mine = |r: &Round| at(&r.trees_ours, &[ours_key, "batch", "rows_per_s_median"]);
        let speedup = ratio(&mine, &theirs);
        let is_onnx = ours_key.starts_with("onnx");
        t.push_str(&format!(
            "| {label}, batch {}k, 1 thread | — | {} | {} | {} | {} × {anchor} | ≥ 3 × native | {} |\n",
            rows_n / 1e3,
            if is_onnx { show(med(rounds, theirs), "rows/s") } else { "—".into() },
            if is_onnx { "—".into() } else { format!("{anchor} {}", show(med(rounds, theirs), "rows/s")) },
            show(med(rounds, mine), "rows/s"),
            show(speedup, ""),
            verdict(speedup.map(|v| v >= 3.0)),
        ));
        if let Some((peer, peer_batch, _)) = compiled {
            let theirs = |r: &Round| Some(rows_n / r.trees_peers.get(peer_batch)?.as_f64()?);
            let speedup = ratio(&mine, &theirs);
            t.push_str(&format!(
                "| {label}, batch {}k, 1 thread, compiled | — | — | {peer} {} | {} | {} × {peer} | ≥ 1 × best compiled | {} |\n",
                rows_n / 1e3,
                show(med(rounds, theirs), "rows/s"),
                show(med(rounds, mine), "rows/s"),
                show(speedup, ""),
                verdict(speedup.map(|v| v >= 1.0)),
            ));
        }
        let row = med(rounds, |r| at(&r.trees_ours, &[ours_key, "row", "median_us"]));
        let compiled_row = compiled
            .map(|(peer, _, key)| format!(", {peer} {}", show(med(rounds, |r| r.trees_peers.get(key)?.as_f64()), "µs")))
            .unwrap_or_default();
        let target = if is_onnx { "—" } else { "≤ 2 µs" };
        t.push_str(&format!(
            "| {label}, single row, in-process | — | {} | {} | {} | — | {target} | {} |\n",
            if is_onnx { show(med(rounds, |r| r.trees_peers.get(row_key)?.as_f64()), "µs") } else { "—".into() },
            if is_onnx {
                "—".into()
            } else {
                format!(
                    "{anchor} {}{compiled_row} (through Python)",
                    show(med(rounds, |r| r.trees_peers.get(row_key)?.as_f64()), "µs")
                )
            },
            show(row, "µs"),
            if is_onnx { "see note" } else { verdict(row.map(|v| v <= 2.0)) },
        ));
    }
    for (rows, goal) in [(1u64, 0.7), (100, 1.0)] {
        let vs_limit = med(rounds, |r| Some(http(r, "wharf", rows, "rps")? / http(r, "limit-axum", rows, "rps")?));
        let vs_fastapi = med(rounds, |r| Some(http(r, "wharf", rows, "rps")? / http(r, "fastapi-tuned", rows, "rps")?));
        t.push_str(&format!(
            "| HTTP /predict, {rows}-row body, wrk -t2 -c16 | FastAPI tuned {} | — | minimal server {} | {} (CPU/req {} vs {}) | {} × minimal; {} × FastAPI | ≥ {goal} × minimal | {} |\n",
            show(med(rounds, |r| http(r, "fastapi-tuned", rows, "rps")), "req/s"),
            show(med(rounds, |r| http(r, "limit-axum", rows, "rps")), "req/s"),
            show(med(rounds, |r| http(r, "wharf", rows, "rps")), "req/s"),
            show(med(rounds, |r| http(r, "wharf", rows, "server_cpu_us_per_req")), "µs"),
            show(med(rounds, |r| http(r, "limit-axum", rows, "server_cpu_us_per_req")), "µs"),
            show(vs_limit, ""),
            show(vs_fastapi, ""),
            verdict(vs_limit.map(|v| v >= goal)),
        ));
    }
    for rows in [1u64, 100] {
        let vs_native = med(rounds, |r| Some(http(r, "wharf-v2", rows, "rps")? / http(r, "wharf", rows, "rps")?));
        t.push_str(&format!(
            "| HTTP v2 `infer` vs native `/predict_proba`, {rows}-row body, same server | — | — | native {} | {} (CPU/req {} vs {}) | {} × native | ≥ 0.83 × native (cost ≤ 1.2 ×) | {} |\n",
            show(med(rounds, |r| http(r, "wharf", rows, "rps")), "req/s"),
            show(med(rounds, |r| http(r, "wharf-v2", rows, "rps")), "req/s"),
            show(med(rounds, |r| http(r, "wharf-v2", rows, "server_cpu_us_per_req")), "µs"),
            show(med(rounds, |r| http(r, "wharf", rows, "server_cpu_us_per_req")), "µs"),
            show(vs_native, ""),
            verdict(vs_native.map(|v| v >= 1.0 / 1.2)),
        ));
    }
    let watched = med(rounds, |r| Some(http(r, "wharf-watch-on", 1, "rps")? / http(r, "wharf-watch-off", 1, "rps")?));
    t.push_str(&format!(
        "| HTTP 1-row `/predict_proba`, prediction log 10% + drift on vs both off, same model | — | — | off {} | {} (CPU/req {} vs {}) | {} × off | ≥ 0.9 × off | {} |\n",
        show(med(rounds, |r| http(r, "wharf-watch-off", 1, "rps")), "req/s"),
        show(med(rounds, |r| http(r, "wharf-watch-on", 1, "rps")), "req/s"),
        show(med(rounds, |r| http(r, "wharf-watch-on", 1, "server_cpu_us_per_req")), "µs"),
        show(med(rounds, |r| http(r, "wharf-watch-off", 1, "server_cpu_us_per_req")), "µs"),
        show(watched, ""),
        verdict(watched.map(|v| v >= 0.9)),
    ));
    let load = med(rounds, |r| {
        Some(
            at(&r.ours, &["logistic_artifact_load", "median_us"])?
                .max(at(&r.ours, &["rf_artifact_load", "median_us"])?),
        )
    });
    t.push_str(&format!(
        "| artifact load (slower of the two models) | — | — | — | {} | — | ≤ 1 ms | {} |\n",
        show(load, "µs"),
        verdict(load.map(|v| v <= 1000.0)),
    ));
    let rss = med(rounds, |r| r.serve_rss_kb.map(|kb| kb / 1024.0));
    t.push_str(&format!(
        "| peak RSS of `wharf serve` (both models, after the load) | — | — | — | {} | — | ≤ 30 MB | {} |\n",
        show(rss, "MB"),
        verdict(rss.map(|v| v <= 30.0)),
    ));
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The imported trees' rows read `peers_trees`' JSON and `bench.py`'s timings.
    #[test]
    fn the_tree_rows_show_wharf_next_to_the_libraries() {
        let r = Round {
            trees_ours: serde_json::json!({
                "xgboost_500": {"batch": {"rows_per_s_median": 400_000.0}, "row": {"median_us": 1.9}},
                "lightgbm_500": {"batch": {"rows_per_s_median": 300_000.0}, "row": {"median_us": 2.5}},
                "onnx_forest_100": {"batch": {"rows_per_s_median": 1_500_000.0}, "row": {"median_us": 1.0}},
            }),
            trees_peers: serde_json::json!({
                "rows": 100_000, "xgboost_batch_s": 0.5, "lightgbm_batch_s": 2.5, "xgboost_row_us": 600.0,
                "lightgbm_row_us": 40.0, "onnxruntime_forest_batch_s": 0.65, "onnxruntime_forest_row_us": 15.0,
            }),
            ..Round::default()
        };
        let table = report(&[r]);
        let row = |start: &str| table.lines().find(|l| l.starts_with(start)).unwrap_or_else(|| panic!("{table}"));
        let xgb = row("| XGBoost 500 trees d6, batch 100k, 1 thread");
        assert!(xgb.contains("XGBoost inplace_predict 200 k rows/s") && xgb.contains("| 2.00 "), "{xgb}");
        assert!(xgb.ends_with("| **not met** |"), "{xgb}");
        let lgb = row("| LightGBM 500 trees d6, batch 100k, 1 thread");
        assert!(lgb.contains("| 7.50 ") && lgb.ends_with("| met |"), "{lgb}");
        assert!(row("| XGBoost 500 trees d6, single row").ends_with("| met |"));
        assert!(row("| LightGBM 500 trees d6, single row").ends_with("| **not met** |"));
        let forest = row("| forest 100 trees d8 through ONNX, batch 100k");
        assert!(forest.contains("| 154 k rows/s |") && forest.contains("| 9.75 "), "{forest}");
    }
}
