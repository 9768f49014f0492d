//! Conformance suites: one function per clause of each port's contract, taking `&dyn Port`.
//!
//! The fixture models ([`fixture_model`], [`fixture_model_b`]) are stored artifacts of the
//! built-in estimators, so register that kind first (`wharf_ml::register()` or
//! `wharf::register_kinds()`); otherwise they panic with the loader's `UnknownKind` error.
//!
//! Every default runs these in this crate's tests; every adapter crate runs the same
//! functions against its real backend. They panic with a message naming the clause, like
//! any test assertion. `run_*` runs a whole suite.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::ports::lineage::{LineageEvent, LineagePort};
use crate::ports::model_server::ModelServerPort;
use crate::ports::registry::{RegistryExt, RegistryPort, Selector, Version};
use crate::ports::tracker::{RunHandle, RunQuery, RunStatus, TrackerPort};
use crate::{Model, Predictions, Records, Row, WharfError};

/// The fixture models are stored artifacts (this crate trains nothing). They hold the
/// built-in estimator kind, so whoever runs the suites registers it first:
/// `wharf_ml::register()`, or `wharf::register_kinds()`.
fn fixture(name: &str, bytes: &[u8]) -> Model {
    crate::artifact::decode(bytes).unwrap_or_else(|e| panic!("conformance fixture {name}: {e}"))
}

/// A small, quick classifier to exercise ports with (logistic regression on iris: three
/// classes, so both binary-only and multiclass mistakes show).
pub fn fixture_model() -> Model {
    fixture("iris-logistic", include_bytes!("../fixtures/iris-logistic.wharf"))
}

/// A second, different model (a decision tree of depth 3 on iris) for swap and versioning
/// checks.
pub fn fixture_model_b() -> Model {
    fixture("iris-tree", include_bytes!("../fixtures/iris-tree.wharf"))
}

fn sample(model: &Model) -> Records<'static> {
    Records::Rows(model.metadata().sample_input.clone())
}

// ---------------------------------------------------------------- model server

/// Predicting before any load is `NoModelLoaded`. Needs a fresh server.
pub fn server_predict_before_load(server: &dyn ModelServerPort) {
    let records = sample(&fixture_model());
    assert!(
        matches!(server.predict(&records), Err(WharfError::NoModelLoaded)),
        "predict before load must be NoModelLoaded"
    );
    assert!(server.model().is_none(), "model() before load must be None");
    assert!(!server.ready(), "a server without a model is not ready");
}

/// After load: one prediction per record, labelled with the model's classes, probabilities
/// per class summing to 1, and `model()` returns the loaded model. An in-process server must
/// agree with the model exactly; a remote one (a proxy) answers from its own copy of the
/// model, so only the shapes, the labels and predict/predict_proba consistency are checked.
pub fn server_predicts_after_load(server: &dyn ModelServerPort) {
    let model = fixture_model();
    let records = sample(&model);
    let caps = server.capabilities();
    server.load(model.clone()).expect("load");
    assert_eq!(server.model().as_deref(), Some(&model), "model() must return the loaded model");
    let predictions = server.predict(&records).expect("predict");
    assert_eq!(predictions.len(), records.len(), "one prediction per record");
    match &predictions {
        Predictions::Classes { classes, indices } => {
            assert_eq!(classes, model.classes(), "predictions are labelled with the model's classes");
            assert!(indices.iter().all(|&i| (i as usize) < classes.len()), "every prediction is one of the classes");
        }
        other => panic!("a classifier must predict classes, got {other:?}"),
    }
    if caps.in_process {
        assert_eq!(predictions, model.predict(&records).expect("model predict"), "server and model agree exactly");
    }
    if caps.predict_proba {
        let proba = server.predict_proba(&records).expect("predict_proba");
        assert_eq!(proba.classes, model.classes(), "probability columns follow the model's classes");
        assert_eq!(proba.values.nrows(), records.len(), "one probability row per record");
        assert_eq!(proba.values.ncols(), model.classes().len(), "one probability column per class");
        for row in proba.values.rows() {
            assert!((row.sum() - 1.0).abs() < 1e-9, "probabilities sum to 1");
            assert!(row.iter().all(|p| (0.0..=1.0).contains(p)), "probabilities lie in [0, 1]");
        }
        if let Predictions::Classes { indices, .. } = &predictions {
            assert_eq!(*indices, proba.argmax(), "predict is the most probable class of predict_proba");
        }
        if caps.in_process {
            let expected = model.predict_proba(&records).expect("model predict_proba");
            assert_eq!(proba.values, expected.values, "server and model agree exactly");
        }
    }
}

