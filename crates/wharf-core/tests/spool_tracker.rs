//! The spool-and-replay decorator as a tracker, against a real `FileTracker` that can be
//! switched off: outages at begin and mid-run, a replay interrupted by a second outage, strict
//! mode, and the port's conformance suite with the backend down and up.
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use chrono::Utc;
use wharf_core::conformance::{fixture_model, run_tracker_suite, TrackerCapabilities};
use wharf_core::spool::tracker::{fallback_run_name, is_local_run_id, models_dir, new_local_run_id};
use wharf_core::spool::{ReplayTracker, SpoolLayer, Spooled, TrackRuns, TrackerCall};
use wharf_core::{FileTracker, Model, Result, RunInfo, RunRecord, RunStatus, TrackerPort, WharfError};

/// A real file tracker that can be switched off, standing for a server going down: while
/// down (or once `budget` calls went through), every call fails as unavailable.
struct Switchable {
    files: FileTracker,
    up: AtomicBool,
    budget: AtomicUsize,
    attempts: AtomicUsize,
}

impl Switchable {
    fn gate(&self) -> Result<()> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let spent = self.budget.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| b.checked_sub(1)).is_err();
        if !self.up.load(Ordering::SeqCst) || spent {
            return Err(WharfError::backend("switchable", "down", None));
        }
        Ok(())
    }
}

impl TrackerPort for Switchable {
    fn name(&self) -> &str {
        "switchable"
    }
    fn begin_run(&self, name: Option<&str>) -> Result<RunInfo> {
        self.gate()?;
        self.files.begin_run(name)
    }
    fn log_params(&self, run_id: &str, params: &BTreeMap<String, String>) -> Result<()> {
        self.gate()?;
        self.files.log_params(run_id, params)
    }
    fn log_metrics(&self, run_id: &str, metrics: &BTreeMap<String, f64>, step: Option<u64>) -> Result<()> {
        self.gate()?;
        self.files.log_metrics(run_id, metrics, step)
    }
    fn set_tags(&self, run_id: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        self.gate()?;
        self.files.set_tags(run_id, tags)
    }
    fn log_model(&self, run_id: &str, model: &Model, artifact: &str) -> Result<()> {
        self.gate()?;
        self.files.log_model(run_id, model, artifact)
    }
    fn log_artifact(&self, run_id: &str, path: &Path, name: &str) -> Result<()> {
        self.gate()?;
        self.files.log_artifact(run_id, path, name)
    }
    fn log_input(&self, run_id: &str, input: &wharf_core::DatasetInput) -> Result<()> {
        self.gate()?;
        self.files.log_input(run_id, input)
    }
    fn end_run(&self, run_id: &str, status: RunStatus) -> Result<()> {
        self.gate()?;
        self.files.end_run(run_id, status)
    }
    fn get_run(&self, run_id: &str) -> Result<RunRecord> {
        if !self.up.load(Ordering::SeqCst) {
            return Err(WharfError::backend("switchable", "down", None));
        }
        self.files.get_run(run_id)
    }
}

type Tracker = Spooled<TrackRuns<Switchable>>;

fn tracker(dir: &Path, strict: bool) -> Tracker {
    let port = Switchable {
        files: FileTracker::new(dir.join("runs")),
        up: AtomicBool::new(false),
        budget: AtomicUsize::new(usize::MAX),
        attempts: AtomicUsize::new(0),
    };
    SpoolLayer::new(dir.join("spool").join("spool.jsonl"), strict).layer(TrackRuns::new(port))
}

fn set_up(t: &Tracker, up: bool) {
    t.inner().get_ref().up.store(up, Ordering::SeqCst);
}

fn backend_runs(dir: &Path) -> Vec<RunRecord> {
    FileTracker::new(dir.join("runs")).list_runs().expect("list")
}

fn map<V: Clone>(pairs: &[(&str, V)]) -> BTreeMap<String, V> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

