//! Every default adapter passes its port's conformance suite.

use std::sync::Arc;

use wharf_core::conformance::{self, TrackerCapabilities};
use wharf_core::{
    FileLineage, FileRegistry, FileTracker, LineagePort, LocalModelServer, ModelServerPort, NoOpLineage, NoOpTracker,
};

#[test]
fn local_model_server_conforms() {
    // The suites' fixture models are stored built-in estimators.
    wharf_ml::register();
    conformance::run_model_server_suite(|| Arc::new(LocalModelServer::new()) as Arc<dyn ModelServerPort>);
}

#[test]
fn noop_tracker_conforms() {
    // The suites' fixture models are stored built-in estimators.
    wharf_ml::register();
    conformance::run_tracker_suite(&NoOpTracker::new(), TrackerCapabilities { readback: false });
}

#[test]
fn file_tracker_conforms() {
    // The suites' fixture models are stored built-in estimators.
    wharf_ml::register();
    let dir = tempfile::tempdir().expect("tempdir");
    conformance::run_tracker_suite(&FileTracker::new(dir.path()), TrackerCapabilities { readback: true });
}

#[test]
fn file_registry_conforms() {
    // The suites' fixture models are stored built-in estimators.
    wharf_ml::register();
    let dir = tempfile::tempdir().expect("tempdir");
    conformance::run_registry_suite(&FileRegistry::new(dir.path()), "conf-");
}

#[test]
fn noop_lineage_conforms() {
    // The suites' fixture models are stored built-in estimators.
    wharf_ml::register();
    conformance::run_lineage_suite(&NoOpLineage::new());
}

#[test]
fn file_lineage_conforms_and_reads_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = FileLineage::new(dir.path().join("lineage.jsonl"));
    conformance::run_lineage_suite(&sink);
    let events = sink.read_all().expect("read back");
    assert_eq!(events.len(), 1, "only the valid event was written");
    assert_eq!(events[0].name, "train-iris");
    assert_eq!(events[0].inputs, ["bundled:iris"]);
    assert_eq!(events[0].outputs, ["registry:iris/1"]);
    assert_eq!(events[0].metadata["accuracy"], 0.97);
}

#[test]
fn file_lineage_lists_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    conformance::lineage_reads_back(&FileLineage::new(dir.path().join("lineage.jsonl")));
    conformance::lineage_reads_back(&NoOpLineage::new());
}

#[test]
fn file_lineage_skips_and_counts_broken_lines() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("lineage.jsonl");
    let sink = FileLineage::new(&path);
    sink.emit(&wharf_core::LineageEvent::new("train-a")).expect("emit");
    {
        let mut file = std::fs::OpenOptions::new().append(true).open(&path).expect("open");
        file.write_all(b"{\"name\": \"torn\n\xff\xfe not json\n\n").expect("write");
    }
    sink.emit(&wharf_core::LineageEvent::new("train-b")).expect("emit");
    let log = sink.events(None).expect("a broken line is no failure");
    assert_eq!(log.events.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["train-a", "train-b"]);
    assert_eq!(log.skipped, 2, "both broken lines are counted");
}