/// Records that do not match the signature fail with `SchemaMismatch` naming the field.
pub fn server_rejects_bad_records(server: &dyn ModelServerPort) {
    let model = fixture_model();
    server.load(model.clone()).expect("load");
    let mut row: Row = model.metadata().sample_input[0].clone();
    let first = model.signature().features[0].name.clone();
    row.remove(&first);
    match server.predict(&Records::Rows(vec![row.clone()])) {
        Err(WharfError::SchemaMismatch { path, .. }) => {
            assert!(path.contains(&first), "error path {path} must name the missing field {first}")
        }
        other => panic!("a missing field must be SchemaMismatch, got {other:?}"),
    }
    row.insert(first.clone(), "not a number".into());
    row.insert("bogus_field".into(), 1.into());
    assert!(
        matches!(server.predict(&Records::Rows(vec![row])), Err(WharfError::SchemaMismatch { .. })),
        "a mistyped or extra field must be SchemaMismatch"
    );
}

/// `load` swaps models while other threads predict: every prediction succeeds and (for an
/// in-process server) comes from one of the two models. A remote server answers from its own
/// model, so there each answer must only be complete: one label per record, from the classes
/// both models share. Remote servers do fewer rounds, since each is a network request.
pub fn server_swaps_under_load(server: Arc<dyn ModelServerPort>) {
    let a = fixture_model();
    let b = fixture_model_b();
    let records = sample(&a);
    let pa = a.predict(&records).expect("a");
    let pb = b.predict(&records).expect("b");
    let in_process = server.capabilities().in_process;
    let rounds = if in_process { 200 } else { 20 };
    server.load(a.clone()).expect("load a");
    std::thread::scope(|s| {
        for _ in 0..4 {
            let server = server.clone();
            let (records, pa, pb, classes) = (&records, &pa, &pb, a.classes());
            s.spawn(move || {
                for _ in 0..rounds {
                    let p = server.predict(records).expect("predict during swap");
                    if in_process {
                        assert!(p == *pa || p == *pb, "a prediction mixed two models");
                    } else {
                        assert_eq!(p.len(), records.len(), "one prediction per record during a swap");
                        assert!(
                            matches!(&p, Predictions::Classes { classes: got, .. } if got == classes),
                            "predictions during a swap carry the models' classes"
                        );
                    }
                }
            });
        }
        for i in 0..50 {
            server.load(if i % 2 == 0 { b.clone() } else { a.clone() }).expect("swap");
        }
    });
}

/// Runs the whole model-server suite on fresh servers from `make`.
pub fn run_model_server_suite(make: impl Fn() -> Arc<dyn ModelServerPort>) {
    server_predict_before_load(&*make());
    server_predicts_after_load(&*make());
    server_rejects_bad_records(&*make());
    server_swaps_under_load(make());
}

// ---------------------------------------------------------------- tracker

/// What a tracker can do, so the suite checks only what applies.
#[derive(Debug, Clone, Copy)]
pub struct TrackerCapabilities {
    /// Runs can be read back with `get_run`.
    pub readback: bool,
}

/// A run keeps the name it was given; without one, the tracker picks a non-empty name.
pub fn tracker_names_runs(tracker: &dyn TrackerPort) {
    let run = tracker.start_run(Some("my-run")).expect("start_run");
    assert_eq!(run.name(), "my-run");
    assert!(!run.id().is_empty(), "a run has an id");
    run.finish().expect("finish");
    let run = tracker.start_run(None).expect("start_run without a name");
    assert!(!run.name().is_empty(), "an unnamed run still has a name");
    run.finish().expect("finish");
}

