//! `wharf ui` as a person uses it: two models trained with the real binary, `wharf ui`
//! started on a free port, and headless Chromium driven through WebDriver (Selenium) across
//! the runs list, a run, the compare page, the models pages, a card and the lineage graph,
//! with a screenshot of each under `target/ui-screenshots/`.
//!
//! The browser test needs `WHARF_TEST_CHROMIUM`, `WHARF_TEST_CHROMEDRIVER` and
//! `WHARF_TEST_SELENIUM_PYTHON` (`cargo xtask test` installs Debian's `chromium` and
//! `chromium-driver` and a venv with Selenium); without them it says `skipped:`, and fails
//! under `WHARF_TEST_REQUIRE_BACKENDS=1` or `CI=true`.
#![cfg(feature = "serve")]

use std::io::BufRead;
use std::path::PathBuf;
use std::process::Stdio;

use serde_json::Value;
use wharf::FileTracker;

mod common;
use common::{Running, Sandbox};

/// Starts `wharf ui` on a free loopback port; returns it and its base URL.
fn start_ui(s: &Sandbox) -> (Running, String) {
    let mut child = s.command(&["ui", "--addr", "127.0.0.1:0"]).stderr(Stdio::piped()).spawn().expect("start wharf ui");
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = std::io::BufReader::new(stderr).lines();
    let url = loop {
        let line = lines.next().expect("wharf ui says where it listens").expect("a line");
        if let Some(url) = line.strip_prefix("wharf ui: ") {
            break url.trim().to_string();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    (Running(Some(child)), url)
}

fn required() -> bool {
    std::env::var("WHARF_TEST_REQUIRE_BACKENDS").as_deref() == Ok("1") || std::env::var("CI").as_deref() == Ok("true")
}

/// The browser's pieces, or `None` after `skipped:`.
fn browser() -> Option<(String, String, String)> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (var("WHARF_TEST_CHROMIUM"), var("WHARF_TEST_CHROMEDRIVER"), var("WHARF_TEST_SELENIUM_PYTHON")) {
        (Some(c), Some(d), Some(p)) => Some((c, d, p)),
        _ => {
            assert!(
                !required(),
                "WHARF_TEST_CHROMIUM, WHARF_TEST_CHROMEDRIVER and WHARF_TEST_SELENIUM_PYTHON must be set \
                 under WHARF_TEST_REQUIRE_BACKENDS=1 or CI=true (cargo xtask test sets them)"
            );
            eprintln!(
                "skipped: WHARF_TEST_CHROMIUM, WHARF_TEST_CHROMEDRIVER or WHARF_TEST_SELENIUM_PYTHON is not set \
                 (cargo xtask test sets them)"
            );
            None
        }
    }
}

/// `target/ui-screenshots`, wherever the target directory is, or `WHARF_UI_SCREENSHOTS`
/// (where `cargo xtask docs --bless` collects the guide's).
fn screenshot_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WHARF_UI_SCREENSHOTS").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("..").join("target"));
    target.join("ui-screenshots")
}

