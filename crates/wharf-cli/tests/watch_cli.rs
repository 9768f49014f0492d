//! Production watch end to end through the real binary: `wharf serve` keeps a drift window
//! against the model's training profile and a prediction log; labels join the log through
//! `/feedback`; `wharf drift` reads a file or the log.
//!
//! The proof the issue asks for: the model's own holdout flags nothing, and a copy with one
//! numeric feature shifted by 1σ and one category's frequency flipped flags exactly those
//! two features, live and from files.
#![cfg(all(feature = "serve", unix))]

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;

use common::Sandbox;
use serde_json::{json, Value};

/// A seeded uniform stream (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.next().max(1e-12), self.next());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// `n` rows of x1, x2 ~ N(0, 1), x3 ~ U(0, 1), c ∈ {a, b} with P(a) = `p_a`, and the target y;
/// `shift` is added to x1 after the target is drawn (the world changed, not the labels).
fn table(seed: u64, n: usize, shift: f64, p_a: f64) -> (String, Vec<Value>) {
    let mut rng = Rng(seed);
    let mut csv = String::from("x1,x2,x3,c,y\n");
    let mut records = Vec::with_capacity(n);
    for _ in 0..n {
        let (x1, x2, x3) = (rng.normal(), rng.normal(), rng.next());
        let c = if rng.next() < p_a { "a" } else { "b" };
        let score = x1 + 0.5 * x2 + if c == "a" { 0.8 } else { -0.8 } + 0.5 * rng.normal();
        let y = if score > 0.3 { "yes" } else { "no" };
        let x1 = x1 + shift;
        csv += &format!("{x1:.4},{x2:.4},{x3:.4},{c},{y}\n");
        records.push(json!({ "x1": (x1 * 1e4).round() / 1e4, "x2": (x2 * 1e4).round() / 1e4, "x3": (x3 * 1e4).round() / 1e4, "c": c }));
    }
    (csv, records)
}

