//! Records in, results out: what one run produces for one record.
//!
//! A result is stored as JSON. Each model's entry is `{"status": "active", "value": {…}}` or
//! `{"status": "active", "error": {"kind": "…", "message": "…"}}`, rather than the runner's
//! keys mixed into the model's output: kept apart, an output field can never collide with
//! them.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use wharf_core::{json_type, Row, WharfError};

use crate::ident::{DepRef, Status};

/// One input record: an id and the data the models read.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The record's identity in the store. Results for the same id form its history.
    pub id: String,
    /// The data: `data[name][version]` is a model's input slice (see
    /// [`InputSource`](crate::InputSource)).
    pub data: Row,
}

impl Record {
    /// A record with `id` and `data`.
    pub fn new(id: impl Into<String>, data: Row) -> Self {
        Record { id: id.into(), data }
    }

    /// Reads a record from a JSON object such as one line of a JSON-lines file: the id is
    /// `object[id_field]` (a string or a number; a number is written as text) and the data
    /// is `object[data_field]`, which must be an object.
    pub fn from_json(value: Value, id_field: &str, data_field: &str) -> Result<Record, WharfError> {
        let Value::Object(mut object) = value else {
            return Err(WharfError::invalid("record", format!("expected a JSON object, found {}", json_type(&value))));
        };
        let id = match object.get(id_field) {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(other) => {
                return Err(WharfError::invalid(
                    id_field,
                    format!("the id must be a non-empty string or a number, found {}", json_type(other)),
                ))
            }
            None => return Err(WharfError::invalid(id_field, "no id field")),
        };
        let data = match object.remove(data_field) {
            Some(Value::Object(data)) => data,
            Some(other) => {
                return Err(WharfError::invalid(
                    format!("{data_field} (record {id})"),
                    format!("expected an object, found {}", json_type(&other)),
                ))
            }
            None => return Err(WharfError::invalid(format!("{data_field} (record {id})"), "no data object")),
        };
        Ok(Record { id, data })
    }
}

/// Why a model or summary has no value for a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The record has no input for the model (`data[name][version]` is absent or not an
    /// object). An error for this record only: the rest of the batch still runs.
    MissingInput,
    /// A required input field is absent or `null`; the model was not called.
    MissingField,
    /// An input field has the wrong type or is outside its range or levels; the model was
    /// not called.
    InvalidField,
    /// The model (or summary) function returned an error or panicked.
    ModelFailed,
    /// The function returned something other than a JSON object.
    InvalidOutput,
    /// A summary's dependency has no result for the record (not configured, or a skipped
    /// draft). An error for this record only, so one incomplete record does not cost the
    /// batch.
    DependencyMissing,
    /// A summary's dependency has an error result, so the summary was not computed.
    DependencyFailed,
    /// A kind this build does not know (read back from a store written by a newer one).
    #[serde(other)]
    Other,
}

impl ErrorKind {
    /// The snake_case name stored with the error.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::MissingInput => "missing_input",
            ErrorKind::MissingField => "missing_field",
            ErrorKind::InvalidField => "invalid_field",
            ErrorKind::ModelFailed => "model_failed",
            ErrorKind::InvalidOutput => "invalid_output",
            ErrorKind::DependencyMissing => "dependency_missing",
            ErrorKind::DependencyFailed => "dependency_failed",
            ErrorKind::Other => "other",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A model's error for one record: what kind, where (a field name, or the dependency as
/// `name@version`), and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// The field or dependency at fault, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// What went wrong, in words.
    pub message: String,
}

impl RunError {
    /// An error of `kind` at `at`.
    pub fn new(kind: ErrorKind, at: Option<String>, message: impl Into<String>) -> Self {
        RunError { kind, at, message: message.into() }
    }
    pub(crate) fn missing_input(path: String) -> Self {
        let message = format!("no input object at {path}");
        Self::new(ErrorKind::MissingInput, Some(path), message)
    }
    pub(crate) fn missing_field(field: &str, message: String) -> Self {
        Self::new(ErrorKind::MissingField, Some(field.to_string()), message)
    }
    pub(crate) fn invalid_field(field: &str, message: String) -> Self {
        Self::new(ErrorKind::InvalidField, Some(field.to_string()), message)
    }
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ModelFailed, None, message)
    }
    pub(crate) fn invalid_output(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidOutput, None, message)
    }
    pub(crate) fn dependency_missing(dep: &DepRef, why: &str) -> Self {
        Self::new(
            ErrorKind::DependencyMissing,
            Some(dep.to_string()),
            format!("expected model '{}' version '{}' results not found{why}", dep.name, dep.version),
        )
    }
    pub(crate) fn dependency_failed(dep: &DepRef, cause: &RunError) -> Self {
        Self::new(
            ErrorKind::DependencyFailed,
            Some(dep.to_string()),
            format!("dependency {dep} failed ({}): {}", cause.kind, cause.message),
        )
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for RunError {}

/// A model's value or error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The model's output, a JSON object.
    Value(Map<String, Value>),
    /// Why there is no output.
    Error(RunError),
}

