//! `cargo xtask soak`: the release `wharf serve` under mixed load for a while (10 minutes
//! by default, `SOAK_SECONDS` to change it), kept out of `cargo xtask test` because it is
//! long. It proves the hardening holds over time, not just per request:
//!
//! - `wrk` sends good 1-row predictions the whole time (throughput, p50/p99, non-2xx);
//! - a checker compares every answer it gets with what `wharf score` computed offline for
//!   the version the answer names, so a wrong or dropped answer is counted, not missed;
//! - bad requests (not JSON, a wrong type, an unknown level, an unknown model, a wrong
//!   content type, an announced oversized body) must all be 4xx;
//! - maximum-size bodies (just under `serving.body_limit_bytes`) must be answered 200;
//! - slow-header and silent clients must be cut by the header-read timeout;
//! - the `champion` alias moves between two versions every 10 s, and the admin endpoint
//!   reloads every 30 s, so answers switch versions mid-load;
//! - RSS and open file descriptors are sampled every 5 s.
//!
//! It fails on any 5xx, wrong or dropped answer, a slow client left connected, or RSS or
//! descriptors that keep growing, and writes its report to `target/soak/report.md`.

use crate::backends::free_port;
use crate::bench_peers::{wait_ready, Server};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ADMIN_TOKEN: &str = "soak-admin-token";
const BODY_LIMIT: usize = 16 * 1024 * 1024;
const FEATURES: [&str; 7] =
    ["source", "industry", "pages_viewed", "minutes_on_site", "emails_opened", "company_size", "days_since_signup"];
const NUMERIC: [bool; 7] = [false, false, true, true, true, true, true];

/// Counters every load thread adds to.
#[derive(Default)]
struct Counts {
    checked: AtomicU64,
    /// Checked answers from version 1 and from version 2.
    by_version: [AtomicU64; 2],
    wrong: AtomicU64,
    dropped: AtomicU64,
    server_errors: AtomicU64,
    bad_sent: AtomicU64,
    bad_not_4xx: AtomicU64,
    big_sent: AtomicU64,
    big_not_200: AtomicU64,
    slow_opened: AtomicU64,
    slow_left_open: AtomicU64,
    alias_moves: AtomicU64,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
}

/// One sample of the server process.
struct Sample {
    at: f64,
    rss_mib: f64,
    fds: usize,
}

