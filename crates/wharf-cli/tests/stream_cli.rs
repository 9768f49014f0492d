//! `wharf stream` end to end: the real binary in a fresh directory, a model registered with
//! `wharf train`, records from a file or stdin.

mod common;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::Sandbox;
use serde_json::Value;

/// `n` records, with an id and an event time; every 50th has a null petal length.
fn records(n: usize) -> String {
    (0..n)
        .map(|i| {
            let petal = if i % 50 == 49 { "null".to_string() } else { format!("{}", 1.4 + (i % 3) as f64 * 2.1) };
            format!(
                "{{\"id\":{i},\"t\":{},\"u\":\"u{}\",\"sepal_length\":5.5,\"sepal_width\":3.0,\"petal_length\":{petal},\"petal_width\":{}}}\n",
                i * 1000,
                i % 4,
                0.2 + (i % 3) as f64
            )
        })
        .collect()
}

const WINDOW: [&str; 8] =
    ["--window-fields", "petal_width", "--window-key", "u", "--event-time", "t", "--window", "5s"];

#[test]
fn stream_scores_a_file_with_window_features_and_reports_counts() {
    let s = Sandbox::with_iris();
    fs::write(s.path("in.jsonl"), records(100)).expect("input");
    let mut args = vec![
        "--json",
        "stream",
        "-m",
        "iris@champion",
        "-i",
        "in.jsonl",
        "-o",
        "out.jsonl",
        "--id",
        "id",
        "--emit-features",
    ];
    args.extend(WINDOW);
    let out = s.run(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).expect("json summary");
    assert_eq!(summary["records_in"], 100);
    assert_eq!(summary["dropped_null"], 2);
    assert_eq!(summary["records_out"], 98);
    let lines: Vec<Value> = fs::read_to_string(s.path("out.jsonl"))
        .expect("output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("line"))
        .collect();
    assert_eq!(lines.len(), 98);
    // id 4 is entity u0 at t = 4 s; u0's events in [-1 s, 4 s] are ids 0 and 4, with petal
    // widths 0.2 and 1.2: the average is 0.7.
    let four = lines.iter().find(|l| l["id"] == 4).expect("id 4");
    assert!((four["petal_width_avg"].as_f64().unwrap_or(0.0) - 0.7).abs() < 1e-12, "{four}");
    assert_eq!(four["model"], "iris");
    assert_eq!(four["model_version"], 1);
    assert!(s.path("out.jsonl.checkpoint.json").exists());
}

#[test]
fn stream_reads_stdin_and_keeps_its_summary_off_stdout() {
    let s = Sandbox::with_iris();
    let mut child = s
        .command(&["stream", "-m", "iris", "--id", "id", "--max-latency-ms", "10"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(records(10).as_bytes()).expect("write");
    stdin.write_all(b"not json\n").expect("write");
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 10, "only results on stdout:\n{stdout}");
    assert!(stdout.lines().all(|l| l.contains("\"key\":\"stdin@")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("skipped stdin@") && stderr.contains("invalid JSON"), "{stderr}");
    assert!(stderr.contains("Streamed 11 records -> 10 results"), "{stderr}");
}

#[test]
fn stream_refuses_what_cannot_work() {
    let s = Sandbox::with_iris();
    let out = s.run(&["stream", "-m", "iris", "--follow"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--follow needs an input file"));
    let out = s.run(&["stream", "-m", "iris", "--window-fields", "x"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--event-time"));
    let out = s.run(&["stream", "-m", "nosuch", "-i", "iris.csv"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nosuch"));
}

fn committed_offset(path: &Path) -> u64 {
    fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|cp| cp["input_offset"].as_u64())
        .unwrap_or(0)
}

/// `wharf -q stream` of `in.jsonl` into `output` with the test window, plus `extra`.
fn stream_args<'a>(output: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["-q", "stream", "-m", "iris@champion", "-i", "in.jsonl", "-o", output, "--id", "id"];
    args.extend(WINDOW);
    args.extend(extra);
    args
}

fn follow(s: &Sandbox) -> Child {
    let extra = ["--follow", "--batch-size", "20", "--max-latency-ms", "20", "--idle-timeout", "700ms"];
    s.command(&stream_args("out.jsonl", &extra)).stdout(Stdio::null()).stderr(Stdio::inherit()).spawn().expect("spawn")
}

/// The acceptance test of issue 8 through the CLI: `wharf stream --follow` killed with
/// SIGKILL several times while its input grows, then restarted, writes exactly what one
/// uninterrupted run writes.
#[test]
fn sigkill_and_restart_of_wharf_stream_equals_an_uninterrupted_run() {
    let s = Sandbox::with_iris();
    let text = records(4000);
    fs::write(s.path("in.jsonl"), "").expect("input");
    let producer = {
        let path = s.path("in.jsonl");
        let text = text.clone();
        thread::spawn(move || {
            let mut file = fs::OpenOptions::new().append(true).open(path).expect("open");
            for chunk in text.as_bytes().chunks(2999) {
                file.write_all(chunk).expect("append");
                thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let checkpoint = s.path("out.jsonl.checkpoint.json");
    let mut last = 0;
    for _ in 0..4 {
        let mut child = follow(&s);
        let deadline = Instant::now() + Duration::from_secs(120);
        while committed_offset(&checkpoint) <= last && last < text.len() as u64 {
            assert!(Instant::now() < deadline, "no progress after a restart");
            thread::sleep(Duration::from_millis(3));
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        last = committed_offset(&checkpoint);
    }
    producer.join().expect("producer");
    let status = follow(&s).wait().expect("final run");
    assert!(status.success());

    let args = stream_args("reference.jsonl", &["--batch-size", "500"]);
    assert!(s.run(&args).status.success());
    let got = fs::read(s.path("out.jsonl")).expect("output");
    let want = fs::read(s.path("reference.jsonl")).expect("reference");
    assert_eq!(String::from_utf8_lossy(&want).lines().count(), 4000 - 80, "nulls dropped");
    assert!(got == want, "the killed and restarted output differs from an uninterrupted run");
}

// --- `serving.backend = "bentoml"`: the same command, scored by the BentoML service. ---

/// True when this build has the BentoML proxy; otherwise prints `skipped:` (a failure under
/// `WHARF_TEST_REQUIRE_BACKENDS=1`, where every backend test must run).
fn bentoml_built() -> bool {
    if cfg!(feature = "bentoml") {
        return true;
    }
    assert!(
        std::env::var("WHARF_TEST_REQUIRE_BACKENDS").as_deref() != Ok("1"),
        "built without the `bentoml` feature but WHARF_TEST_REQUIRE_BACKENDS=1"
    );
    let _ = writeln!(std::io::stderr(), "skipped: built without the `bentoml` feature");
    false
}

/// `wharf --json stream` of `in.jsonl` into `out.jsonl` with `serving.backend = "bentoml"`
/// at `url`, set the way a deployment sets it: in the environment, with no code change.
fn stream_through_bentoml(s: &Sandbox, url: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["--json", "stream", "-m", "iris@champion", "-i", "in.jsonl", "-o", "out.jsonl", "--id", "id"];
    args.extend(extra);
    s.command(&args)
        .env("WHARF_SERVING__BACKEND", "bentoml")
        .env("WHARF_SERVING__BENTOML__URL", url)
        .env("WHARF_SERVING__BENTOML__TIMEOUT_MS", "30000")
        .output()
        .expect("run wharf")
}

/// The acceptance test of issue 16 for `wharf stream`: with `serving.backend = "bentoml"`,
/// every output row is the BentoML service's own answer for its record (the fixture's
/// scikit-learn model, recorded when the service was saved), not the local model's.
#[test]
fn stream_scores_through_bentoml_when_the_configuration_says_so() {
    let Some(url) = common::backend("WHARF_TEST_BENTOML_URL") else { return };
    if !bentoml_built() {
        return;
    }
    let known = std::env::var("WHARF_TEST_BENTOML_KNOWN").expect("WHARF_TEST_BENTOML_KNOWN is set with the URL");
    let known: Value = serde_json::from_str(&fs::read_to_string(&known).expect("known outputs")).expect("JSON");
    let features = ["sepal_length", "sepal_width", "petal_length", "petal_width"];
    assert_eq!(known["features"], serde_json::json!(features), "the fixture's feature order");
    let inputs = known["inputs"].as_array().expect("inputs");
    let mut text = String::new();
    for (id, row) in inputs.iter().enumerate() {
        let mut record = serde_json::Map::new();
        record.insert("id".into(), id.into());
        for (name, value) in features.iter().zip(row.as_array().expect("row")) {
            record.insert((*name).into(), value.clone());
        }
        text += &format!("{}\n", Value::Object(record));
    }
    let s = Sandbox::with_iris();
    s.write("in.jsonl", text);

    let out = stream_through_bentoml(&s, &url, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).expect("json summary");
    assert_eq!(summary["records_out"], inputs.len(), "{summary}");
    let lines: Vec<Value> = s.read("out.jsonl").lines().map(|l| serde_json::from_str(l).expect("line")).collect();
    assert_eq!(lines.len(), inputs.len());
    // The Wharf model's classes, in order, are what the service's class ids 0, 1, 2 stand for.
    let classes = ["setosa", "versicolor", "virginica"];
    for (id, line) in lines.iter().enumerate() {
        assert_eq!(line["id"], id, "{line}");
        let class = known["predictions"][id].as_u64().expect("class id") as usize;
        assert_eq!(line["prediction"], classes[class], "record {id}: {line}");
        for (k, name) in classes.iter().enumerate() {
            let theirs = known["probabilities"][id][k].as_f64().expect("probability");
            let ours = line[format!("prob_{name}")].as_f64().unwrap_or(f64::NAN);
            assert!((ours - theirs).abs() < 1e-9, "record {id}, P({name}): {ours} != the service's {theirs}");
        }
        assert_eq!((line["model"].as_str(), line["model_version"].as_u64()), (Some("iris"), Some(1)));
    }
}

/// A record that breaks the signature is refused by Wharf, before any request: the service's
/// URL is a closed port, so a request would fail the job with a connection error instead.
#[test]
fn a_record_that_breaks_the_signature_is_refused_before_any_request_to_bentoml() {
    if !bentoml_built() {
        return;
    }
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let url = format!("http://127.0.0.1:{closed}");
    let s = Sandbox::with_iris();
    s.write(
        "in.jsonl",
        "{\"id\":1,\"sepal_length\":5.1,\"sepal_width\":3.5,\"petal_length\":\"long\",\"petal_width\":0.2}\n",
    );
    // `wharf stream` sets a refused record aside and goes on.
    let out = stream_through_bentoml(&s, &url, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let summary: Value = serde_json::from_slice(&out.stdout).expect("json summary");
    assert_eq!((summary["rejected"].as_u64(), summary["records_out"].as_u64()), (Some(1), Some(0)), "{summary}");
    assert!(stderr.contains("skipped") && stderr.contains("petal_length"), "{stderr}");
    // With --fail-on-error the job stops on it, naming the record and the field (a fresh
    // run: the first one's checkpoint would resume past the record).
    for done in ["out.jsonl", "out.jsonl.checkpoint.json"] {
        fs::remove_file(s.path(done)).expect("remove the first run's output");
    }
    let out = stream_through_bentoml(&s, &url, &["--fail-on-error"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("in.jsonl@0") && stderr.contains("petal_length"), "{stderr}");
    assert!(!stderr.contains("bentoml backend error"), "a request was sent: {stderr}");
}