/// One HTTP exchange; returns the status, the lower-cased head and the body.
fn http(addr: &str, method: &str, path: &str, headers: &str, body: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// Sends `records` to `/predict` in requests of 50, ids `<prefix><k>`.
fn send(addr: &str, records: &[Value], prefix: &str) {
    for (k, chunk) in records.chunks(50).enumerate() {
        let body = json!({ "records": chunk }).to_string();
        let (status, head, answer) =
            http(addr, "POST", "/models/m/predict", &format!("X-Request-Id: {prefix}{k}\r\n"), &body);
        assert_eq!(status, 200, "{answer}");
        assert!(head.contains(&format!("x-request-id: {prefix}{k}\r\n")), "the request id is echoed: {head}");
    }
}

/// The drift answer, once the watcher has binned `rows` rows in all.
fn drift_after(addr: &str, rows: u64) -> Value {
    for _ in 0..200 {
        let (status, _, body) = http(addr, "GET", "/models/m/drift", "", "");
        assert_eq!(status, 200, "{body}");
        let report: Value = serde_json::from_str(&body).expect("JSON");
        if report["rows_seen"].as_u64() >= Some(rows) {
            return report;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("the watcher never binned {rows} rows");
}

/// `/metrics` once it holds `line` (the writer drains its queue every few milliseconds).
fn metric_reaches(addr: &str, line: &str) -> String {
    for _ in 0..200 {
        let (_, _, metrics) = http(addr, "GET", "/metrics", "", "");
        if metrics.lines().any(|l| l == line) {
            return metrics;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("/metrics never showed {line}");
}

fn drifted(report: &Value) -> BTreeSet<String> {
    report["drifted"].as_array().expect("drifted").iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

#[test]
fn live_drift_flags_exactly_the_shifted_features_and_labels_join_the_log() {
    let s = Sandbox::new();
    let (train, _) = table(1, 4000, 0.0, 0.7);
    let (holdout, holdout_records) = table(2, 1000, 0.0, 0.7);
    let (shifted, shifted_records) = table(3, 1000, 1.0, 0.3);
    s.write("train.csv", train);
    s.write("holdout.csv", holdout);
    s.write("shifted.csv", shifted);
    // The window holds the last 1000 rows: after the shifted copy, only it.
    s.write("wharf.toml", "[serving.drift]\nwindow = 1000\n");
    s.ok(&["-q", "train", "--input", "train.csv", "--target", "y", "--name", "m", "--alias", "champion"]);
    let shown = s.ok(&["models", "show", "m"]);
    assert!(shown.contains("Drift reference"), "{shown}");
    assert!(!shown.contains("wharf.reference_profile"), "the profile is data, not a tag to read: {shown}");

    let (child, addr) = s.serve(&["serve", "-m", "m@champion", "--log-sample", "1", "--log-path", "preds"]);
    send(&addr, &holdout_records, "h");
    let calm = drift_after(&addr, 1000);
    assert_eq!(calm["judged"], true, "{calm}");
    assert!(drifted(&calm).is_empty(), "the model's own holdout drifts nowhere: {calm}");
    let features: BTreeSet<&str> =
        calm["features"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(features, BTreeSet::from(["x1", "x2", "x3", "c"]));

    send(&addr, &shifted_records, "s");
    let moved = drift_after(&addr, 2000);
    assert_eq!(drifted(&moved), BTreeSet::from(["x1".to_string(), "c".to_string()]), "{moved}");
    assert_eq!(moved["window_rows"], 1000);
    let (_, _, metrics) = http(&addr, "GET", "/metrics", "", "");
    assert!(metrics.contains("wharf_drift_features_drifted{model=\"m\",version=\"1\"} 2"), "{metrics}");
    assert!(metrics.contains("wharf_drift_psi{model=\"m\",version=\"1\",feature=\"x1\"}"), "{metrics}");
    // The log is written off the request path: wait for the writer, then labels can join.
    let logged = metric_reaches(&addr, "wharf_prediction_log_rows_total 2000");
    assert!(logged.contains("wharf_watch_dropped_total 0"), "{logged}");

    // Labels join logged requests by id; unknown ids are counted, not an error.
    let feedback = json!({ "feedback": [
        { "request_id": "h0", "label": "yes" },
        { "request_id": "h1", "label": "no" },
        { "request_id": "nobody", "label": "no" },
    ]})
    .to_string();
    let (status, _, body) = http(&addr, "POST", "/models/m/feedback", "", &feedback);
    assert_eq!(status, 200, "{body}");
    let joined: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (joined["received"].as_u64(), joined["matched"].as_u64(), joined["unmatched"].as_u64()),
        (Some(3), Some(2), Some(1))
    );
    let (status, _, body) = http(&addr, "POST", "/models/m/feedback", "", "{\"feedback\": [{\"request_id\": \"h0\"}]}");
    assert_eq!(status, 400, "a label is required: {body}");
    assert!(body.contains("feedback[0].label"), "{body}");
    let (_, _, metrics) = http(&addr, "GET", "/metrics", "", "");
    assert!(metrics.contains("wharf_live_labelled{model=\"m\",version=\"1\"} 2"), "{metrics}");
    assert!(metrics.contains("wharf_feedback_unmatched_total 1"), "{metrics}");
    child.terminate();

    // The log: one line per row, features by name, and the feedback beside it.
    let mut lines = Vec::new();
    let mut feedback_lines = 0;
    for entry in std::fs::read_dir(s.path("preds")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        if name.starts_with("predictions-m-") {
            lines.extend(text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()));
        } else if name.starts_with("feedback-m-") {
            feedback_lines += text.lines().count();
        }
    }
    assert_eq!(lines.len(), 2000);
    let first = lines.iter().find(|l| l["request_id"] == "h0" && l["row"] == 0).expect("h0 row 0 logged");
    assert_eq!(first["features"]["c"], holdout_records[0]["c"]);
    assert_eq!(first["features"]["x1"], holdout_records[0]["x1"]);
    assert!(
        first["prediction"].is_string() && first["probabilities"]["yes"].is_number() && first["version"] == 1,
        "{first}"
    );
    assert_eq!(feedback_lines, 3);

    // The same judgement from files, and from the log.
    let judged = |input: &str| drifted(&s.json(&["drift", "--model", "m@champion", "--input", input]));
    assert!(judged("holdout.csv").is_empty());
    assert_eq!(judged("shifted.csv"), BTreeSet::from(["x1".to_string(), "c".to_string()]));
    let err = s.error(&["drift", "--model", "m", "--input", "shifted.csv", "--fail-on-drift"]);
    assert!(err.contains("drift in 2 feature(s)") && err.contains("x1") && err.contains('c'), "{err}");
    // The HTML report: a chart per feature (training and now over its bins) and one of PSI.
    s.ok(&["-q", "drift", "--model", "m", "--input", "shifted.csv", "--html", "drift.html"]);
    let html = s.read("drift.html");
    assert!(html.contains("data-plot=\"drift-psi\" data-points=\"5\""), "4 features and the prediction");
    // x1: 20 value bins (or fewer, when training values tie) and the missing bin, twice.
    let x1 = html.split("data-plot=\"drift-x1\" data-points=\"").nth(1).expect("a chart of x1");
    let points: usize = x1.split('"').next().unwrap().parse().unwrap();
    assert_eq!(points, 2 * (20 + 1), "{}", &x1[..80]);
    assert!(html.contains("data-plot=\"drift-c\" data-points=\"6\""), "levels a, b and missing, twice");
    assert!(html.contains("data-feature=\"x1\"") && html.contains("data-drifted=\"true\""));
    assert!(
        !html.contains("<script") && !html.contains("src=\"http") && !html.contains("href=\"http"),
        "self-contained"
    );
    let table = s.ok(&["drift", "--model", "m", "--input", "holdout.csv"]);
    assert!(table.contains("No feature drifted"), "{table}");
    let from_log = s.json(&["drift", "--model", "m", "--log", "preds"]);
    assert_eq!(from_log["window_rows"], 2000, "{from_log}");

    // `wharf score` and `wharf stream` write the same log, which `wharf drift` reads alike.
    s.ok(&[
        "-q",
        "score",
        "-m",
        "m",
        "-i",
        "shifted.csv",
        "-o",
        "scored.csv",
        "--log",
        "batch-log",
        "--log-sample",
        "0.5",
    ]);
    let batch = s.json(&["drift", "--model", "m", "--log", "batch-log"]);
    let rows = batch["window_rows"].as_u64().unwrap();
    assert!((400..=600).contains(&rows), "about half the 1000 rows are sampled: {rows}");
    assert_eq!(drifted(&batch), BTreeSet::from(["x1".to_string(), "c".to_string()]), "{batch}");
    let lines: String = shifted_records.iter().take(300).map(|r| format!("{r}\n")).collect();
    s.write("live.jsonl", lines);
    s.ok(&["-q", "stream", "-m", "m", "--input", "live.jsonl", "--output", "streamed.jsonl", "--log", "stream-log"]);
    let streamed = s.json(&["drift", "--model", "m", "--log", "stream-log"]);
    assert_eq!(streamed["window_rows"], 300, "{streamed}");
    assert!(drifted(&streamed).contains("x1"), "{streamed}");
    let keyed = std::fs::read_dir(s.path("stream-log")).unwrap().next().unwrap().unwrap().path();
    let first: Value = serde_json::from_str(std::fs::read_to_string(keyed).unwrap().lines().next().unwrap()).unwrap();
    assert!(
        first["request_id"].as_str().unwrap().starts_with("file:live.jsonl@"),
        "a streamed row is logged by its key: {first}"
    );
}

#[test]
fn an_unwritable_log_directory_stops_the_start_and_models_without_a_profile_say_so() {
    let s = Sandbox::with_leads();
    s.train_lead();
    s.write("blocked", "a file where the log directory would go");
    let out =
        s.run(&["serve", "-m", "lead", "--addr", "127.0.0.1:0", "--log-sample", "0.1", "--log-path", "blocked/sub"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("prediction log") && stderr.contains("blocked"), "{stderr}");
    let err = s.error(&["serve", "-m", "lead", "--log-sample", "1.5"]);
    assert!(err.contains("--log-sample 1.5"), "{err}");

    // An imported model has no training profile: drift says so rather than guessing.
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/../wharf-trees/tests/fixtures/seed_xgboost.json");
    s.ok(&["-q", "models", "import", seed, "--name", "seed", "--classes", "low,mid,high"]);
    // With two models served, /invocations scores `serving.default_model`.
    s.write("wharf.toml", "[serving]\ndefault_model = \"lead\"\n");

    // Feedback with the log off is refused, naming the flag that turns it on.
    let (child, addr) = s.serve(&["serve", "-m", "lead", "-m", "seed"]);
    let (status, _, body) = http(&addr, "GET", "/models/seed/drift", "", "");
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("no reference profile"), "{body}");
    let leads = s.read("leads.csv");
    let mut lines = leads.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    let record: serde_json::Map<String, Value> = header
        .iter()
        .zip(&row)
        .filter(|(name, _)| !["lead_id", "converted"].contains(name))
        .map(|(name, cell)| (name.to_string(), cell.parse::<f64>().map(Value::from).unwrap_or_else(|_| (*cell).into())))
        .collect();
    let (status, _, body) =
        http(&addr, "POST", "/invocations", "", &json!({ "dataframe_records": [record] }).to_string());
    assert_eq!(status, 200, "serving.default_model picks lead: {body}");
    assert!(body.contains("predictions"), "{body}");
    let (status, _, body) =
        http(&addr, "POST", "/models/lead/feedback", "", "{\"request_id\": \"x\", \"label\": \"1\"}");
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("--log-sample"), "{body}");
    let (status, _, body) = http(&addr, "GET", "/models/nobody/drift", "", "");
    assert_eq!(status, 404, "{body}");
    child.terminate();
    let err = s.error(&["drift", "--model", "seed", "--input", "leads.csv"]);
    assert!(err.contains("no reference profile"), "{err}");

    // Imported with a sample of its training data, the same model gets a profile.
    let sample = |shift: f64| {
        let mut rng = Rng(9);
        let header: Vec<String> = (0..20).map(|j| format!("f{j}")).collect();
        let mut csv = header.join(",") + "\n";
        for _ in 0..600 {
            let row: Vec<String> =
                (0..20).map(|j| format!("{:.4}", rng.next() * 4.0 + if j == 3 { shift } else { 0.0 })).collect();
            csv += &(row.join(",") + "\n");
        }
        csv
    };
    s.write("reference.csv", sample(0.0));
    s.write("moved.csv", sample(2.0));
    let err = s.error(&[
        "models",
        "import",
        seed,
        "--name",
        "seed-ref",
        "--classes",
        "low,mid,high",
        "--reference",
        "leads.csv",
    ]);
    assert!(err.contains("no column 'f0'"), "{err}");
    assert!(s.run(&["models", "show", "seed-ref"]).status.code() != Some(0), "a refused import registers nothing");
    s.ok(&[
        "-q",
        "models",
        "import",
        seed,
        "--name",
        "seed-ref",
        "--classes",
        "low,mid,high",
        "--reference",
        "reference.csv",
    ]);
    assert!(drifted(&s.json(&["drift", "--model", "seed-ref", "--input", "reference.csv"])).is_empty());
    assert_eq!(
        drifted(&s.json(&["drift", "--model", "seed-ref", "--input", "moved.csv"])),
        BTreeSet::from(["f3".to_string()])
    );
}