pub fn soak(root: &Path) -> Result<(), String> {
    let seconds: u64 = std::env::var("SOAK_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(600);
    if Command::new("wrk").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err() {
        return Err("wrk is not installed (Debian: apt-get install wrk)".into());
    }
    eprintln!("==> building the release wharf binary");
    let status = crate::cargo()
        .args(["build", "--release", "--quiet", "-p", "wharf-cli", "--bin", "wharf"])
        .current_dir(root)
        .status()
        .map_err(|e| format!("cargo build: {e}"))?;
    if !status.success() {
        return Err("cargo build --release -p wharf-cli failed".into());
    }
    let wharf = root.join("target/release/wharf");
    let dir = root.join("target/soak");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;

    let rows = prepare_models(&wharf, root, &dir)?;
    let expected = [expected(&wharf, &dir, 1)?, expected(&wharf, &dir, 2)?];

    let port = free_port()?;
    let log = std::fs::File::create(dir.join("serve.log")).map_err(|e| e.to_string())?;
    let child = Command::new(&wharf)
        .args(["serve", "--model", "soak@champion", "--addr", &format!("127.0.0.1:{port}"), "-q"])
        .current_dir(&dir)
        .env("WHARF_SERVING__ADMIN_TOKEN", ADMIN_TOKEN)
        .env("WHARF_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("wharf serve: {e}"))?;
    let mut server = Server(child);
    wait_ready(&mut server, port, "/readyz")?;
    let pid = server.0.id();
    eprintln!("==> soaking wharf serve (pid {pid}, port {port}) for {seconds} s");

    let counts = Arc::new(Counts::default());
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let rows = Arc::new(rows);
    let expected = Arc::new(expected);
    let mut threads = Vec::new();
    {
        let (c, s, r, e) = (counts.clone(), stop.clone(), rows.clone(), expected.clone());
        threads.push(std::thread::spawn(move || checker(port, &r, &e, &c, &s)));
    }
    {
        let (c, s) = (counts.clone(), stop.clone());
        threads.push(std::thread::spawn(move || bad_requests(port, &c, &s)));
    }
    {
        let (c, s, r) = (counts.clone(), stop.clone(), rows.clone());
        threads.push(std::thread::spawn(move || big_bodies(port, &r, &c, &s)));
    }
    {
        let (c, s) = (counts.clone(), stop.clone());
        threads.push(std::thread::spawn(move || slow_clients(port, &c, &s)));
    }
    {
        let (c, s, w, d) = (counts.clone(), stop.clone(), wharf.clone(), dir.clone());
        threads.push(std::thread::spawn(move || mover(port, &w, &d, &c, &s)));
    }
    {
        let (s, m) = (stop.clone(), samples.clone());
        threads.push(std::thread::spawn(move || sampler(pid, start, &m, &s)));
    }

    let wrk = run_wrk(port, &rows[0], &dir, seconds);
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        let _ = t.join();
    }
    let exited = server.0.try_wait().ok().flatten();
    drop(server);
    let wrk = wrk?;
    let samples = samples.lock().map(|mut s| std::mem::take(&mut *s)).unwrap_or_default();
    let (report, failures) = report(seconds, &wrk, &counts, &samples, exited.is_some());
    std::fs::write(dir.join("report.md"), &report).map_err(|e| e.to_string())?;
    println!("{report}");
    if failures.is_empty() {
        eprintln!("<== soak passed; report in {}", dir.join("report.md").display());
        Ok(())
    } else {
        Err(format!("soak failed: {}", failures.join("; ")))
    }
}

/// Trains two versions of `soak` on the bundled lead table (a logistic regression and a
/// random forest, so the versions give different answers), points `champion` at 1, and
/// returns the first 200 rows' features as JSON objects.
fn prepare_models(wharf: &Path, root: &Path, dir: &Path) -> Result<Vec<Value>, String> {
    let data = root.join("crates/wharf-ml/data/lead_scoring.csv");
    for (algorithm, alias) in [("logistic", "champion"), ("random-forest", "challenger")] {
        let status = Command::new(wharf)
            .args(["train", "-q", "--input"])
            .arg(&data)
            .args(["--target", "converted", "--id", "lead_id", "--name", "soak", "--algorithm", algorithm])
            .args(["--alias", alias])
            .current_dir(dir)
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("wharf train: {e}"))?;
        if !status.success() {
            return Err(format!("wharf train --algorithm {algorithm} failed"));
        }
    }
    let text = std::fs::read_to_string(&data).map_err(|e| format!("{}: {e}", data.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let mut rows = Vec::new();
    for line in lines.take(200) {
        let cells: HashMap<&str, &str> = header.iter().copied().zip(line.split(',')).collect();
        let mut row = serde_json::Map::new();
        for (name, numeric) in FEATURES.iter().zip(NUMERIC) {
            let cell = cells.get(name).copied().unwrap_or_default();
            let value = if numeric {
                cell.parse::<f64>().map(Value::from).map_err(|_| format!("{name}: not a number: {cell}"))?
            } else {
                Value::from(cell)
            };
            row.insert((*name).to_string(), value);
        }
        rows.push(Value::Object(row));
    }
    let jsonl: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(dir.join("rows.jsonl"), jsonl).map_err(|e| e.to_string())?;
    Ok(rows)
}

/// The class probabilities `wharf score` (in-process scoring, no HTTP) gives each row under
/// version `version`, in the order of the classes' `prob_` columns.
fn expected(wharf: &Path, dir: &Path, version: u64) -> Result<Vec<Vec<f64>>, String> {
    let output = dir.join(format!("expected-{version}.jsonl"));
    let status = Command::new(wharf)
        .args(["score", "-q", "--model", &format!("soak@{version}"), "--input", "rows.jsonl", "--output"])
        .arg(&output)
        .current_dir(dir)
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("wharf score: {e}"))?;
    if !status.success() {
        return Err(format!("wharf score --model soak@{version} failed"));
    }
    let text = std::fs::read_to_string(&output).map_err(|e| e.to_string())?;
    text.lines()
        .map(|line| {
            let row: serde_json::Map<String, Value> = serde_json::from_str(line).map_err(|e| e.to_string())?;
            Ok(["prob_no", "prob_yes"]
                .iter()
                .map(|k| row.get(*k).and_then(Value::as_f64).unwrap_or(f64::NAN))
                .collect())
        })
        .collect()
}

/// One HTTP/1.1 exchange on a fresh connection (`Connection: close`): the status and body,
/// or `None` when the connection failed or closed before a whole answer.
fn exchange(port: u16, method: &str, path: &str, headers: &str, body: &[u8]) -> Option<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n{headers}\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).ok()?;
    // A server may answer (413) before it has read the whole body, and close.
    let _ = stream.write_all(body);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&answer[..split]).ok()?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let mut body = answer[split + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body)?;
    }
    Some((status, body))
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(&data[..line_end]).ok()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        let chunk = data.get(line_end + 2..line_end + 2 + size)?;
        out.extend_from_slice(chunk);
        data = data.get(line_end + 4 + size..)?;
    }
}

