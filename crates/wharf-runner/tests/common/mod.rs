//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::io::Write;

/// The test server's URL from `WHARF_TEST_POSTGRES_URL`. Without it the test is skipped
/// with a message, except under `cargo xtask test` (`WHARF_TEST_REQUIRE_BACKENDS=1`), where
/// a missing backend is a failure rather than a silent pass.
pub fn postgres_url() -> Option<String> {
    match std::env::var("WHARF_TEST_POSTGRES_URL").ok().filter(|v| !v.trim().is_empty()) {
        Some(url) => Some(url),
        None if std::env::var("WHARF_TEST_REQUIRE_BACKENDS").as_deref() == Ok("1") => {
            panic!("WHARF_TEST_POSTGRES_URL is not set but WHARF_TEST_REQUIRE_BACKENDS=1: the PostgreSQL backend is missing")
        }
        None => {
            // Straight to stderr: the harness captures `eprintln!`, and a skip must be seen.
            let _ = writeln!(std::io::stderr(), "skipped: WHARF_TEST_POSTGRES_URL not set (run cargo xtask test)");
            None
        }
    }
}

/// A table name no other test (or earlier run) uses on the shared server.
pub fn unique_table(label: &str) -> String {
    let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
    format!("t_{label}_{:x}_{}", nanos, std::process::id())
}

/// Drops a test table and its views.
#[cfg(feature = "postgres")]
pub fn drop_table(url: &str, table: &str) {
    let mut client = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    client
        .batch_execute(&format!(
            "DROP VIEW IF EXISTS {table}_current; DROP VIEW IF EXISTS {table}_history; DROP TABLE IF EXISTS {table};"
        ))
        .expect("drop the test table");
}
