//! `LineagePort`: where data came from and where models went.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Result;

/// The stage of a job a lineage event reports (OpenLineage's event types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LineageEventType {
    /// The job started.
    Start,
    /// The job is running (progress).
    Running,
    /// The job completed.
    Complete,
    /// The job was aborted.
    Abort,
    /// The job failed.
    Fail,
    /// Anything else.
    Other,
}

/// A lineage event: job `name` read `inputs` and wrote `outputs`.
///
/// Dataset names are URIs-ish strings (`bundled:lead_scoring`, `file:data/leads.csv`,
/// `registry:lead/3`); `metadata` carries anything else worth keeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineageEvent {
    /// The job's name (`train-lead`).
    pub name: String,
    /// Datasets read.
    pub inputs: Vec<String>,
    /// Datasets written.
    pub outputs: Vec<String>,
    /// Extra facts (metrics, model version, row counts).
    pub metadata: BTreeMap<String, serde_json::Value>,
    /// Stage of the job.
    pub event_type: LineageEventType,
    /// The run this event belongs to (ties START and COMPLETE together).
    pub run_id: String,
    /// When it happened.
    pub event_time: DateTime<Utc>,
}

impl LineageEvent {
    /// A COMPLETE event for job `name`, stamped now, with a fresh run id.
    pub fn new(name: impl Into<String>) -> Self {
        LineageEvent {
            name: name.into(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            metadata: BTreeMap::new(),
            event_type: LineageEventType::Complete,
            run_id: uuid::Uuid::now_v7().to_string(),
            event_time: Utc::now(),
        }
    }
    /// Adds an input dataset.
    pub fn input(mut self, dataset: impl Into<String>) -> Self {
        self.inputs.push(dataset.into());
        self
    }
    /// Adds an output dataset.
    pub fn output(mut self, dataset: impl Into<String>) -> Self {
        self.outputs.push(dataset.into());
        self
    }
    /// Adds a metadata entry.
    pub fn meta(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
    /// Sets the event type.
    pub fn event_type(mut self, event_type: LineageEventType) -> Self {
        self.event_type = event_type;
        self
    }
    /// Sets the run id (to tie several events of one run together).
    pub fn run_id(mut self, run_id: impl Into<String>) -> Self {
        self.run_id = run_id.into();
        self
    }
}

/// Receives lineage events.
///
/// # Contract
///
/// - [`emit`](Self::emit) either records the event durably (for sinks that record) or
///   returns an error; it never silently drops an event it claimed to accept.
/// - Events with an empty job name are [`InvalidInput`](crate::WharfError::InvalidInput).
/// - [`enabled`](Self::enabled) is false only for sinks that discard everything, so callers
///   may skip building events.
pub trait LineagePort: Send + Sync {
    /// A short name for reports (`noop`, `file`, `openlineage`).
    fn name(&self) -> &str;
    /// Records one event.
    fn emit(&self, event: &LineageEvent) -> Result<()>;
    /// False when events are discarded.
    fn enabled(&self) -> bool {
        true
    }
}

macro_rules! forward_lineage {
    ($($wrapper:ident),*) => {$(
        impl<T: LineagePort + ?Sized> LineagePort for $wrapper<T> {
            fn name(&self) -> &str { (**self).name() }
            fn emit(&self, event: &LineageEvent) -> Result<()> { (**self).emit(event) }
            fn enabled(&self) -> bool { (**self).enabled() }
        }
    )*};
}
forward_lineage!(Arc, Box);

/// Checks the parts of an event every sink requires.
pub fn validate_event(event: &LineageEvent) -> Result<()> {
    if event.name.trim().is_empty() {
        return Err(crate::WharfError::invalid("event.name", "a lineage event needs a job name"));
    }
    Ok(())
}
