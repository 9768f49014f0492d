//! `NoOpTracker` and `NoOpLineage`: accept everything, keep nothing, cost nothing.

use std::collections::BTreeMap;

use crate::ports::lineage::{validate_event, LineageEvent, LineagePort};
use crate::ports::tracker::{RunInfo, RunStatus, TrackerPort};
use crate::{Model, Result, WharfError};

/// A tracker that records nothing. Runs are called `noop`; a run without a name is `run`.
/// [`enabled`](TrackerPort::enabled) is false so callers can skip building payloads.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoOpTracker(());

impl NoOpTracker {
    /// The no-op tracker.
    pub fn new() -> Self {
        Self::default()
    }
}

impl TrackerPort for NoOpTracker {
    fn name(&self) -> &str {
        "noop"
    }
    fn begin_run(&self, name: Option<&str>) -> Result<RunInfo> {
        Ok(RunInfo { id: "noop".into(), name: name.unwrap_or("run").to_string() })
    }
    fn log_params(&self, _: &str, _: &BTreeMap<String, String>) -> Result<()> {
        Ok(())
    }
    fn log_metrics(&self, _: &str, _: &BTreeMap<String, f64>, _: Option<u64>) -> Result<()> {
        Ok(())
    }
    fn set_tags(&self, _: &str, _: &BTreeMap<String, String>) -> Result<()> {
        Ok(())
    }
    fn log_model(&self, _: &str, _: &Model, _: &str) -> Result<()> {
        Ok(())
    }
    fn log_artifact(&self, _: &str, _: &std::path::Path, name: &str) -> Result<()> {
        crate::ports::tracker::validate_artifact_name(name)
    }
    fn log_input(&self, _: &str, _: &crate::DatasetInput) -> Result<()> {
        Ok(())
    }
    fn end_run(&self, _: &str, status: RunStatus) -> Result<()> {
        if status == RunStatus::Running {
            return Err(WharfError::invalid("status", "a run cannot end as RUNNING"));
        }
        Ok(())
    }
    fn enabled(&self) -> bool {
        false
    }
}

/// A lineage sink that discards events (after checking them, so a bad event fails the same
/// way whichever sink is configured).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoOpLineage(());

impl NoOpLineage {
    /// The no-op lineage sink.
    pub fn new() -> Self {
        Self::default()
    }
}

impl LineagePort for NoOpLineage {
    fn name(&self) -> &str {
        "noop"
    }
    fn emit(&self, event: &LineageEvent) -> Result<()> {
        validate_event(event)
    }
    fn enabled(&self) -> bool {
        false
    }
}
