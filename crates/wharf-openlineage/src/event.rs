//! The OpenLineage 2-0-2 `RunEvent`, as serde types.
//!
//! Field names follow the spec (`eventType`, `runId`, `schemaURL`); facets are kept as JSON
//! objects keyed by facet name, because the spec lets any producer add its own facets and a
//! receiver must pass unknown ones through. The typed facets Wharf writes live in
//! [`crate::facets`].

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `schemaURL` of every RunEvent Wharf writes: the spec version the event follows.
pub const RUN_EVENT_SCHEMA_URL: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";

/// `producer` of every event and facet: the code that wrote it, as the spec asks (a URI
/// naming the producer and its version).
pub const PRODUCER: &str = concat!("https://github.com/wharf-rs/wharf/tree/v", env!("CARGO_PKG_VERSION"));

/// Facets by name (`schema`, `errorMessage`, `wharf_model`). Each is a JSON object with at
/// least `_producer` and `_schemaURL`.
pub type Facets = BTreeMap<String, serde_json::Value>;

/// The stage of a run an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventType {
    /// The run started.
    Start,
    /// The run is in progress.
    Running,
    /// The run completed.
    Complete,
    /// The run was stopped before its end.
    Abort,
    /// The run failed.
    Fail,
    /// Anything else.
    Other,
}

/// One OpenLineage run event: a job's run read inputs and wrote outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunEvent {
    /// The stage reported (optional in the spec; Wharf always sets it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<EventType>,
    /// When it happened; serialized as RFC 3339 with an offset (the spec's `date-time`
    /// rejects times without one).
    pub event_time: DateTime<FixedOffset>,
    /// The run.
    pub run: Run,
    /// The job the run belongs to.
    pub job: Job,
    /// Datasets read.
    #[serde(default)]
    pub inputs: Vec<InputDataset>,
    /// Datasets written.
    #[serde(default)]
    pub outputs: Vec<OutputDataset>,
    /// The code that wrote the event.
    pub producer: String,
    /// The spec version the event follows.
    #[serde(rename = "schemaURL")]
    pub schema_url: String,
}

/// The run of an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    /// The run's id: the same on every event of one run.
    pub run_id: Uuid,
    /// Run facets (`parent`, `errorMessage`, `wharf_model`, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub facets: Facets,
}

/// The job of an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The namespace jobs are grouped by.
    pub namespace: String,
    /// The job's name, unique in its namespace.
    pub name: String,
    /// Job facets (`jobType`, `sourceCodeLocation`, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub facets: Facets,
}

/// A dataset read by a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InputDataset {
    /// Where the dataset lives (`file`, `s3://bucket`, `registry`).
    pub namespace: String,
    /// Its name in that namespace.
    pub name: String,
    /// Dataset facets (`schema`, `dataSource`, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub facets: Facets,
    /// Facets about this read (statistics, quality).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub input_facets: Facets,
}

/// A dataset written by a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputDataset {
    /// Where the dataset lives.
    pub namespace: String,
    /// Its name in that namespace.
    pub name: String,
    /// Dataset facets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub facets: Facets,
    /// Facets about this write (row counts, sizes).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub output_facets: Facets,
}
