//! `wharf run-models` end to end: two registered versions of a model and a built-in summary
//! over a JSON-lines file, results read back from the SQLite file it wrote.

use std::path::Path;

mod common;

use common::Sandbox;
use serde_json::{json, Value};
use wharf::{datasets, FileRegistry, RegistryPort, Trainer};
use wharf_runner::{ResultStore, SqliteResultStore};

const CONFIG: &str = r#"
[[model]]
model = "lead@1"
status = "active"
input = "shared"

[[model]]
model = "lead@2"
status = "active"
input = "shared"

[[summary]]
name = "best"
status = "active"
kind = "max"
field = "prob_yes"
depends_on = ["lead@1", "lead@2"]
"#;

/// A fresh directory holding a registry with `lead` versions 1 (logistic) and 2 (tree),
/// `models.toml`, and `records.jsonl` with 30 good records and one with an unknown level.
fn sandbox() -> Sandbox {
    let s = Sandbox::new();
    let registry = FileRegistry::new(s.path("wharf-registry"));
    let data = datasets::lead_scoring();
    registry.register(&Trainer::logistic_regression().fit(&data).expect("fit"), "lead").expect("register");
    let tree = Trainer::decision_tree().max_depth(Some(3)).fit(&data).expect("fit");
    registry.register(&tree, "lead").expect("register");
    let mut lines: Vec<String> =
        (0..30).map(|i| json!({"id": format!("L{i}"), "data": data.features.row(i)}).to_string()).collect();
    let mut odd = data.features.row(0);
    odd.insert("source".into(), json!("carrier_pigeon"));
    lines.push(json!({"id": 999, "data": odd}).to_string());
    s.write("models.toml", CONFIG);
    s.write("records.jsonl", lines.join("\n") + "\n");
    s
}

const RUN: &[&str] = &["run-models", "--config", "models.toml", "--input", "records.jsonl"];

