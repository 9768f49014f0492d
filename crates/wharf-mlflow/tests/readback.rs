//! What Wharf writes, read back from MLflow through raw REST calls (not through the adapter).

mod common;

use std::collections::BTreeMap;

use wharf_core::conformance::fixture_model;
use wharf_core::ports::tracker::TrackerPort;
use wharf_core::{artifact, Model, RegistryExt, RegistryPort, RunStatus, TrackerExt, Version, WharfConfig, WharfError};
use wharf_mlflow::{MlflowRegistry, MlflowTracker, PARENT_RUN_ID_TAG};

#[test]
fn run_params_metric_history_tags_and_model_are_in_mlflow() {
    let Some(uri) = common::mlflow_uri() else { return };
    let tracker = common::tracker(&uri);
    let model = fixture_model();
    let run = tracker.start_run(Some("readback")).unwrap();
    run.log_params([("alpha", "0.5"), ("depth", "3")]).unwrap();
    for step in 0..5u64 {
        run.log_metric("loss", 1.0 / (step + 1) as f64, Some(step)).unwrap();
    }
    run.log_metric("odd", f64::NAN, Some(7)).unwrap();
    run.set_tag("team", "risk").unwrap();
    run.log_model(&model, "iris").unwrap();
    let id = run.id().to_string();
    run.finish().unwrap();

    let got = common::raw_get(&uri, "runs/get", &[("run_id", &id)]);
    let info = &got["run"]["info"];
    assert_eq!(info["status"], "FINISHED");
    assert_eq!(info["run_name"], "readback");
    let pairs = |v: &serde_json::Value| -> BTreeMap<String, String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|kv| (kv["key"].as_str().unwrap().to_string(), kv["value"].as_str().unwrap().to_string()))
            .collect()
    };
    let params = pairs(&got["run"]["data"]["params"]);
    assert_eq!(params["alpha"], "0.5");
    assert_eq!(params["depth"], "3");
    assert_eq!(pairs(&got["run"]["data"]["tags"])["team"], "risk");

    let history = common::raw_get(&uri, "metrics/get-history", &[("run_id", &id), ("metric_key", "loss")]);
    let points: Vec<(i64, f64)> = history["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["step"].as_i64().unwrap(), m["value"].as_f64().unwrap()))
        .collect();
    assert_eq!(points, (0..5).map(|s| (s, 1.0 / (s + 1) as f64)).collect::<Vec<_>>());
    let odd = common::raw_get(&uri, "metrics/get-history", &[("run_id", &id), ("metric_key", "odd")]);
    assert_eq!(odd["metrics"][0]["value"], "NaN", "NaN travels as MLflow's string");

    // The model: the artifact bytes are a Wharf artifact of this model; MLmodel names it.
    let root = info["artifact_uri"].as_str().unwrap();
    let bytes = common::raw_artifact(&uri, root, "iris/model.wharf");
    assert_eq!(artifact::decode(&bytes).unwrap(), model);
    let mlmodel: serde_json::Value = serde_json::from_slice(&common::raw_artifact(&uri, root, "iris/MLmodel")).unwrap();
    assert_eq!(mlmodel["flavors"]["wharf"]["data"], "model.wharf");
    // MLflow's own loader finds the Python package's module (tested end to end by the
    // Python suite, crates/wharf-py/tests/test_mlflow.py).
    assert_eq!(mlmodel["flavors"]["python_function"]["loader_module"], "wharf.pyfunc");
    assert_eq!(mlmodel["flavors"]["python_function"]["data"], "model.wharf");
    assert_eq!(mlmodel["run_id"], id.as_str());
    assert!(mlmodel["signature"]["inputs"].as_str().unwrap().contains("sepal_length"), "{mlmodel}");

    // And through the adapter: the NaN comes back as NaN.
    let record = tracker.get_run(&id).unwrap();
    assert!(record.metrics.iter().any(|m| m.key == "odd" && m.value.is_nan() && m.step == 7));
}

#[test]
fn ten_thousand_points_cost_about_ten_requests() {
    let Some(uri) = common::mlflow_uri() else { return };
    let tracker = common::tracker(&uri);
    let run = tracker.start_run(Some("many-points")).unwrap();
    for step in 0..10_000u64 {
        run.log_metric("loss", step as f64, Some(step)).unwrap();
    }
    let id = run.id().to_string();
    run.finish().unwrap();
    assert!(tracker.batch_requests() <= 11, "{} log-batch requests", tracker.batch_requests());
    let history = common::raw_get(&uri, "metrics/get-history", &[("run_id", &id), ("metric_key", "loss")]);
    assert_eq!(history["metrics"].as_array().unwrap().len(), 10_000);
}

#[test]
fn buffered_points_are_visible_to_get_run_before_the_run_ends() {
    let Some(uri) = common::mlflow_uri() else { return };
    let tracker = common::tracker(&uri);
    let run = tracker.start_run(Some("live")).unwrap();
    run.log_metric("loss", 0.5, Some(1)).unwrap();
    run.log_param("p", "1").unwrap();
    let record = tracker.get_run(run.id()).unwrap();
    assert_eq!(record.status, RunStatus::Running);
    assert_eq!(record.params["p"], "1");
    assert_eq!(record.metrics.len(), 1);
    run.finish().unwrap();
}

