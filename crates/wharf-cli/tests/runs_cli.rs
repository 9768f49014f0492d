//! `wharf runs sync`: runs the MLflow tracker spooled while the server was away are sent to
//! it, the spool empties.

use std::process::{Command, Output};

fn wharf(dir: &std::path::Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wharf"));
    cmd.current_dir(dir).args(args);
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        if key_text.starts_with("WHARF_") || key_text.starts_with("MLFLOW_") {
            cmd.env_remove(key);
        }
    }
    cmd.output().expect("run wharf")
}

#[cfg(feature = "mlflow")]
#[test]
fn sync_sends_runs_spooled_during_an_outage_to_mlflow() {
    use std::collections::BTreeMap;
    use std::io::Write;

    use wharf::{RunStatus, TrackerPort};

    let uri = match std::env::var("WHARF_TEST_MLFLOW_URI").ok().filter(|v| !v.trim().is_empty()) {
        Some(uri) => uri,
        None if std::env::var("WHARF_TEST_REQUIRE_BACKENDS").as_deref() == Ok("1") => {
            panic!("WHARF_TEST_MLFLOW_URI is not set but WHARF_TEST_REQUIRE_BACKENDS=1")
        }
        None => {
            let _ = writeln!(std::io::stderr(), "skipped: WHARF_TEST_MLFLOW_URI not set (run cargo xtask test)");
            return;
        }
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let experiment = format!("wharf-cli-sync-{}", std::process::id());
    // Spool one run: a server where nothing listens, the default (lenient) policy.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = format!("http://127.0.0.1:{}", listener.local_addr().expect("addr").port());
    drop(listener);
    let mut config = wharf::mlflow::MlflowConfig::default();
    config.uri = Some(dead);
    config.experiment = experiment.clone();
    config.spool_dir = dir.path().join("spool");
    let tracker = wharf::mlflow::spooled_tracker(&config).expect("tracker");
    let run = tracker.begin_run(Some("offline")).expect("spooled");
    tracker.log_params(&run.id, &BTreeMap::from([("alpha".to_string(), "0.5".to_string())])).expect("spooled");
    tracker.log_metrics(&run.id, &BTreeMap::from([("loss".to_string(), 0.25)]), Some(2)).expect("spooled");
    tracker.end_run(&run.id, RunStatus::Finished).expect("spooled");
    assert_eq!(wharf::mlflow::spool::spooled_runs(&config.spool_dir).expect("list").len(), 1);

    std::fs::write(
        dir.path().join("wharf.toml"),
        format!("[tracking]\nbackend = \"mlflow\"\n[tracking.mlflow]\nuri = \"{uri}\"\nexperiment = \"{experiment}\"\nspool_dir = \"spool\"\n"),
    )
    .expect("write");
    let out = wharf(dir.path(), &["--json", "runs", "sync"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let replayed = report["replayed"].as_array().expect("replayed");
    assert_eq!(replayed.len(), 1, "{report}");
    assert_eq!(replayed[0]["spool_run"], run.id.as_str());
    assert_eq!(report["failed"].as_array().map(Vec::len), Some(0), "{report}");
    assert!(wharf::mlflow::spool::spooled_runs(&config.spool_dir).expect("list").is_empty());

    // The run is in MLflow, as it was logged.
    let mlflow_id = replayed[0]["mlflow_run"].as_str().expect("id");
    let client = wharf::mlflow::MlflowClient::new(&uri, std::time::Duration::from_secs(30)).expect("client");
    let got = client.get_run(mlflow_id).expect("the run is in MLflow");
    assert_eq!((got.info.status.as_str(), got.info.run_name.as_str()), ("FINISHED", "offline"));
    assert!(got.data.params.iter().any(|kv| kv.key == "alpha" && kv.value == "0.5"));

    // Nothing left: a second sync sends nothing.
    let out = wharf(dir.path(), &["--json", "runs", "sync"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["replayed"].as_array().map(Vec::len), Some(0), "{report}");
}

#[cfg(not(feature = "mlflow"))]
#[test]
fn sync_without_the_feature_names_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = wharf(dir.path(), &["runs", "sync"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("mlflow"));
}
