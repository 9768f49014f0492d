//! The ports' conformance suites, unchanged, against a real MLflow server.

mod common;

use wharf_core::conformance::{run_registry_suite, run_tracker_suite, TrackerCapabilities};

#[test]
fn mlflow_tracker_passes_the_tracker_suite() {
    let Some(uri) = common::mlflow_uri() else { return };
    run_tracker_suite(&common::tracker(&uri), TrackerCapabilities { readback: true });
}

#[test]
fn mlflow_registry_passes_the_registry_suite() {
    let Some(uri) = common::mlflow_uri() else { return };
    run_registry_suite(&common::registry(&uri), &format!("{}-", common::unique("wharf-conf")));
}