#[test]
fn a_run_begun_during_an_outage_gets_a_local_id_reads_back_from_the_spool_and_replays() {
    wharf_ml::register();
    let dir = tempfile::tempdir().unwrap();
    let t = tracker(dir.path(), false);
    let model = fixture_model();
    let info = t.begin_run(Some("offline")).expect("spooled, not failed");
    assert!(is_local_run_id(&info.id), "{}", info.id);
    assert_eq!(info.name, "offline");
    t.log_params(&info.id, &map(&[("alpha", "0.5".to_string())])).unwrap();
    t.log_metrics(&info.id, &map(&[("loss", 0.5), ("odd", f64::NAN)]), Some(3)).unwrap();
    t.set_tags(&info.id, &map(&[("team", "risk".to_string())])).unwrap();
    t.log_model(&info.id, &model, "iris").unwrap();
    assert!(matches!(
        t.log_params(&info.id, &map(&[("alpha", "0.7".to_string())])),
        Err(WharfError::InvalidInput { .. })
    ));
    t.end_run(&info.id, RunStatus::Finished).unwrap();
    assert!(matches!(t.log_params(&info.id, &map(&[("x", "y".to_string())])), Err(WharfError::InvalidInput { .. })));
    assert!(matches!(t.end_run(&info.id, RunStatus::Failed), Err(WharfError::InvalidInput { .. })));
    assert!(backend_runs(dir.path()).is_empty(), "nothing reached the backend");

    // Read back from the spool alone.
    let record = t.get_run(&info.id).expect("folded from the spool");
    assert_eq!((record.info.name.as_str(), record.status), ("offline", RunStatus::Finished));
    assert_eq!(record.params["alpha"], "0.5");
    assert_eq!(record.tags["team"], "risk");
    assert_eq!(record.artifacts, ["iris"]);
    assert!(record.metrics.iter().any(|m| m.key == "odd" && m.value.is_nan() && m.step == 3));
    assert!(record.end_time.is_some());
    let listed = t.spooled_runs().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((&listed[0].info, listed[0].metrics.len()), (&record.info, 2), "NaN aside, the same record");

    // Back up: the replay creates the run and sends everything to it.
    set_up(&t, true);
    let report = t.replay().expect("replay");
    assert_eq!((report.sent, report.remaining, report.unavailable), (6, 0, false), "{report:?}");
    let runs = backend_runs(dir.path());
    assert_eq!(runs.len(), 1);
    let got = &runs[0];
    assert!(!is_local_run_id(&got.info.id));
    assert_eq!((got.info.name.as_str(), got.status), ("offline", RunStatus::Finished));
    assert_eq!(got.params["alpha"], "0.5");
    assert_eq!(got.tags["team"], "risk");
    assert!(got.metrics.iter().any(|m| m.key == "loss" && m.value == 0.5 && m.step == 3));
    assert!(got.metrics.iter().any(|m| m.key == "odd" && m.value.is_nan()));
    let stored = Model::load(dir.path().join("runs").join(&got.info.id).join("artifacts/iris.wharf")).unwrap();
    assert_eq!(stored, model);
    assert!(t.spooled_runs().unwrap().is_empty());
    let models: Vec<_> = std::fs::read_dir(models_dir(t.spool_path())).unwrap().collect();
    assert!(models.is_empty(), "a delivered model leaves the spool");
    // The local id now reads the backend's run.
    assert_eq!(t.get_run(&info.id).unwrap().params["alpha"], "0.5");
}

