//! Credentials against MLflow's `basic-auth` app (a second server that `cargo xtask test`
//! starts): the right ones work, wrong or missing ones are refused with a clear error.

mod common;

use std::io::Write;
use std::time::Duration;

use wharf_core::{TrackerExt, WharfError};
use wharf_mlflow::{Auth, MlflowClient, MlflowTracker};

/// `(uri, user, password)` of the basic-auth server, or a visible skip (a failure under
/// `WHARF_TEST_REQUIRE_BACKENDS=1`).
fn auth_server() -> Option<(String, String, String)> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (
        var("WHARF_TEST_MLFLOW_AUTH_URI"),
        var("WHARF_TEST_MLFLOW_AUTH_USER"),
        var("WHARF_TEST_MLFLOW_AUTH_PASSWORD"),
    ) {
        (Some(u), Some(n), Some(p)) => Some((u, n, p)),
        _ if std::env::var("WHARF_TEST_REQUIRE_BACKENDS").as_deref() == Ok("1") => {
            panic!("WHARF_TEST_MLFLOW_AUTH_URI/_USER/_PASSWORD not set but WHARF_TEST_REQUIRE_BACKENDS=1")
        }
        _ => {
            let _ = writeln!(std::io::stderr(), "skipped: WHARF_TEST_MLFLOW_AUTH_URI not set (run cargo xtask test)");
            None
        }
    }
}

fn client(uri: &str, auth: Auth) -> MlflowClient {
    MlflowClient::new(uri, Duration::from_secs(30)).unwrap().with_auth(auth)
}

#[test]
fn basic_auth_credentials_are_sent_and_checked() {
    let Some((uri, username, password)) = auth_server() else { return };
    let good = Auth::Basic { username: username.clone(), password };
    let tracker = MlflowTracker::new(client(&uri, good), common::unique("wharf-auth"));
    let run = tracker.start_run(Some("with-auth")).expect("start with credentials");
    run.log_metric("loss", 0.5, Some(1)).unwrap();
    let id = run.id().to_string();
    run.finish().unwrap();
    assert_eq!(wharf_core::TrackerPort::get_run(&tracker, &id).unwrap().metrics.len(), 1);

    for bad in [Auth::None, Auth::Basic { username, password: "wrong".into() }] {
        let c = client(&uri, bad);
        match c.get_or_create_experiment("wharf-auth-denied") {
            Err(err @ WharfError::Backend { .. }) => assert!(err.to_string().contains("401"), "{err}"),
            other => panic!("missing or wrong credentials must be refused, got {other:?}"),
        }
    }
}