fn with(extra: &[&'static str]) -> Vec<&'static str> {
    RUN.iter().chain(extra).copied().collect()
}

fn store(path: &Path) -> SqliteResultStore {
    SqliteResultStore::open(path).expect("open the results")
}

#[test]
fn run_models_stores_every_record_and_reports_per_model() {
    let s = sandbox();
    let stdout = s.ok(&with(&["--store", "sqlite://results.db", "--json", "--batch-size", "7"]));
    let report: Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    assert_eq!(report["records"], json!(31));
    assert_eq!(report["ok"], json!(30));
    assert_eq!(report["with_errors"], json!(1));
    assert_eq!(report["store"], json!("sqlite://results.db"));
    let models = report["models"].as_array().expect("models");
    let row = |m: &str| models.iter().find(|r| r["model"] == json!(m)).cloned().expect("a row per model");
    assert_eq!(row("lead@1"), json!({"model": "lead@1", "status": "active", "values": 30, "errors": 1}));
    assert_eq!(row("lead@2")["errors"], json!(1));
    assert_eq!(row("best@1"), json!({"model": "best@1", "status": "active", "values": 30, "errors": 1}));

    // Read back: every record, both versions, the summary; the bad one as error entries.
    let results = store(&s.path("results.db"));
    assert_eq!(results.count().expect("count").records, 31);
    let l0 = results.current("L0").expect("read").expect("L0 stored");
    let p1 = l0.results.get("lead", "1").and_then(|r| r.value()).expect("lead@1")["prob_yes"].as_f64().unwrap();
    let p2 = l0.results.get("lead", "2").and_then(|r| r.value()).expect("lead@2")["prob_yes"].as_f64().unwrap();
    let best = l0.results.get("best", "1").and_then(|r| r.value()).expect("best")["value"].as_f64().unwrap();
    assert_eq!(best, p1.max(p2));
    let bad = results.current("999").expect("read").expect("a numeric id is stored as text");
    let error = bad.results.get("lead", "1").and_then(|r| r.error_ref()).expect("an error entry");
    assert_eq!(error.at.as_deref(), Some("source"));

    // A second run adds to each record's history; the newest is current.
    let table = s.ok(&with(&["--store", "sqlite://results.db"]));
    assert!(table.contains("lead@1") && table.contains("Stored 31 records (30 ok, 1 with errors)"), "{table}");
    assert_eq!(results.history("L0").expect("history").len(), 2);
    assert_eq!(results.count().expect("count").results, 62);
}

#[test]
fn run_models_refuses_bad_input_before_storing_anything() {
    let s = sandbox();
    s.write("broken.jsonl", "{\"id\": 1, \"data\": {}}\n\n{\"id\": 2, \"data\": \n");
    let error = s.error(&["run-models", "-c", "models.toml", "-i", "broken.jsonl", "-s", "sqlite://r.db"]);
    assert!(error.contains("broken.jsonl line 3") && error.contains("invalid JSON"), "{error}");
    assert!(!s.path("r.db").exists(), "nothing stored, not even an empty file");

    s.write("noid.jsonl", "{\"data\": {}}\n");
    let error = s.error(&["run-models", "-c", "models.toml", "-i", "noid.jsonl", "-s", "sqlite://r.db"]);
    assert!(error.contains("line 1") && error.contains("no id field"), "{error}");

    let error = s.error(&with(&["--store", "mysql://u:hunter2@h/db"]));
    assert!(error.contains("'mysql'") && !error.contains("hunter2"), "{error}");

    s.write("drafts.toml", "[[model]]\nmodel = \"lead@1\"\ninput = \"shared\"\n");
    let drafts = ["run-models", "-c", "drafts.toml", "-i", "records.jsonl", "-s", "sqlite://d.db"];
    let error = s.error(&drafts);
    assert!(error.contains("--include-drafts"), "{error}");
    let with_drafts: Vec<&str> = drafts.iter().copied().chain(["--include-drafts", "--json"]).collect();
    let report: Value = serde_json::from_str(&s.ok(&with_drafts)).expect("JSON");
    assert_eq!(report["models"][0]["status"], json!("draft"));

    s.write("unknown.toml", "[[model]]\nmodel = \"nobody@1\"\nstatus = \"active\"\n");
    let error = s.error(&["run-models", "-c", "unknown.toml", "-i", "records.jsonl", "-s", "sqlite://u.db"]);
    assert!(error.contains("nobody"), "{error}");
}

#[cfg(feature = "postgres")]
#[test]
fn run_models_stores_into_postgres() {
    let url = match std::env::var("WHARF_TEST_POSTGRES_URL").ok().filter(|v| !v.is_empty()) {
        Some(url) => url,
        None if std::env::var("WHARF_TEST_REQUIRE_BACKENDS").as_deref() == Ok("1") => {
            panic!("WHARF_TEST_POSTGRES_URL is not set but WHARF_TEST_REQUIRE_BACKENDS=1")
        }
        None => {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "skipped: WHARF_TEST_POSTGRES_URL not set (run cargo xtask test)");
            return;
        }
    };
    let s = sandbox();
    // Ids of this run only, since the server's default table is shared.
    let nonce = format!("{}-{}", std::process::id(), chrono_free_nonce());
    let text = std::fs::read_to_string(s.path("records.jsonl")).expect("read");
    let renamed: Vec<String> = text
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).expect("json");
            v["id"] = json!(format!("{nonce}-{}", v["id"]));
            v.to_string()
        })
        .collect();
    s.write("records.jsonl", renamed.join("\n"));
    let args: Vec<&str> = RUN.iter().copied().chain(["--store", url.as_str(), "--json"]).collect();
    let report: Value = serde_json::from_str(&s.ok(&args)).expect("JSON");
    assert_eq!(report["records"], json!(31));
    let pg = wharf_runner::PostgresResultStore::connect(&url).expect("connect");
    let stored = pg.current(&format!("{nonce}-\"L0\"")).expect("read").expect("stored in PostgreSQL");
    assert!(stored.results.get("best", "1").is_some_and(|r| r.is_ok()));
}

#[cfg(feature = "postgres")]
fn chrono_free_nonce() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default()
}
