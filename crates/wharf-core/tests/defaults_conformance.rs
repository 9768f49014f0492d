//! Every default adapter passes its port's conformance suite.

use std::sync::Arc;

use wharf_core::conformance::{self, TrackerCapabilities};
use wharf_core::{FileLineage, FileRegistry, FileTracker, LocalModelServer, ModelServerPort, NoOpLineage, NoOpTracker};

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
