//! `LineagePort`: where data came from and where models went.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::signature::{FeatureKind, Signature, Task};
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

/// One column of a dataset's schema, as lineage reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaField {
    /// The column (feature) name.
    pub name: String,
    /// Its type in words lineage tools display (`DOUBLE`, `STRING`).
    #[serde(rename = "type")]
    pub field_type: String,
    /// Anything worth knowing beyond the type (a categorical feature's levels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl SchemaField {
    /// The input columns of `signature`, in order: what a model reads.
    pub fn from_signature(signature: &Signature) -> Vec<SchemaField> {
        signature
            .features
            .iter()
            .map(|f| match &f.kind {
                FeatureKind::Numeric => {
                    SchemaField { name: f.name.clone(), field_type: "DOUBLE".into(), description: None }
                }
                FeatureKind::Categorical { levels } => SchemaField {
                    name: f.name.clone(),
                    field_type: "STRING".into(),
                    description: Some(format!("categorical: {}", levels.join(", "))),
                },
            })
            .collect()
    }

    /// The columns of the data `signature` was trained on: its inputs plus the target, whose
    /// type follows the task (class labels are text, regression targets numbers).
    pub fn training_columns(signature: &Signature) -> Vec<SchemaField> {
        let mut fields = Self::from_signature(signature);
        if let Some(target) = &signature.target {
            let (field_type, description) = match signature.task {
                Task::Regression => ("DOUBLE", "target".to_string()),
                _ => ("STRING", format!("target: {}", signature.classes.join(", "))),
            };
            fields.push(SchemaField {
                name: target.clone(),
                field_type: field_type.into(),
                description: Some(description),
            });
        }
        fields
    }
}

/// The model a run trained or used, for lineage tools that know about models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFacts {
    /// The registered model name.
    pub name: String,
    /// The registered version, once there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// SHA-256 of the artifact payload (as the registry reports it), so a deployment can be
    /// traced to exact bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The estimator (`logistic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    /// Evaluation metrics.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, f64>,
}

/// The run that started this one (a pipeline run starting a scoring job, say).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentRun {
    /// The parent job's name.
    pub job: String,
    /// The parent run's id.
    pub run_id: String,
}

/// Where the code of a job lives (a repository URL at a commit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceLocation {
    /// The source control system (`git`).
    pub kind: String,
    /// A URL to the code.
    pub url: String,
    /// The exact version (a commit id), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// A lineage event: job `name` read `inputs` and wrote `outputs`.
///
/// Dataset names are URIs-ish strings (`bundled:lead_scoring`, `file:data/leads.csv`,
/// `registry:lead/3`); `metadata` carries anything else worth keeping. The optional
/// structured fields (`schemas`, `model`, `parent`, `source`) let sinks that understand them
/// (OpenLineage facets) report more; they are skipped when empty, so events written before
/// they existed still read back.
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
    /// Column schemas of datasets named in `inputs` or `outputs`, keyed by dataset name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub schemas: BTreeMap<String, Vec<SchemaField>>,
    /// The model the run trained or used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelFacts>,
    /// The run that started this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ParentRun>,
    /// Where the job's code lives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceLocation>,
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
            schemas: BTreeMap::new(),
            model: None,
            parent: None,
            source: None,
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
    /// Records the column schema of `dataset` (one of the inputs or outputs).
    pub fn schema(mut self, dataset: impl Into<String>, fields: Vec<SchemaField>) -> Self {
        self.schemas.insert(dataset.into(), fields);
        self
    }
    /// Records the model the run trained or used.
    pub fn model(mut self, model: ModelFacts) -> Self {
        self.model = Some(model);
        self
    }
    /// Records the run that started this one.
    pub fn parent(mut self, job: impl Into<String>, run_id: impl Into<String>) -> Self {
        self.parent = Some(ParentRun { job: job.into(), run_id: run_id.into() });
        self
    }
    /// Records where the job's code lives.
    pub fn source(mut self, source: SourceLocation) -> Self {
        self.source = Some(source);
        self
    }
}

/// Lineage events read back, for a reader that draws the graph (`wharf ui`).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct LineageLog {
    /// The events, oldest first.
    pub events: Vec<LineageEvent>,
    /// Records that could not be read (a torn or hand-edited line) and were left out: one
    /// damaged line must not hide the rest of the history.
    pub skipped: usize,
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
/// - Sinks that keep events answer [`events`](Self::events) with what they accepted, oldest
///   first, counting unreadable records in [`LineageLog::skipped`] instead of failing;
///   others answer [`Unsupported`](crate::WharfError::Unsupported).
pub trait LineagePort: Send + Sync {
    /// A short name for reports (`noop`, `file`, `openlineage`).
    fn name(&self) -> &str;
    /// Records one event.
    fn emit(&self, event: &LineageEvent) -> Result<()>;
    /// False when events are discarded.
    fn enabled(&self) -> bool {
        true
    }
    /// The last `limit` events recorded (all with `None`), oldest first. Sinks that send
    /// events elsewhere (an OpenLineage server) keep none to read and answer
    /// [`Unsupported`](crate::WharfError::Unsupported).
    fn events(&self, limit: Option<usize>) -> Result<LineageLog> {
        let _ = limit;
        Err(crate::WharfError::Unsupported(format!("lineage sink '{}' keeps no events to read back", self.name())))
    }
}

macro_rules! forward_lineage {
    ($($wrapper:ident),*) => {$(
        impl<T: LineagePort + ?Sized> LineagePort for $wrapper<T> {
            fn name(&self) -> &str { (**self).name() }
            fn emit(&self, event: &LineageEvent) -> Result<()> { (**self).emit(event) }
            fn enabled(&self) -> bool { (**self).enabled() }
            fn events(&self, limit: Option<usize>) -> Result<LineageLog> { (**self).events(limit) }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_written_before_the_structured_fields_still_read() {
        let old = r#"{"name":"train-x","inputs":["bundled:iris"],"outputs":[],"metadata":{},
            "event_type":"START","run_id":"r1","event_time":"2026-11-22T11:30:00Z"}"#;
        let event: LineageEvent = serde_json::from_str(old).expect("old line");
        assert!(event.schemas.is_empty() && event.model.is_none() && event.parent.is_none());
        let plain = serde_json::to_value(LineageEvent::new("x")).expect("json");
        assert!(plain.get("model").is_none() && plain.get("schemas").is_none(), "empty fields are not written");
    }
}
