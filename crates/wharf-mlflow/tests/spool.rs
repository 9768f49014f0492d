//! The MLflow tracker behind the core's spool-and-replay decorator, against the real server
//! through a gate that can be closed (a TCP relay that drops every connection while closed):
//! an outage at begin, an outage mid-run, a replay interrupted and run again, strict mode,
//! and the tracker suite with the server away and back.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wharf_core::conformance::{fixture_model, run_tracker_suite, TrackerCapabilities};
use wharf_core::spool::tracker::is_local_run_id;
use wharf_core::spool::{ReplayTracker, SpoolLayer, TrackerCall};
use wharf_core::{artifact, RunStatus, TrackerPort, WharfError};
use wharf_mlflow::{MlflowReplay, MlflowTracker, SpooledMlflowTracker};

/// A relay to the MLflow server that can be closed: while closed, every connection is
/// accepted and dropped at once, and open ones are cut at their next read.
struct Gate {
    uri: String,
    open: Arc<AtomicBool>,
}

impl Gate {
    fn new(upstream: &str) -> Gate {
        let target = upstream.trim_start_matches("http://").split('/').next().expect("host:port").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let uri = format!("http://{}", listener.local_addr().expect("addr"));
        let open = Arc::new(AtomicBool::new(true));
        let gate = open.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if !gate.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else { continue };
                let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else { continue };
                relay(client, server, gate.clone());
                relay(s2, c2, gate.clone());
            }
        });
        Gate { uri, open }
    }

    fn set_open(&self, open: bool) {
        self.open.store(open, Ordering::SeqCst);
    }
}

fn relay(mut from: TcpStream, mut to: TcpStream, open: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(n) if n > 0 && open.load(Ordering::SeqCst) && to.write_all(&buf[..n]).is_ok() => {}
                _ => break,
            }
        }
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    });
}

/// The MLflow tracker behind a spool in `dir`, talking through `gate`. A long probe pause:
/// during an outage only the first call waits for the client's retries.
fn spooled(gate: &Gate, experiment: &str, dir: &Path, strict: bool) -> SpooledMlflowTracker {
    let tracker = MlflowTracker::new(common::client(&gate.uri), experiment);
    SpoolLayer::new(dir.join("spool.jsonl"), strict)
        .probe_every(Duration::from_secs(3600))
        .layer(MlflowReplay::new(tracker))
}

fn map<V: Clone>(pairs: &[(&str, V)]) -> BTreeMap<String, V> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

fn millis(v: &serde_json::Value) -> i64 {
    v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).unwrap_or_else(|| panic!("not a time: {v}"))
}