/// One model's result for one record, with the model's status at run time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelResult {
    /// The model's status when it ran, kept so a draft's result is never mistaken for a
    /// production one.
    pub status: Status,
    /// Its value or error.
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl ModelResult {
    /// A value.
    pub fn ok(status: Status, value: Map<String, Value>) -> Self {
        ModelResult { status, outcome: Outcome::Value(value) }
    }
    /// An error.
    pub fn error(status: Status, error: RunError) -> Self {
        ModelResult { status, outcome: Outcome::Error(error) }
    }
    /// The output, if the model succeeded.
    pub fn value(&self) -> Option<&Map<String, Value>> {
        match &self.outcome {
            Outcome::Value(v) => Some(v),
            Outcome::Error(_) => None,
        }
    }
    /// The error, if the model failed.
    pub fn error_ref(&self) -> Option<&RunError> {
        match &self.outcome {
            Outcome::Value(_) => None,
            Outcome::Error(e) => Some(e),
        }
    }
    /// True when the model succeeded.
    pub fn is_ok(&self) -> bool {
        matches!(self.outcome, Outcome::Value(_))
    }
    /// The output or the error.
    pub fn into_result(self) -> Result<Map<String, Value>, RunError> {
        match self.outcome {
            Outcome::Value(v) => Ok(v),
            Outcome::Error(e) => Err(e),
        }
    }
}

/// A record's results, `results[name][version]`: every model's and summary's.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Results(BTreeMap<String, BTreeMap<String, ModelResult>>);

impl Results {
    /// No results.
    pub fn new() -> Self {
        Self::default()
    }
    /// The result of `name@version`.
    pub fn get(&self, name: &str, version: &str) -> Option<&ModelResult> {
        self.0.get(name).and_then(|v| v.get(version))
    }
    /// Every version's result of `name`.
    pub fn versions(&self, name: &str) -> Option<&BTreeMap<String, ModelResult>> {
        self.0.get(name)
    }
    /// Sets the result of `name@version`, replacing any earlier one of that exact pair
    /// (other versions of `name` are kept).
    pub fn insert(&mut self, name: &str, version: &str, result: ModelResult) {
        self.0.entry(name.to_string()).or_default().insert(version.to_string(), result);
    }
    /// Every result as `(name, version, result)`, sorted by name then version.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &ModelResult)> {
        self.0.iter().flat_map(|(n, vs)| vs.iter().map(move |(v, r)| (n.as_str(), v.as_str(), r)))
    }
    /// The number of results.
    pub fn len(&self) -> usize {
        self.0.values().map(BTreeMap::len).sum()
    }
    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The number of error results.
    pub fn error_count(&self) -> usize {
        self.iter().filter(|(_, _, r)| !r.is_ok()).count()
    }
    /// The results as the JSON document stores keep.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
    /// Reads the JSON document back. `what` names the document in the error.
    pub fn from_json(value: Value, what: &str) -> Result<Results, WharfError> {
        serde_json::from_value(value).map_err(|e| WharfError::invalid(what, format!("not a results document: {e}")))
    }
}

/// What a run produced for one record: its id, every result, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordResult {
    /// The record's id.
    pub id: String,
    /// `results[name][version]`.
    pub results: Results,
    /// When the results were computed (microsecond precision, which every store keeps
    /// exactly).
    pub timestamp: DateTime<Utc>,
}

impl RecordResult {
    /// True when no model or summary failed for the record.
    pub fn is_ok(&self) -> bool {
        self.results.error_count() == 0
    }
}

/// Counts of values and errors per model over a run, for summaries and tables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Records seen.
    pub records: usize,
    /// Records with no error result.
    pub records_ok: usize,
    /// `name@version` → `(values, errors)`.
    pub per_model: BTreeMap<DepRef, (usize, usize)>,
}

impl Tally {
    /// Adds a batch's results.
    pub fn add(&mut self, batch: &[RecordResult]) {
        for record in batch {
            self.records += 1;
            if record.is_ok() {
                self.records_ok += 1;
            }
            for (name, version, result) in record.results.iter() {
                let slot = self.per_model.entry(DepRef::new(name, version)).or_default();
                if result.is_ok() {
                    slot.0 += 1;
                } else {
                    slot.1 += 1;
                }
            }
        }
    }
}