/// Params, metrics with steps, tags and a model are logged and (when readable) read back
/// exactly; the run ends FINISHED.
pub fn tracker_logs_everything(tracker: &dyn TrackerPort, caps: TrackerCapabilities) {
    let model = fixture_model();
    let run = tracker.start_run(Some("conformance")).expect("start_run");
    run.log_params([("alpha", "0.5"), ("depth", "3")]).expect("log_params");
    run.log_param("alpha", "0.5").expect("re-logging the same value is accepted");
    for step in 0..3u64 {
        run.log_metric("loss", 1.0 / (step + 1) as f64, Some(step)).expect("log_metric");
    }
    run.log_metrics([("accuracy", 0.9)]).expect("log_metrics");
    run.set_tag("team", "risk").expect("set_tag");
    run.log_model(&model, "iris").expect("log_model");
    let id = run.id().to_string();
    run.finish().expect("finish");
    if caps.readback {
        let record = tracker.get_run(&id).expect("get_run");
        assert_eq!(record.status, RunStatus::Finished);
        assert_eq!(record.params.get("alpha").map(String::as_str), Some("0.5"));
        assert_eq!(record.params.get("depth").map(String::as_str), Some("3"));
        assert_eq!(record.tags.get("team").map(String::as_str), Some("risk"));
        let loss: Vec<(u64, f64)> =
            record.metrics.iter().filter(|m| m.key == "loss").map(|m| (m.step, m.value)).collect();
        assert_eq!(loss, vec![(0, 1.0), (1, 0.5), (2, 1.0 / 3.0)], "metric points keep their steps and order");
        assert!(record.metrics.iter().any(|m| m.key == "accuracy" && m.value == 0.9));
        assert!(record.artifacts.iter().any(|a| a == "iris"), "the model artifact is recorded");
        assert!(record.end_time.is_some());
    }
}

/// A param cannot change value within a run (when the tracker keeps params).
pub fn tracker_rejects_changed_param(tracker: &dyn TrackerPort, caps: TrackerCapabilities) {
    if !caps.readback {
        return;
    }
    let run = tracker.start_run(Some("param-change")).expect("start_run");
    run.log_param("lr", "0.1").expect("log_param");
    assert!(
        matches!(run.log_param("lr", "0.2"), Err(WharfError::InvalidInput { .. })),
        "changing a param's value must be InvalidInput"
    );
    run.finish().expect("finish");
}

/// A run handle dropped without finishing ends the run as FAILED.
pub fn tracker_drop_marks_failed(tracker: &dyn TrackerPort, caps: TrackerCapabilities) {
    let id = {
        let run = tracker.start_run(Some("dropped")).expect("start_run");
        run.id().to_string()
    };
    if caps.readback {
        assert_eq!(tracker.get_run(&id).expect("get_run").status, RunStatus::Failed);
    }
    let run = RunHandle::start(tracker, Some("failed")).expect("start");
    let id = run.id().to_string();
    run.fail("boom").expect("fail");
    if caps.readback {
        let record = tracker.get_run(&id).expect("get_run");
        assert_eq!(record.status, RunStatus::Failed);
        assert_eq!(record.tags.get("error").map(String::as_str), Some("boom"));
    }
}