#[cfg(unix)]
#[test]
fn a_person_browses_runs_models_and_lineage_in_chromium() {
    let Some((chromium, driver, python)) = browser() else { return };
    let s = Sandbox::with_leads();
    // Two models: a boosted one that logs its training loss per round, and a logistic one.
    s.ok(&[
        "-q",
        "train",
        "-i",
        "leads.csv",
        "-t",
        "converted",
        "--id",
        "lead_id",
        "-n",
        "lead",
        "-a",
        "gbdt",
        "--trees",
        "12",
    ]);
    s.ok(&["-q", "train", "-i", "leads.csv", "-t", "converted", "--id", "lead_id", "-n", "lead"]);
    // And the second version scores new leads: a scoring job after the model in the graph.
    s.ok(&["-q", "score", "--model", "lead@2", "--input", "new.csv", "--output", "scored.csv", "--id", "lead_id"]);
    let runs = FileTracker::new(s.path("wharf-runs")).list_runs().expect("the runs");
    let boosted = runs.iter().find(|r| r.metrics.iter().any(|m| m.key == "train_loss")).expect("a run with train_loss");
    let steps = boosted.metrics.iter().filter(|m| m.key == "train_loss").count();
    assert!(steps > 1, "the boosted run logs its loss per round");

    let (ui, url) = start_ui(&s);
    let shots = screenshot_dir();
    let out = std::process::Command::new(&python)
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ui_browser.py"))
        .args([url.as_str(), &shots.display().to_string(), "train_loss"])
        .env("WHARF_TEST_CHROMIUM", &chromium)
        .env("WHARF_TEST_CHROMEDRIVER", &driver)
        .output()
        .expect("run the Selenium script");
    assert!(out.status.success(), "the browser session failed: {}", String::from_utf8_lossy(&out.stderr));
    let seen: Value = serde_json::from_slice(&out.stdout).expect("the script prints JSON");
    println!("{seen:#}");

    // Runs, sorted by the metric: highest first, runs without it last.
    assert!(seen["sorted_url"].as_str().unwrap().contains("sort=metric.train_loss"), "{seen}");
    let values: Vec<&str> = seen["sorted_values"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(values.len(), 2, "both runs are listed");
    assert!(!values[0].is_empty() && values[1].is_empty(), "the run with the metric comes first: {values:?}");
    // The run: its loss chart has one point per logged step, drawn and declared.
    assert!(seen["run_url"].as_str().unwrap().ends_with(&boosted.info.id), "{seen}");
    assert_eq!(seen["run_figures"]["metric-train_loss"].as_u64(), Some(steps as u64), "{seen}");
    assert_eq!(seen["run_vertices"].as_u64(), Some(steps as u64), "one polyline vertex per step");
    assert!(seen["run_card_links"].as_array().unwrap().iter().any(|h| h.as_str().unwrap().ends_with("/card")));
    // Compare: both runs, the loss chart overlaid.
    assert_eq!(seen["compare_columns"].as_u64(), Some(2), "{seen}");
    assert_eq!(seen["compare_figures"]["metric-train_loss"].as_u64(), Some(steps as u64), "{seen}");
    assert_eq!(seen["compare_figures"]["metric-holdout_accuracy"].as_u64(), Some(2), "a bar per run: {seen}");
    // Models: the name, both versions, the signature, a card with plots.
    assert_eq!(seen["models"], serde_json::json!(["lead"]));
    assert_eq!(seen["versions"], serde_json::json!(["2", "1"]));
    assert!(seen["signature_rows"].as_u64().unwrap() > 0);
    assert!(seen["card_plots"].as_array().unwrap().iter().any(|p| p == "roc"), "{seen}");
    // Lineage: the training job links the dataset to both model versions.
    let edges: Vec<(String, String)> = seen["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e[0].as_str().unwrap().to_string(), e[1].as_str().unwrap().to_string()))
        .collect();
    let job = "train-lead".to_string();
    let dataset = edges.iter().find(|(_, to)| *to == job).map(|(from, _)| from.clone()).expect("an edge into the job");
    assert!(dataset.ends_with("leads.csv"), "the job reads the dataset: {edges:?}");
    assert_eq!(seen["nodes"][&dataset], "dataset");
    for version in ["registry:lead/1", "registry:lead/2"] {
        assert!(edges.contains(&(job.clone(), version.to_string())), "the job writes {version}: {edges:?}");
        assert_eq!(seen["nodes"][version], "model");
    }
    let scoring = edges.iter().find(|(from, _)| from == "registry:lead/2").map(|(_, to)| to.clone());
    let scoring = scoring.expect("the scoring job reads version 2");
    assert_eq!(seen["nodes"][&scoring], "job");
    assert!(edges.contains(&(scoring.clone(), "file:scored.csv".to_string())), "and writes the scores: {edges:?}");
    assert!(seen["node_url"].as_str().unwrap().contains("/lineage/node?name=train-lead"), "{seen}");
    assert_eq!(seen["node_events"].as_u64(), Some(4), "START and COMPLETE of each training");
    assert!(seen["unknown_title"].as_str().unwrap().starts_with("Not found"), "{seen}");
    for page in ["runs", "run", "compare", "models", "model", "card", "lineage", "lineage-node"] {
        let file = shots.join(format!("{page}.png"));
        let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        assert!(size > 10_000, "{} is a real screenshot ({size} bytes)", file.display());
    }
    ui.terminate();
}

#[test]
fn ui_refuses_a_network_address_without_a_token() {
    let s = Sandbox::new();
    let err = s.error(&["ui", "--addr", "0.0.0.0:0"]);
    assert!(err.contains("not a loopback address") && err.contains("WHARF_UI_TOKEN"), "{err}");
}

#[cfg(unix)]
#[test]
fn ui_with_a_token_admits_only_requests_that_present_it() {
    use std::io::{Read, Write};
    let s = Sandbox::new();
    let mut child = s
        .command(&["ui", "--addr", "0.0.0.0:0"])
        .env("WHARF_UI_TOKEN", "s3cret-token")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wharf ui");
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = std::io::BufReader::new(stderr).lines();
    let url = loop {
        let line = lines.next().expect("wharf ui says where it listens").expect("a line");
        if let Some(url) = line.strip_prefix("wharf ui: ") {
            break url.trim().to_string();
        }
    };
    let ui = Running(Some(child));
    let port = url.trim_end_matches('/').rsplit(':').next().unwrap().to_string();
    let get = |headers: &str| {
        let mut stream = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
        write!(stream, "GET /runs?format=json HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n").unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    };
    let refused = get("");
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    assert!(!refused.contains("s3cret-token"), "the token is never echoed");
    assert!(get("Authorization: Bearer wrong\r\n").starts_with("HTTP/1.1 401"));
    let admitted = get("Authorization: Bearer s3cret-token\r\n");
    assert!(admitted.starts_with("HTTP/1.1 200"), "{admitted}");
    ui.terminate();
}
