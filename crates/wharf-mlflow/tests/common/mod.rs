//! What every MLflow test shares: finding the server, unique names, raw REST reads.
#![allow(dead_code)]

use std::io::Write;
use std::time::Duration;

use wharf_mlflow::{MlflowClient, MlflowRegistry, MlflowTracker};

/// The test server's URI from `WHARF_TEST_MLFLOW_URI`. Without it the test is skipped with a
/// message, except under `cargo xtask test` (`WHARF_TEST_REQUIRE_BACKENDS=1`), where a
/// missing backend is a failure rather than a silent pass.
pub fn mlflow_uri() -> Option<String> {
    // Every test starts here; the models they store and load are built-in estimators.
    wharf::register_kinds();
    match std::env::var("WHARF_TEST_MLFLOW_URI").ok().filter(|v| !v.trim().is_empty()) {
        Some(uri) => Some(uri),
        None if std::env::var("WHARF_TEST_REQUIRE_BACKENDS").as_deref() == Ok("1") => {
            panic!("WHARF_TEST_MLFLOW_URI is not set but WHARF_TEST_REQUIRE_BACKENDS=1: the MLflow backend is missing")
        }
        None => {
            // Straight to stderr: the test harness captures `eprintln!`, and a skip must be
            // seen, never pass silently.
            let _ = writeln!(std::io::stderr(), "skipped: WHARF_TEST_MLFLOW_URI not set (run cargo xtask test)");
            None
        }
    }
}

/// A name no other test (or earlier run of this one) uses on the shared server.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::now_v7().simple().to_string()[20..])
}

pub fn client(uri: &str) -> MlflowClient {
    MlflowClient::new(uri, Duration::from_secs(30)).expect("client")
}

pub fn tracker(uri: &str) -> MlflowTracker {
    MlflowTracker::new(client(uri), unique("wharf-test"))
}

pub fn registry(uri: &str) -> MlflowRegistry {
    MlflowRegistry::new(client(uri), unique("wharf-test-registry"))
}

/// A raw `GET /api/2.0/mlflow/<endpoint>` as JSON, bypassing the adapter entirely.
pub fn raw_get(uri: &str, endpoint: &str, query: &[(&str, &str)]) -> serde_json::Value {
    let url = format!("{}/api/2.0/mlflow/{endpoint}", uri.trim_end_matches('/'));
    let resp = reqwest::blocking::Client::new().get(url).query(query).send().expect("request");
    assert!(resp.status().is_success(), "GET {endpoint}: {}", resp.status());
    resp.json().expect("json")
}

/// Raw bytes of an artifact through the proxy.
pub fn raw_artifact(uri: &str, artifact_uri: &str, path: &str) -> Vec<u8> {
    let rel = artifact_uri.strip_prefix("mlflow-artifacts:/").expect("proxied artifact uri");
    let url = format!("{}/api/2.0/mlflow-artifacts/artifacts/{rel}/{path}", uri.trim_end_matches('/'));
    let resp = reqwest::blocking::Client::new().get(url).send().expect("request");
    assert!(resp.status().is_success(), "GET artifact {path}: {}", resp.status());
    resp.bytes().expect("bytes").to_vec()
}