const JSON: &str = "Content-Type: application/json\r\n";

fn checker(port: u16, rows: &[Value], expected: &[Vec<Vec<f64>>; 2], counts: &Counts, stop: &AtomicBool) {
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let row = i % rows.len();
        i += 1;
        let body = format!("{{\"records\": [{}]}}", rows[row]);
        let Some((status, answer)) =
            exchange(port, "POST", "/models/soak/predict?probabilities=array", JSON, body.as_bytes())
        else {
            counts.dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        if status >= 500 {
            counts.server_errors.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let answer: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
        let version = answer["version"].as_u64().unwrap_or(0);
        let got: Vec<f64> = answer["probabilities"][0]
            .as_array()
            .map(|p| p.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default();
        let want = usize::try_from(version).ok().and_then(|v| expected.get(v.wrapping_sub(1))).map(|e| &e[row]);
        let right = status == 200
            && want.is_some_and(|w| w.len() == got.len() && w.iter().zip(&got).all(|(a, b)| (a - b).abs() <= 1e-12));
        counts.checked.fetch_add(1, Ordering::Relaxed);
        if let Some(n) = usize::try_from(version).ok().and_then(|v| counts.by_version.get(v.wrapping_sub(1))) {
            n.fetch_add(1, Ordering::Relaxed);
        }
        if !right {
            counts.wrong.fetch_add(1, Ordering::Relaxed);
            eprintln!("soak: wrong answer for row {row}: {status} {answer}");
        }
    }
}

fn bad_requests(port: u16, counts: &Counts, stop: &AtomicBool) {
    let long_level = format!("{{\"records\": [{{\"source\": \"{}\"}}]}}", "x".repeat(1 << 20));
    let cases: Vec<(&str, String, Vec<u8>)> = vec![
        ("/models/soak/predict", JSON.into(), b"{\"records\": [".to_vec()),
        ("/models/soak/predict", JSON.into(), b"{\"records\": [{\"pages_viewed\": \"many\"}]}".to_vec()),
        ("/models/soak/predict", JSON.into(), long_level.into_bytes()),
        ("/models/ghost/predict", JSON.into(), b"{\"records\": [{}]}".to_vec()),
        ("/models/soak/predict", "Content-Type: text/plain\r\n".into(), b"hello".to_vec()),
        ("/models/soak/predict", JSON.into(), b"{\"instances\": [[1, 2]]}".to_vec()),
    ];
    while !stop.load(Ordering::Relaxed) {
        for (path, headers, body) in &cases {
            counts.bad_sent.fetch_add(1, Ordering::Relaxed);
            match exchange(port, "POST", path, headers, body) {
                Some((status, _)) if (400..500).contains(&status) => {}
                Some((status, _)) => {
                    counts.bad_not_4xx.fetch_add(1, Ordering::Relaxed);
                    if status >= 500 {
                        counts.server_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                None => {
                    counts.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        // An announced body over the limit, never sent: 413 at once.
        counts.bad_sent.fetch_add(1, Ordering::Relaxed);
        let announced = oversized_announcement(port);
        if announced != Some(413) {
            counts.bad_not_4xx.fetch_add(1, Ordering::Relaxed);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn oversized_announcement(port: u16) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let head = "POST /models/soak/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n";
    stream.write_all(head.as_bytes()).ok()?;
    let mut answer = [0u8; 64];
    let n = stream.read(&mut answer).ok()?;
    std::str::from_utf8(&answer[..n]).ok()?.split(' ').nth(1)?.parse().ok()
}

fn big_bodies(port: u16, rows: &[Value], counts: &Counts, stop: &AtomicBool) {
    let mut body = String::from("{\"records\": [");
    let mut i = 0;
    loop {
        let row = rows[i % rows.len()].to_string();
        if body.len() + row.len() + 4 > BODY_LIMIT - 1024 {
            break;
        }
        if i > 0 {
            body.push(',');
        }
        body.push_str(&row);
        i += 1;
    }
    body.push_str("]}");
    while !stop.load(Ordering::Relaxed) {
        counts.big_sent.fetch_add(1, Ordering::Relaxed);
        match exchange(port, "POST", "/models/soak/predict?probabilities=array", JSON, body.as_bytes()) {
            Some((200, _)) => {}
            Some((status, _)) => {
                counts.big_not_200.fetch_add(1, Ordering::Relaxed);
                if status >= 500 {
                    counts.server_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            None => {
                counts.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// Every 15 s: 100 clients that send half a request line slowly and 100 that send nothing;
/// after the header-read timeout (10 s) plus a margin, each must have been disconnected.
fn slow_clients(port: u16, counts: &Counts, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let mut open: Vec<TcpStream> = (0..200).filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok()).collect();
        counts.slow_opened.fetch_add(open.len() as u64, Ordering::Relaxed);
        let opened = Instant::now();
        while opened.elapsed() < Duration::from_secs(13) {
            for stream in open.iter_mut().step_by(2) {
                let _ = stream.write_all(b"G");
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        for mut stream in open {
            let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
            let mut buf = [0u8; 256];
            // Cut: EOF or reset. Still open: the read times out.
            let cut = match stream.read(&mut buf) {
                Ok(_) => true,
                Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
            };
            if !cut {
                counts.slow_left_open.fetch_add(1, Ordering::Relaxed);
            }
        }
        sleep_unless(stop, Duration::from_secs(2));
    }
}

/// Moves `champion` between versions 1 and 2 every 10 s with the CLI, and asks the server to
/// reload every 30 s.
fn mover(port: u16, wharf: &Path, dir: &Path, counts: &Counts, stop: &AtomicBool) {
    let mut tick = 0u64;
    while sleep_unless(stop, Duration::from_secs(10)) {
        tick += 1;
        let version = if tick.is_multiple_of(2) { "1" } else { "2" };
        let moved = Command::new(wharf)
            .args(["models", "alias", "-q", "soak", "champion", version])
            .current_dir(dir)
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if moved {
            counts.alias_moves.fetch_add(1, Ordering::Relaxed);
        }
        if tick.is_multiple_of(3) {
            let auth = format!("Authorization: Bearer {ADMIN_TOKEN}\r\n");
            match exchange(port, "POST", "/admin/models/soak/reload", &auth, b"") {
                Some((200, _)) => counts.reloads.fetch_add(1, Ordering::Relaxed),
                _ => counts.reload_failures.fetch_add(1, Ordering::Relaxed),
            };
        }
    }
}

fn sampler(pid: u32, start: Instant, samples: &Mutex<Vec<Sample>>, stop: &AtomicBool) {
    loop {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let rss_kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(f64::NAN);
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map(Iterator::count).unwrap_or(0);
        if let Ok(mut s) = samples.lock() {
            s.push(Sample { at: start.elapsed().as_secs_f64(), rss_mib: rss_kib / 1024.0, fds });
        }
        if !sleep_unless(stop, Duration::from_secs(5)) {
            return;
        }
    }
}

/// Sleeps `total` in short steps; false when asked to stop meanwhile.
fn sleep_unless(stop: &AtomicBool, total: Duration) -> bool {
    let until = Instant::now() + total;
    while Instant::now() < until {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    !stop.load(Ordering::Relaxed)
}

/// wrk's summary of the good-request load.
struct Wrk {
    requests: u64,
    rps: f64,
    p50: String,
    p99: String,
    non_2xx: u64,
    socket_errors: String,
}

fn run_wrk(port: u16, row: &Value, dir: &Path, seconds: u64) -> Result<Wrk, String> {
    let body = format!("{{\"records\": [{row}]}}").replace('\\', "\\\\").replace('"', "\\\"");
    let script = dir.join("predict.lua");
    std::fs::write(
        &script,
        format!("wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = \"{body}\"\n"),
    )
    .map_err(|e| e.to_string())?;
    let out = Command::new("wrk")
        .args(["-t2", "-c16", &format!("-d{seconds}s"), "--latency", "-s"])
        .arg(&script)
        .arg(format!("http://127.0.0.1:{port}/models/soak/predict?probabilities=array"))
        .output()
        .map_err(|e| format!("wrk: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    std::fs::write(dir.join("wrk.txt"), &text).map_err(|e| e.to_string())?;
    let field = |prefix: &str| {
        text.lines().find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_string())).unwrap_or_default()
    };
    let requests = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("wrk printed no summary:\n{text}"))?;
    Ok(Wrk {
        requests,
        rps: field("Requests/sec:").parse().unwrap_or(0.0),
        p50: field("50%"),
        p99: field("99%"),
        non_2xx: field("Non-2xx or 3xx responses:").parse().unwrap_or(0),
        socket_errors: field("Socket errors:"),
    })
}

fn report(seconds: u64, wrk: &Wrk, c: &Counts, samples: &[Sample], exited: bool) -> (String, Vec<String>) {
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut failures = Vec::new();
    let mut check = |bad: bool, what: String| {
        if bad {
            failures.push(what);
        }
    };
    check(exited, "the server exited during the soak".into());
    check(get(&c.server_errors) > 0, format!("{} 5xx answers", get(&c.server_errors)));
    check(wrk.non_2xx > 0, format!("{} non-2xx answers to good requests", wrk.non_2xx));
    check(get(&c.wrong) > 0, format!("{} wrong answers", get(&c.wrong)));
    check(get(&c.dropped) > 0, format!("{} dropped answers", get(&c.dropped)));
    check(get(&c.bad_not_4xx) > 0, format!("{} bad requests not answered 4xx", get(&c.bad_not_4xx)));
    check(get(&c.big_not_200) > 0, format!("{} maximum-size bodies not answered 200", get(&c.big_not_200)));
    check(get(&c.slow_left_open) > 0, format!("{} slow clients left connected", get(&c.slow_left_open)));
    check(get(&c.reload_failures) > 0, format!("{} failed reloads", get(&c.reload_failures)));
    check(get(&c.checked) == 0, "the checker got no answer at all".into());
    // A reload every 30 s switches the answering version: past a minute both must have answered.
    check(
        seconds >= 60 && c.by_version.iter().any(|n| get(n) == 0),
        "the alias moves never switched the answering version".into(),
    );
    // Flat: the last third's peak is within 25% (and 64 MiB) of the middle third's.
    let third = samples.len() / 3;
    let peak = |s: &[Sample]| s.iter().map(|s| s.rss_mib).fold(0.0, f64::max);
    let peak_fds = |s: &[Sample]| s.iter().map(|s| s.fds).max().unwrap_or(0);
    if third > 0 {
        let (middle, last) = (&samples[third..2 * third], &samples[2 * third..]);
        check(
            peak(last) > peak(middle) * 1.25 + 64.0,
            format!("RSS grew: {:.0} MiB in the middle third, {:.0} MiB in the last", peak(middle), peak(last)),
        );
        check(
            peak_fds(last) > peak_fds(middle) + 64,
            format!("open descriptors grew: {} then {}", peak_fds(middle), peak_fds(last)),
        );
    }

    let mut r = String::new();
    let _ = writeln!(r, "## wharf serve soak, {seconds} s\n");
    let _ = writeln!(r, "| measure | value |\n|---|---|");
    let _ = writeln!(r, "| good 1-row requests (wrk -t2 -c16) | {} ({:.0}/s) |", wrk.requests, wrk.rps);
    let _ = writeln!(r, "| latency p50 / p99 | {} / {} |", wrk.p50, wrk.p99);
    let _ = writeln!(r, "| non-2xx to good requests | {} |", wrk.non_2xx);
    let socket = if wrk.socket_errors.is_empty() { "none" } else { wrk.socket_errors.as_str() };
    let _ = writeln!(r, "| wrk socket errors | {socket} |");
    let _ = writeln!(
        r,
        "| answers checked against in-process scoring | {} ({} from version 1, {} from version 2; {} wrong) |",
        get(&c.checked),
        get(&c.by_version[0]),
        get(&c.by_version[1]),
        get(&c.wrong)
    );
    let _ = writeln!(r, "| dropped answers | {} |", get(&c.dropped));
    let _ = writeln!(r, "| 5xx | {} |", get(&c.server_errors));
    let _ = writeln!(r, "| bad requests (all must be 4xx) | {} ({} not 4xx) |", get(&c.bad_sent), get(&c.bad_not_4xx));
    let _ = writeln!(r, "| 16 MiB bodies (all must be 200) | {} ({} not) |", get(&c.big_sent), get(&c.big_not_200));
    let _ = writeln!(
        r,
        "| slow and silent clients (all must be cut) | {} ({} left open) |",
        get(&c.slow_opened),
        get(&c.slow_left_open)
    );
    let _ = writeln!(
        r,
        "| alias moves / reloads | {} / {} ({} failed) |",
        get(&c.alias_moves),
        get(&c.reloads),
        get(&c.reload_failures)
    );
    if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
        let _ = writeln!(
            r,
            "| RSS first / peak / last | {:.0} / {:.0} / {:.0} MiB |",
            first.rss_mib,
            peak(samples),
            last.rss_mib
        );
        let _ = writeln!(
            r,
            "| open descriptors first / peak / last | {} / {} / {} |",
            first.fds,
            peak_fds(samples),
            last.fds
        );
    }
    let _ = writeln!(r, "\nRSS (MiB) and open descriptors, every minute:\n");
    let _ = writeln!(r, "| s | RSS MiB | fds |\n|---|---|---|");
    let mut next = 0.0;
    for s in samples {
        if s.at >= next {
            let _ = writeln!(r, "| {:.0} | {:.0} | {} |", s.at, s.rss_mib, s.fds);
            next += 60.0;
        }
    }
    let verdict = if failures.is_empty() { "passed".to_string() } else { format!("FAILED: {}", failures.join("; ")) };
    let _ = writeln!(r, "\n{verdict}");
    (r, failures)
}