#[test]
fn child_runs_carry_the_parent_tag() {
    let Some(uri) = common::mlflow_uri() else { return };
    let tracker = common::tracker(&uri);
    let parent = tracker.start_run(Some("parent")).unwrap();
    let child = tracker.begin_child_run(parent.id(), Some("child")).unwrap();
    tracker.end_run(&child.id, RunStatus::Finished).unwrap();
    let got = common::raw_get(&uri, "runs/get", &[("run_id", &child.id)]);
    let tags = got["run"]["data"]["tags"].as_array().unwrap();
    assert!(tags.iter().any(|t| t["key"] == PARENT_RUN_ID_TAG && t["value"] == parent.id()), "{got}");
    parent.finish().unwrap();
}

#[test]
fn logging_to_unknown_or_ended_runs_is_an_error() {
    let Some(uri) = common::mlflow_uri() else { return };
    let tracker = common::tracker(&uri);
    let params = BTreeMap::from([("a".to_string(), "1".to_string())]);
    assert!(matches!(
        tracker.log_params("0123456789abcdef0123456789abcdef", &params),
        Err(WharfError::NotFound { .. })
    ));
    let run = tracker.start_run(None).unwrap();
    let id = run.id().to_string();
    run.finish().unwrap();
    assert!(matches!(tracker.log_params(&id, &params), Err(WharfError::InvalidInput { .. })));
}

#[test]
fn registered_versions_aliases_and_checksums_are_in_mlflow() {
    let Some(uri) = common::mlflow_uri() else { return };
    let registry = common::registry(&uri);
    let name = common::unique("wharf-readback");
    let model: Model = fixture_model();
    let v = registry.register(&model, &name).unwrap();
    assert_eq!(v, Version(1));
    registry.set_alias(&name, "champion", &v).unwrap();

    let mv = common::raw_get(&uri, "registered-models/alias", &[("name", &name), ("alias", "champion")]);
    let mv = &mv["model_version"];
    assert_eq!(mv["version"], "1");
    assert_eq!(mv["status"], "READY");
    let sha = mv["tags"].as_array().unwrap().iter().find(|t| t["key"] == "wharf.sha256").unwrap()["value"].clone();
    let source = mv["source"].as_str().unwrap();
    assert!(source.starts_with("mlflow-artifacts:/") && source.ends_with("/model"), "{source}");
    let bytes = common::raw_artifact(&uri, source, "model.wharf");
    assert_eq!(artifact::read_header(&bytes).unwrap().sha256_hex(), sha.as_str().unwrap());

    // Bit-identical round trip through the adapter.
    let loaded = registry.load(&name, "champion").unwrap();
    assert_eq!(artifact::encode(&loaded).unwrap(), artifact::encode(&model).unwrap());
    let listed = registry.get(&name).unwrap();
    assert_eq!(listed.aliases["champion"], v);
    assert_eq!(listed.versions[0].aliases, ["champion"]);
}

#[test]
fn missing_uri_is_a_config_error_naming_the_key() {
    let config = WharfConfig::default();
    match MlflowTracker::from_config(&wharf_mlflow::MlflowConfig::tracking(&config).unwrap()) {
        Err(WharfError::Config { key, .. }) => assert_eq!(key, "tracking.mlflow.uri"),
        other => panic!("expected a config error, got {other:?}"),
    }
    match MlflowRegistry::from_config(&config) {
        Err(WharfError::Config { key, .. }) => assert_eq!(key, "registry.mlflow.uri"),
        other => panic!("expected a config error, got {other:?}"),
    }
    let mut config = WharfConfig::default();
    config.tracking.backend = "mlflow".into();
    match wharf::Wharf::from_config(config) {
        Err(WharfError::Config { key, .. }) => assert_eq!(key, "tracking.mlflow.uri"),
        other => panic!("expected a config error from the facade, got {other:?}"),
    }
}

#[test]
fn strict_and_spool_dir_are_configurable_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("WHARF_TRACKING__MLFLOW__STRICT".to_string(), "true".to_string()),
        ("WHARF_TRACKING__MLFLOW__SPOOL_DIR".to_string(), "elsewhere".to_string()),
    ];
    let config = WharfConfig::load_from(dir.path(), env).unwrap();
    let table = wharf_mlflow::MlflowConfig::tracking(&config).unwrap();
    assert!(table.strict);
    assert_eq!(table.spool_dir, std::path::Path::new("elsewhere"));
    assert!(!wharf_mlflow::MlflowConfig::tracking(&WharfConfig::default()).unwrap().strict, "spooling is the default");
    let bad = [("WHARF_TRACKING__MLFLOW__STRICT".to_string(), "maybe".to_string())];
    match WharfConfig::load_from(dir.path(), bad).and_then(|c| wharf_mlflow::MlflowConfig::tracking(&c)) {
        Err(WharfError::Config { key, .. }) => assert_eq!(key, "WHARF_TRACKING__MLFLOW__STRICT"),
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn a_logged_file_is_stored_byte_for_byte_in_the_runs_artifact_store() {
    let Some(uri) = common::mlflow_uri() else { return };
    let tracker = common::tracker(&uri);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("board.json");
    std::fs::write(&file, br#"[{"rank":1,"score":0.97}]"#).unwrap();
    let run = tracker.start_run(Some("with-artifact")).unwrap();
    run.log_artifact(&file, "leaderboard.json").unwrap();
    let id = run.id().to_string();
    run.finish().unwrap();
    let got = common::raw_get(&uri, "runs/get", &[("run_id", &id)]);
    let root = got["run"]["info"]["artifact_uri"].as_str().unwrap().to_string();
    assert_eq!(common::raw_artifact(&uri, &root, "leaderboard.json"), br#"[{"rank":1,"score":0.97}]"#);
    assert!(tracker.get_run(&id).unwrap().artifacts.contains(&"leaderboard.json".to_string()));
}