/// A file is stored as an artifact of a running run and (when readable) listed among the
/// run's artifacts; a name that could leave the run is refused, and so is a file that does
/// not exist.
pub fn tracker_logs_artifacts(tracker: &dyn TrackerPort, caps: TrackerCapabilities) {
    let dir = std::env::temp_dir().join(format!("wharf-conformance-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("board.json");
    std::fs::write(&file, br#"[{"trial":0,"score":0.9}]"#).expect("write artifact");
    let run = tracker.start_run(Some("artifact")).expect("start_run");
    run.log_artifact(&file, "leaderboard.json").expect("log_artifact");
    run.log_artifact(&file, "leaderboard.json").expect("logging a name again replaces it");
    assert!(
        matches!(run.log_artifact(&file, "../escape"), Err(WharfError::InvalidInput { .. })),
        "an artifact name with a path must be InvalidInput"
    );
    if caps.readback {
        assert!(run.log_artifact(&dir.join("absent.json"), "absent.json").is_err(), "a missing file is an error");
    }
    let id = run.id().to_string();
    run.finish().expect("finish");
    if caps.readback {
        let record = tracker.get_run(&id).expect("get_run");
        let listed = record.artifacts.iter().filter(|a| *a == "leaderboard.json").count();
        assert_eq!(listed, 1, "the artifact is listed once: {:?}", record.artifacts);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A dataset input is accepted by a running run and (when readable) read back once, with its
/// digest, source, context and rows, however often it was logged.
pub fn tracker_logs_inputs(tracker: &dyn TrackerPort, caps: TrackerCapabilities) {
    let run = tracker.start_run(Some("inputs")).expect("start_run");
    let digest = format!("{:016x}", uuid::Uuid::now_v7().as_u128() as u64);
    let input = crate::DatasetInput::new("leads.csv", digest, "data/leads.csv", "training", 1200);
    run.log_input(&input).expect("log_input");
    run.log_input(&input).expect("logging the same input again");
    let id = run.id().to_string();
    run.finish().expect("finish");
    if caps.readback {
        let record = tracker.get_run(&id).expect("get_run");
        assert_eq!(record.inputs, [input], "the input, once");
    }
}

/// A child run carries its parent's id in [`PARENT_RUN_TAG`](crate::ports::tracker::PARENT_RUN_TAG).
pub fn tracker_nests_child_runs(tracker: &dyn TrackerPort, caps: TrackerCapabilities) {
    let parent = tracker.start_run(Some("parent")).expect("start_run");
    let child = tracker.begin_child_run(parent.id(), Some("child")).expect("begin_child_run");
    assert_eq!(child.name, "child");
    tracker.end_run(&child.id, RunStatus::Finished).expect("end child");
    let parent_id = parent.id().to_string();
    parent.finish().expect("finish parent");
    if caps.readback {
        let record = tracker.get_run(&child.id).expect("get_run");
        assert_eq!(
            record.tags.get(crate::ports::tracker::PARENT_RUN_TAG).map(String::as_str),
            Some(parent_id.as_str()),
            "a child run names its parent"
        );
    }
}

/// Ending a run as RUNNING is invalid input.
pub fn tracker_rejects_running_end(tracker: &dyn TrackerPort) {
    let run = tracker.start_run(Some("bad-end")).expect("start_run");
    let id = run.id().to_string();
    assert!(matches!(tracker.end_run(&id, RunStatus::Running), Err(WharfError::InvalidInput { .. })));
    run.finish().expect("finish");
}

/// Runs are listed newest first with their metric histories; the name, status and limit
/// of a query are applied (when the tracker keeps runs).
pub fn tracker_searches_runs(tracker: &dyn TrackerPort, caps: TrackerCapabilities) {
    if !caps.readback {
        return;
    }
    let tag = format!("search-{}", uuid::Uuid::now_v7().simple());
    let first = tracker.start_run(Some(&format!("{tag}-a"))).expect("start_run");
    for step in 0..4u64 {
        first.log_metric("loss", 1.0 / (step + 1) as f64, Some(step)).expect("log_metric");
    }
    let first_id = first.id().to_string();
    first.finish().expect("finish");
    std::thread::sleep(std::time::Duration::from_millis(5));
    let second = tracker.start_run(Some(&format!("{tag}-B"))).expect("start_run");
    let second_id = second.id().to_string();
    second.fail("boom").expect("fail");

    let found = match tracker.search_runs(&RunQuery::all().name_contains(tag.to_uppercase())) {
        Ok(found) => found,
        // Listing is optional: a tracker may read runs back one by one only.
        Err(WharfError::Unsupported(_)) => return,
        Err(e) => panic!("search_runs: {e}"),
    };
    let ids: Vec<&str> = found.iter().map(|r| r.info.id.as_str()).collect();
    assert_eq!(ids, [second_id.as_str(), first_id.as_str()], "newest first, the name matched ignoring case");
    let loss = found[1].metrics.iter().filter(|m| m.key == "loss").count();
    assert_eq!(loss, 4, "a listed run carries its metric history");
    let failed = tracker
        .search_runs(&RunQuery::all().name_contains(&tag).status(RunStatus::Failed))
        .expect("search_runs by status");
    assert_eq!(failed.iter().map(|r| r.info.id.as_str()).collect::<Vec<_>>(), [second_id.as_str()]);
    let limited = tracker.search_runs(&RunQuery::all().name_contains(&tag).limit(1)).expect("search_runs, limit");
    assert_eq!(limited.len(), 1, "the limit holds");
    assert_eq!(limited[0].info.id, second_id, "the limit keeps the newest");
}

/// Runs the whole tracker suite.
pub fn run_tracker_suite(tracker: &dyn TrackerPort, caps: TrackerCapabilities) {
    tracker_names_runs(tracker);
    tracker_logs_everything(tracker, caps);
    tracker_rejects_changed_param(tracker, caps);
    tracker_drop_marks_failed(tracker, caps);
    tracker_logs_artifacts(tracker, caps);
    tracker_logs_inputs(tracker, caps);
    tracker_nests_child_runs(tracker, caps);
    tracker_searches_runs(tracker, caps);
    tracker_rejects_running_end(tracker);
}

// ---------------------------------------------------------------- registry

/// Versions count 1, 2, … per name; `latest` is the highest; each loads back identical.
/// `name` must not exist in the registry yet.
pub fn registry_versions_increase(registry: &dyn RegistryPort, name: &str) {
    let a = fixture_model();
    let b = fixture_model_b();
    assert_eq!(registry.register(&a, name).expect("register"), Version(1));
    assert_eq!(registry.register(&b, name).expect("register"), Version(2));
    let records = sample(&a);
    let latest = registry.load(name, "latest").expect("load latest");
    assert_eq!(latest.predict(&records).ok(), b.predict(&records).ok(), "latest is version 2");
    let v1 = registry.load(name, "1").expect("load 1");
    assert_eq!(
        v1.predict_proba(&records).expect("v1").values,
        a.predict_proba(&records).expect("a").values,
        "a loaded version predicts bit-identically"
    );
    let listed = registry.get(name).expect("listed");
    let numbers: Vec<Version> = listed.versions.iter().map(|v| v.version).collect();
    assert_eq!(numbers, vec![Version(1), Version(2)]);
    let info = registry.version_info(name, &Selector::Version(Version(1))).expect("info");
    assert_eq!(info.signature, *a.signature());
    assert_eq!(info.sha256.len(), 64, "sha256 in hex");
}

/// Aliases are set, moved and deleted; unknown ones are `NotFound`.
pub fn registry_aliases(registry: &dyn RegistryPort, name: &str) {
    let a = fixture_model();
    let v1 = registry.register(&a, name).expect("register");
    let v2 = registry.register(&fixture_model_b(), name).expect("register");
    registry.set_alias(name, "champion", &v1).expect("set alias");
    assert_eq!(registry.version_info(name, &Selector::Alias("champion".into())).expect("info").version, v1);
    registry.set_alias(name, "champion", &v2).expect("move alias");
    let info = registry.version_info(name, &Selector::Alias("champion".into())).expect("info");
    assert_eq!(info.version, v2);
    assert!(info.aliases.contains(&"champion".to_string()), "version info lists its aliases");
    registry.delete_alias(name, "champion").expect("delete alias");
    assert!(matches!(registry.load(name, "champion"), Err(WharfError::NotFound { .. })));
    assert!(matches!(registry.delete_alias(name, "champion"), Err(WharfError::NotFound { .. })));
    assert!(matches!(registry.set_alias(name, "x", &Version(999)), Err(WharfError::NotFound { .. })));
    assert!(matches!(registry.set_alias(name, "latest", &v1), Err(WharfError::InvalidInput { .. })));
}

/// Unknown names and versions are `NotFound`; invalid names are `InvalidInput`.
pub fn registry_not_found(registry: &dyn RegistryPort) {
    assert!(matches!(registry.load("no-such-model", "latest"), Err(WharfError::NotFound { .. })));
    assert!(matches!(registry.load("../etc", "latest"), Err(WharfError::InvalidInput { .. })));
    assert!(matches!(registry.register(&fixture_model(), "bad/name"), Err(WharfError::InvalidInput { .. })));
}

/// Deleting a version removes it and its aliases; its number is not reused.
pub fn registry_delete(registry: &dyn RegistryPort, name: &str) {
    let m = fixture_model();
    let v1 = registry.register(&m, name).expect("register");
    let v2 = registry.register(&m, name).expect("register");
    registry.set_alias(name, "old", &v2).expect("alias");
    registry.delete_version(name, &v2).expect("delete");
    assert!(matches!(registry.load(name, &v2.to_string()), Err(WharfError::NotFound { .. })));
    assert!(matches!(registry.load(name, "old"), Err(WharfError::NotFound { .. })));
    let v3 = registry.register(&m, name).expect("register");
    assert!(v3 > v2, "a deleted version's number is not reused ({v3} after {v2})");
    assert!(registry.load(name, &v1.to_string()).is_ok());
}

/// Registering from several threads at once gives distinct versions 1..=n.
pub fn registry_concurrent_register(registry: &dyn RegistryPort, name: &str, n: usize) {
    let model = fixture_model();
    let mut versions: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n).map(|_| s.spawn(|| registry.register(&model, name).expect("register"))).collect();
        handles.into_iter().map(|h| h.join().expect("thread").0).collect()
    });
    versions.sort_unstable();
    assert_eq!(versions, (1..=n as u64).collect::<Vec<_>>(), "concurrent registers get distinct versions");
}

/// A stored card reads back byte for byte and is replaced by the next; a version without a
/// card, or an unknown version, is `NotFound`. A registry without cards is `Unsupported` for
/// both calls.
pub fn registry_keeps_cards(registry: &dyn RegistryPort, name: &str) {
    let v = registry.register(&fixture_model(), name).expect("register");
    match registry.store_card(name, &v, b"<html>first</html>") {
        Err(WharfError::Unsupported(_)) => {
            assert!(matches!(registry.card(name, &v), Err(WharfError::Unsupported(_))), "card without store_card");
            return;
        }
        other => other.expect("store_card"),
    }
    assert_eq!(registry.card(name, &v).expect("card"), b"<html>first</html>");
    registry.store_card(name, &v, b"<html>second</html>").expect("store_card again");
    assert_eq!(registry.card(name, &v).expect("card"), b"<html>second</html>", "a card is replaced");
    let bare = registry.register(&fixture_model(), name).expect("register");
    assert!(matches!(registry.card(name, &bare), Err(WharfError::NotFound { .. })), "a version without a card");
    let unknown = Version(bare.0 + 100);
    assert!(matches!(registry.store_card(name, &unknown, b"x"), Err(WharfError::NotFound { .. })), "unknown version");
}

/// Runs the whole registry suite with names starting with `prefix` (unused so far).
pub fn run_registry_suite(registry: &dyn RegistryPort, prefix: &str) {
    registry_versions_increase(registry, &format!("{prefix}versions"));
    registry_aliases(registry, &format!("{prefix}aliases"));
    registry_not_found(registry);
    registry_delete(registry, &format!("{prefix}delete"));
    registry_concurrent_register(registry, &format!("{prefix}concurrent"), 4);
    registry_keeps_cards(registry, &format!("{prefix}cards"));
}

// ---------------------------------------------------------------- lineage

/// A well-formed event is accepted; an event without a job name is `InvalidInput`.
pub fn lineage_accepts_events(lineage: &dyn LineagePort) {
    let event = LineageEvent::new("train-iris").input("bundled:iris").output("registry:iris/1").meta("accuracy", 0.97);
    lineage.emit(&event).expect("emit");
    let bad = LineageEvent::new("  ");
    assert!(matches!(lineage.emit(&bad), Err(WharfError::InvalidInput { .. })));
}

/// A sink that keeps events reads back what it accepted, oldest first, and `limit` keeps
/// the newest; sinks that keep none answer `Unsupported`. Not part of
/// [`run_lineage_suite`], whose callers count the events it writes.
pub fn lineage_reads_back(lineage: &dyn LineagePort) {
    let tag = format!("readback-{}", uuid::Uuid::now_v7().simple());
    for i in 0..3 {
        lineage.emit(&LineageEvent::new(format!("{tag}-{i}")).input("bundled:iris")).expect("emit");
    }
    match lineage.events(None) {
        Ok(log) => {
            let ours: Vec<&str> = log.events.iter().map(|e| e.name.as_str()).filter(|n| n.starts_with(&tag)).collect();
            assert_eq!(ours, [format!("{tag}-0"), format!("{tag}-1"), format!("{tag}-2")], "oldest first");
            let last = lineage.events(Some(1)).expect("events(limit)");
            assert_eq!(last.events.len(), 1, "the limit holds");
            assert_eq!(last.events[0].name, format!("{tag}-2"), "the limit keeps the newest");
        }
        Err(WharfError::Unsupported(_)) => {}
        Err(e) => panic!("events: {e}"),
    }
}

/// Runs the whole lineage suite.
pub fn run_lineage_suite(lineage: &dyn LineagePort) {
    lineage_accepts_events(lineage);
}

/// Params as a map, for adapters' own tests.
pub fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}