#[test]
fn a_run_whose_backend_goes_down_mid_run_is_spooled_under_its_backend_id() {
    let dir = tempfile::tempdir().unwrap();
    let t = tracker(dir.path(), false);
    set_up(&t, true);
    let info = t.begin_run(Some("live")).unwrap();
    assert!(!is_local_run_id(&info.id), "the backend's id while it is up");
    t.log_params(&info.id, &map(&[("p", "1".to_string())])).unwrap();
    set_up(&t, false);
    t.log_metrics(&info.id, &map(&[("loss", 0.25)]), Some(1)).unwrap();
    t.end_run(&info.id, RunStatus::Finished).unwrap();
    let calls = t.spooled_calls().unwrap();
    assert_eq!(calls.len(), 2);
    assert!(calls.iter().all(|c| c.run_id() == info.id));
    assert!(t.get_run(&info.id).is_err(), "the backend cannot be read while down");

    set_up(&t, true);
    let record = t.get_run(&info.id).expect("backend + spool");
    assert_eq!(record.status, RunStatus::Finished, "the spooled end is folded on top");
    // The next call replays the spool first, in order.
    let other = t.begin_run(Some("next")).unwrap();
    let got = FileTracker::new(dir.path().join("runs")).get_run(&info.id).unwrap();
    assert_eq!(got.status, RunStatus::Finished);
    assert_eq!(got.params["p"], "1");
    assert_eq!(got.metrics.iter().map(|m| (m.key.as_str(), m.step)).collect::<Vec<_>>(), [("loss", 1)]);
    assert!(!t.spool_path().exists() || t.spooled_calls().unwrap().is_empty());
    t.end_run(&other.id, RunStatus::Finished).unwrap();
}

#[test]
fn calls_kept_after_their_begin_went_through_name_the_backend_run() {
    let dir = tempfile::tempdir().unwrap();
    let t = tracker(dir.path(), false);
    let info = t.begin_run(None).unwrap();
    assert_eq!(info.name, fallback_run_name(&info.id));
    t.log_params(&info.id, &map(&[("p", "1".to_string())])).unwrap();
    t.end_run(&info.id, RunStatus::Killed).unwrap();

    // Up for one call only: the begin goes through, then the backend fails again.
    set_up(&t, true);
    t.inner().get_ref().budget.store(1, Ordering::SeqCst);
    let report = t.replay().unwrap();
    assert_eq!((report.sent, report.remaining, report.unavailable), (1, 2, true), "{report:?}");
    let remote = t.inner().begun(&info.id).expect("begun").id;
    assert!(t.spooled_calls().unwrap().iter().all(|c| c.run_id() == remote), "kept calls name the backend run");

    // Another process (a fresh decorator over the same spool) finishes the job.
    let t2 = tracker(dir.path(), false);
    set_up(&t2, true);
    assert_eq!(t2.replay().unwrap().sent, 2);
    let got = FileTracker::new(dir.path().join("runs")).get_run(&remote).unwrap();
    assert_eq!((got.status, got.params["p"].as_str()), (RunStatus::Killed, "1"));
    assert_eq!(got.info.name, info.name, "the replayed run keeps the name callers saw");
}

#[test]
fn strict_mode_returns_the_outage_and_spools_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let t = tracker(dir.path(), true);
    assert!(matches!(t.begin_run(Some("x")), Err(WharfError::Backend { .. })));
    set_up(&t, true);
    let info = t.begin_run(Some("x")).unwrap();
    set_up(&t, false);
    assert!(matches!(t.log_model(&info.id, &fixture_model(), "m"), Err(WharfError::Backend { .. })));
    assert!(!t.spool_path().exists());
    let leftovers = std::fs::read_dir(models_dir(t.spool_path())).map(|d| d.count()).unwrap_or(0);
    assert_eq!(leftovers, 0, "a model neither sent nor spooled is not left behind");
}

#[test]
fn refused_calls_are_errors_not_spooled() {
    let dir = tempfile::tempdir().unwrap();
    let t = tracker(dir.path(), false);
    set_up(&t, true);
    let params = map(&[("a", "1".to_string())]);
    assert!(matches!(t.log_params("0123abcd", &params), Err(WharfError::NotFound { .. })));
    assert!(matches!(t.end_run("0123abcd", RunStatus::Running), Err(WharfError::InvalidInput { .. })));
    assert!(!t.spool_path().exists());
}