/// `(step, value, timestamp)` of every point of `key`, as MLflow has them.
fn history(uri: &str, run_id: &str, key: &str) -> Vec<(i64, f64, i64)> {
    let got = common::raw_get(uri, "metrics/get-history", &[("run_id", run_id), ("metric_key", key)]);
    got["metrics"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    (m["step"].as_i64().unwrap_or(0), m["value"].as_f64().unwrap_or(f64::NAN), millis(&m["timestamp"]))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn tag(run: &serde_json::Value, key: &str) -> Option<String> {
    run["run"]["data"]["tags"]
        .as_array()?
        .iter()
        .find(|t| t["key"] == key)
        .map(|t| t["value"].as_str().unwrap_or_default().to_string())
}

/// Runs a job's worth of calls on a run begun while the server is away.
fn spool_a_run(t: &SpooledMlflowTracker) -> String {
    let info = t.begin_run(Some("offline")).expect("spooled, not failed");
    assert!(is_local_run_id(&info.id), "a local id while MLflow is away: {}", info.id);
    t.log_params(&info.id, &map(&[("alpha", "0.5".to_string())])).unwrap();
    for step in 0..3u64 {
        t.log_metrics(&info.id, &map(&[("loss", 1.0 / (step + 1) as f64)]), Some(step)).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    t.set_tags(&info.id, &map(&[("team", "risk".to_string())])).unwrap();
    t.log_model(&info.id, &fixture_model(), "iris").unwrap();
    t.end_run(&info.id, RunStatus::Killed).unwrap();
    info.id
}

#[test]
fn an_outage_at_begin_spools_the_run_and_the_replay_keeps_its_times_steps_status_and_model() {
    let Some(uri) = common::mlflow_uri() else { return };
    let gate = Gate::new(&uri);
    let dir = tempfile::tempdir().unwrap();
    let t = spooled(&gate, &common::unique("wharf-spool"), dir.path(), false);
    gate.set_open(false);
    let local = spool_a_run(&t);

    // Read back while MLflow is away: folded from the spool.
    let record = t.get_run(&local).expect("read from the spool");
    assert_eq!((record.info.name.as_str(), record.status), ("offline", RunStatus::Killed));
    assert_eq!(record.params["alpha"], "0.5");
    assert_eq!(record.artifacts, ["iris"]);
    assert_eq!(record.metrics.len(), 3);
    let calls = t.spooled_calls().unwrap();
    let Some(TrackerCall::BeginRun { start_time, .. }) = calls.first() else { panic!("{calls:?}") };
    let Some(TrackerCall::EndRun { end_time, .. }) = calls.last() else { panic!("{calls:?}") };
    let spooled_times: Vec<i64> = calls
        .iter()
        .filter_map(|c| match c {
            TrackerCall::LogMetrics { timestamp, .. } => Some(timestamp.timestamp_millis()),
            _ => None,
        })
        .collect();

    gate.set_open(true);
    let report = wharf_mlflow::replay(&t).expect("replay");
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(report.replayed.len(), 1, "{report:?}");
    let (from, mlflow_id) = &report.replayed[0];
    assert_eq!(from, &local);
    let got = common::raw_get(&uri, "runs/get", &[("run_id", mlflow_id)]);
    let info = &got["run"]["info"];
    assert_eq!(info["status"], "KILLED");
    assert_eq!(info["run_name"], "offline");
    assert_eq!(millis(&info["start_time"]), start_time.timestamp_millis(), "the original start");
    assert_eq!(millis(&info["end_time"]), end_time.timestamp_millis(), "the original end");
    assert_eq!(tag(&got, "team").as_deref(), Some("risk"));
    assert_eq!(tag(&got, wharf_mlflow::tracker::REPLAYED_FROM_TAG).as_deref(), Some(local.as_str()));
    let loss = history(&uri, mlflow_id, "loss");
    assert_eq!(loss.iter().map(|p| (p.0, p.1)).collect::<Vec<_>>(), [(0, 1.0), (1, 0.5), (2, 1.0 / 3.0)]);
    assert_eq!(loss.iter().map(|p| p.2).collect::<Vec<_>>(), spooled_times, "the original timestamps");
    let bytes = common::raw_artifact(&uri, info["artifact_uri"].as_str().unwrap(), "iris/model.wharf");
    assert_eq!(artifact::decode(&bytes).unwrap(), fixture_model());
    assert!(t.spooled_calls().unwrap().is_empty());
    assert!(wharf_mlflow::spool::spooled_runs(dir.path()).unwrap().is_empty());
}

#[test]
fn an_outage_mid_run_spools_what_was_buffered_under_the_mlflow_run_id() {
    let Some(uri) = common::mlflow_uri() else { return };
    let gate = Gate::new(&uri);
    let dir = tempfile::tempdir().unwrap();
    let t = spooled(&gate, &common::unique("wharf-spool"), dir.path(), false);
    let info = t.begin_run(Some("live")).unwrap();
    assert!(!is_local_run_id(&info.id), "MLflow's id while it is up");
    t.log_params(&info.id, &map(&[("p", "1".to_string())])).unwrap();
    gate.set_open(false);
    for step in 0..3u64 {
        t.log_metrics(&info.id, &map(&[("loss", step as f64)]), Some(step)).unwrap();
    }
    t.end_run(&info.id, RunStatus::Finished).expect("the end is spooled, with what was buffered");
    let calls = t.spooled_calls().unwrap();
    assert!(calls.iter().all(|c| c.run_id() == info.id), "{calls:?}");
    assert!(matches!(calls.last(), Some(TrackerCall::EndRun { .. })));
    let params_spooled = calls.iter().any(|c| matches!(c, TrackerCall::LogParams { params, .. } if params["p"] == "1"));
    assert!(params_spooled, "the buffered param moved to the spool: {calls:?}");

    gate.set_open(true);
    let report = wharf_mlflow::replay(&t).expect("replay");
    assert_eq!(report.replayed, [(info.id.clone(), info.id.clone())], "{report:?}");
    let got = common::raw_get(&uri, "runs/get", &[("run_id", &info.id)]);
    assert_eq!(got["run"]["info"]["status"], "FINISHED");
    let params = got["run"]["data"]["params"].as_array().unwrap();
    assert!(params.iter().any(|p| p["key"] == "p" && p["value"] == "1"), "{got}");
    assert_eq!(history(&uri, &info.id, "loss").iter().map(|p| p.0).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(tag(&got, wharf_mlflow::tracker::REPLAYED_FROM_TAG), None, "a run begun live carries no spool tag");
    // Reads go to MLflow again.
    assert_eq!(t.get_run(&info.id).unwrap().status, RunStatus::Finished);
    // The contract holds through the spool: an ended run takes no more calls.
    let late = t.log_params(&info.id, &map(&[("q", "2".to_string())]));
    assert!(matches!(late, Err(WharfError::InvalidInput { .. })), "{late:?}");
    assert!(t.spooled_calls().unwrap().is_empty(), "a refused call is not spooled");
}

#[test]
fn a_replay_interrupted_and_run_again_does_not_create_the_run_twice() {
    let Some(uri) = common::mlflow_uri() else { return };
    let gate = Gate::new(&uri);
    let dir = tempfile::tempdir().unwrap();
    let experiment = common::unique("wharf-spool");
    let t = spooled(&gate, &experiment, dir.path(), false);
    gate.set_open(false);
    let local = spool_a_run(&t);
    let spool = t.spool_path().to_path_buf();
    let saved = std::fs::read_to_string(&spool).unwrap();
    gate.set_open(true);
    let first = wharf_mlflow::replay(&t).unwrap();
    assert_eq!(first.replayed.len(), 1, "{first:?}");
    let mlflow_id = first.replayed[0].1.clone();

    // As if the process had died before the replay removed its copy of the spool: a new
    // process finds the leftover and sends every call again.
    std::fs::write(spool.with_extension("replaying"), &saved).unwrap();
    let again = spooled(&gate, &experiment, dir.path(), false);
    let second = wharf_mlflow::replay(&again).unwrap();
    assert_eq!(second.replayed, [(local.clone(), mlflow_id.clone())], "the same run, found by its tag");
    let client = common::client(&uri);
    let exp = client.get_or_create_experiment(&experiment).unwrap().experiment_id;
    let filter = format!("tags.\"{}\" = '{local}'", wharf_mlflow::tracker::REPLAYED_FROM_TAG);
    assert_eq!(client.search_runs(&[&exp], &filter).unwrap().len(), 1, "one run, not two");
    assert_eq!(history(&uri, &mlflow_id, "loss").len(), 3, "points already there are not doubled");
    let got = common::raw_get(&uri, "runs/get", &[("run_id", &mlflow_id)]);
    assert_eq!(got["run"]["info"]["status"], "KILLED");
    assert!(again.spooled_calls().unwrap().is_empty());
}

#[test]
fn calls_naming_a_local_id_find_the_run_another_process_replayed() {
    let Some(uri) = common::mlflow_uri() else { return };
    let gate = Gate::new(&uri);
    let dir = tempfile::tempdir().unwrap();
    let experiment = common::unique("wharf-spool");
    let t = spooled(&gate, &experiment, dir.path(), false);
    gate.set_open(false);
    let info = t.begin_run(Some("shared")).unwrap();
    t.log_params(&info.id, &map(&[("a", "1".to_string())])).unwrap();
    gate.set_open(true);
    // Another process replays the begin (the run is not ended, so `wharf runs sync` would
    // leave it: replay it all, as the next call of any process does).
    let other = spooled(&gate, &experiment, dir.path(), false);
    assert_eq!(other.replay().unwrap().sent, 2);
    // The first process goes on with its local id.
    t.log_metrics(&info.id, &map(&[("m", 2.0)]), Some(1)).unwrap();
    t.end_run(&info.id, RunStatus::Finished).unwrap();
    let mlflow_id = other.inner().begun(&info.id).expect("begun").id;
    let got = common::raw_get(&uri, "runs/get", &[("run_id", &mlflow_id)]);
    assert_eq!(got["run"]["info"]["status"], "FINISHED");
    assert_eq!(history(&uri, &mlflow_id, "m").len(), 1);
}

#[test]
fn strict_mode_fails_instead_of_spooling_and_keeps_the_buffer() {
    let Some(uri) = common::mlflow_uri() else { return };
    let gate = Gate::new(&uri);
    let dir = tempfile::tempdir().unwrap();
    let t = spooled(&gate, &common::unique("wharf-spool"), dir.path(), true);
    gate.set_open(false);
    assert!(matches!(t.begin_run(Some("x")), Err(WharfError::Backend { .. })));
    assert!(!t.spool_path().exists(), "strict mode spools nothing");

    gate.set_open(true);
    let info = t.begin_run(Some("strict")).unwrap();
    t.log_params(&info.id, &map(&[("p", "1".to_string())])).unwrap();
    gate.set_open(false);
    assert!(matches!(t.end_run(&info.id, RunStatus::Finished), Err(WharfError::Backend { .. })));
    assert!(!t.spool_path().exists());
    gate.set_open(true);
    t.end_run(&info.id, RunStatus::Finished).expect("ends once the server is back");
    let got = common::raw_get(&uri, "runs/get", &[("run_id", &info.id)]);
    assert_eq!(got["run"]["info"]["status"], "FINISHED");
    let params = got["run"]["data"]["params"].as_array().unwrap();
    assert!(params.iter().any(|p| p["key"] == "p"), "the buffered param was not lost: {got}");
}

#[test]
fn the_spooled_tracker_passes_the_tracker_suite_with_the_server_away_then_replays_it_all() {
    let Some(uri) = common::mlflow_uri() else { return };
    let gate = Gate::new(&uri);
    let dir = tempfile::tempdir().unwrap();
    let t = spooled(&gate, &common::unique("wharf-spool"), dir.path(), false);
    gate.set_open(false);
    run_tracker_suite(&t, TrackerCapabilities { readback: true });
    let spooled_runs = t.spooled_runs().unwrap();
    assert!(spooled_runs.len() >= 5, "{}", spooled_runs.len());
    gate.set_open(true);
    let report = wharf_mlflow::replay(&t).unwrap();
    assert!(report.failed.is_empty() && report.running.is_empty(), "{report:?}");
    assert_eq!(report.replayed.len(), spooled_runs.len());
    for (_, mlflow_id) in &report.replayed {
        let got = common::raw_get(&uri, "runs/get", &[("run_id", mlflow_id)]);
        assert_ne!(got["run"]["info"]["status"], "RUNNING", "{got}");
    }
    // And with the server up, through the decorator.
    run_tracker_suite(&t, TrackerCapabilities { readback: true });
    assert!(!t.spool_path().exists());
}

#[test]
fn runs_spooled_by_an_older_version_are_listed_and_synced() {
    let Some(uri) = common::mlflow_uri() else { return };
    let dir = tempfile::tempdir().unwrap();
    // The old layout: one file-tracker directory per run in `spool_dir`.
    let old = wharf_core::FileTracker::new(dir.path());
    let info = old.begin_run(Some("from-before")).unwrap();
    old.set_tags(&info.id, &map(&[("wharf.mlflow.experiment", "old".to_string()), ("team", "risk".to_string())]))
        .unwrap();
    old.log_params(&info.id, &map(&[("alpha", "0.5".to_string())])).unwrap();
    old.log_metrics(&info.id, &map(&[("loss", 0.25)]), Some(4)).unwrap();
    old.log_model(&info.id, &fixture_model(), "iris").unwrap();
    old.end_run(&info.id, RunStatus::Finished).unwrap();

    let listed = wharf_mlflow::spool::spooled_runs(dir.path()).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].info.name, "from-before");
    assert!(!listed[0].tags.contains_key("wharf.mlflow.experiment"), "bookkeeping stays hidden");

    let mut config = wharf_mlflow::MlflowConfig::default();
    config.uri = Some(uri.clone());
    config.experiment = common::unique("wharf-spool-legacy");
    config.spool_dir = dir.path().to_path_buf();
    let report = wharf_mlflow::replay_config(&config).unwrap();
    assert_eq!(report.replayed.len(), 1, "{report:?}");
    let got = common::raw_get(&uri, "runs/get", &[("run_id", &report.replayed[0].1)]);
    assert_eq!(got["run"]["info"]["status"], "FINISHED");
    assert_eq!(got["run"]["info"]["run_name"], "from-before");
    assert_eq!(tag(&got, "team").as_deref(), Some("risk"));
    assert_eq!(
        history(&uri, &report.replayed[0].1, "loss").iter().map(|p| (p.0, p.1)).collect::<Vec<_>>(),
        [(4, 0.25)]
    );
    let bytes = common::raw_artifact(&uri, got["run"]["info"]["artifact_uri"].as_str().unwrap(), "iris/model.wharf");
    assert_eq!(artifact::decode(&bytes).unwrap(), fixture_model());
    assert!(!dir.path().join(&info.id).exists(), "the old directory is gone");
    assert!(wharf_mlflow::spool::spooled_runs(dir.path()).unwrap().is_empty());
}

#[test]
fn a_child_run_begun_in_the_spool_is_nested_under_its_replayed_parent() {
    let Some(uri) = common::mlflow_uri() else { return };
    let gate = Gate::new(&uri);
    let dir = tempfile::tempdir().unwrap();
    let t = spooled(&gate, &common::unique("wharf-spool"), dir.path(), false);
    gate.set_open(false);
    let parent = t.begin_run(Some("parent")).unwrap();
    let child = wharf_mlflow::spool::begin_child_run(&t, &parent.id, Some("child")).unwrap();
    assert!(is_local_run_id(&child.id));
    t.end_run(&child.id, RunStatus::Finished).unwrap();
    t.end_run(&parent.id, RunStatus::Finished).unwrap();
    gate.set_open(true);
    let report = wharf_mlflow::replay(&t).unwrap();
    assert_eq!(report.replayed.len(), 2, "{report:?}");
    let mlflow_of = |local: &str| report.replayed.iter().find(|(l, _)| l == local).map(|(_, m)| m.clone()).unwrap();
    let got = common::raw_get(&uri, "runs/get", &[("run_id", &mlflow_of(&child.id))]);
    assert_eq!(tag(&got, wharf_mlflow::PARENT_RUN_ID_TAG), Some(mlflow_of(&parent.id)), "{got}");
}