#[test]
fn the_spooled_tracker_passes_the_tracker_suite_with_the_backend_down_and_up() {
    wharf_ml::register();
    for up in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let t = tracker(dir.path(), false);
        set_up(&t, up);
        run_tracker_suite(&t, TrackerCapabilities { readback: true });
        assert_eq!(t.spool_path().exists(), !up, "spooled exactly when the backend was down");
    }
}

#[test]
fn calls_survive_the_json_line_they_are_kept_in() {
    let call = TrackerCall::LogMetrics {
        run_id: new_local_run_id(),
        metrics: map(&[("a", f64::NAN), ("b", f64::NEG_INFINITY), ("c", 1.5)]),
        step: Some(2),
        timestamp: Utc::now(),
    };
    let line = serde_json::to_string(&call).unwrap();
    assert!(line.contains("\"call\":\"log_metrics\""), "{line}");
    let back: TrackerCall = serde_json::from_str(&line).unwrap();
    let TrackerCall::LogMetrics { metrics, .. } = &back else { panic!("{back:?}") };
    assert!(metrics["a"].is_nan());
    assert_eq!((metrics["b"], metrics["c"]), (f64::NEG_INFINITY, 1.5));
    assert!(!is_local_run_id("spool-"));
    assert!(!is_local_run_id("spool-a'b"));
    assert!(!is_local_run_id("0123abcd"));
}

#[test]
fn during_the_probe_pause_calls_are_spooled_without_trying_the_backend() {
    let dir = tempfile::tempdir().unwrap();
    let port = Switchable {
        files: FileTracker::new(dir.path().join("runs")),
        up: AtomicBool::new(false),
        budget: AtomicUsize::new(usize::MAX),
        attempts: AtomicUsize::new(0),
    };
    let t = SpoolLayer::new(dir.path().join("spool.jsonl"), false)
        .probe_every(std::time::Duration::from_secs(3600))
        .layer(TrackRuns::new(port));
    let info = t.begin_run(Some("paused")).unwrap();
    for step in 0..100 {
        t.log_metrics(&info.id, &map(&[("loss", 1.0)]), Some(step)).unwrap();
    }
    t.end_run(&info.id, RunStatus::Finished).unwrap();
    assert_eq!(t.inner().get_ref().attempts.load(Ordering::SeqCst), 1, "only the first call tried the backend");
    assert_eq!(t.spooled_calls().unwrap().len(), 102);
    // An explicit replay always tries.
    set_up(&t, true);
    assert_eq!(t.replay().unwrap().sent, 102);
    assert_eq!(backend_runs(dir.path())[0].metrics.len(), 100);
}

#[test]
fn an_artifact_logged_during_an_outage_is_a_copy_replayed_then_removed() {
    let dir = tempfile::tempdir().unwrap();
    let t = tracker(dir.path(), false);
    let file = dir.path().join("board.json");
    std::fs::write(&file, b"[1,2,3]").unwrap();
    let info = t.begin_run(Some("offline")).unwrap();
    t.log_artifact(&info.id, &file, "leaderboard.json").unwrap();
    // The caller's file may change while the call waits: the spool kept its own copy.
    std::fs::write(&file, b"changed").unwrap();
    t.end_run(&info.id, RunStatus::Finished).unwrap();
    assert_eq!(t.get_run(&info.id).unwrap().artifacts, ["leaderboard.json"]);
    assert!(backend_runs(dir.path()).is_empty());

    set_up(&t, true);
    let report = t.replay().expect("replay");
    assert_eq!((report.sent, report.remaining), (3, 0), "{report:?}");
    let runs = backend_runs(dir.path());
    assert_eq!(runs[0].artifacts, ["leaderboard.json"]);
    let stored =
        std::fs::read(dir.path().join("runs").join(&runs[0].info.id).join("artifacts/leaderboard.json")).unwrap();
    assert_eq!(stored, b"[1,2,3]");
    let left = std::fs::read_dir(wharf_core::spool::tracker::artifacts_dir(t.spool_path())).unwrap().count();
    assert_eq!(left, 0, "a delivered artifact leaves the spool");
}
