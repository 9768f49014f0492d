//! The shadow log: what a champion and a shadowed challenger answered to the same request.
//!
//! `wharf serve` writes it (one JSON line per request) and `wharf promote --from-shadow`
//! reads it, so the format lives here, between the two. A line holds both models' outputs
//! and latencies, never the request's features: the log's purpose is to compare the two
//! answers, and features would multiply its size (and may be personal data).
//!
//! Reading is streaming and bounded: a line longer than [`MAX_LINE_BYTES`] or one that is
//! not a record is an error naming the file and line, not a silently skipped row.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::jsonl::MAX_LINE_BYTES;
use crate::{jsonl, Predictions, Scored, WharfError};

/// Files of a log directory are named `shadow-<model>-<start>.jsonl`.
pub const FILE_PREFIX: &str = "shadow-";

/// One request, answered by the champion and scored by the challenger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowRecord {
    /// The request's `X-Request-Id` (the client's, or one the server made and echoed), by
    /// which labels that arrive later are joined.
    pub request_id: String,
    /// When the champion answered (RFC 3339, UTC).
    pub time: String,
    /// The served model's registered name.
    pub model: String,
    /// The class order of both models' probabilities; empty for a regressor.
    #[serde(default)]
    pub classes: Vec<String>,
    /// The champion's side: it answered the client.
    pub champion: ShadowSide,
    /// The challenger's side: scored after the answer, never seen by the client.
    pub challenger: ShadowSide,
}

/// What one model made of a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowSide {
    /// The version that scored.
    pub version: u64,
    /// Time spent scoring, in microseconds (the scoring call alone, not the HTTP exchange).
    pub latency_us: u64,
    /// One prediction per row: a class label or a number; empty when scoring failed.
    #[serde(default)]
    pub predictions: Vec<Value>,
    /// One row of class probabilities per row, in [`ShadowRecord::classes`] order (`null`
    /// for a value JSON cannot hold); absent for a regressor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probabilities: Option<Vec<Vec<Option<f64>>>>,
    /// Why scoring failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ShadowSide {
    /// The side of a model that scored `scored` in `latency_us`.
    pub fn scored(version: u64, latency_us: u64, scored: &Scored) -> Self {
        let predictions = (0..scored.predictions.len()).map(|i| scored.predictions.to_json(i)).collect();
        let probabilities = scored.probabilities.as_ref().map(|p| {
            p.values.rows().into_iter().map(|r| r.iter().map(|v| v.is_finite().then_some(*v)).collect()).collect()
        });
        ShadowSide { version, latency_us, predictions, probabilities, error: None }
    }

    /// The side of a model whose scoring failed with `error`.
    pub fn failed(version: u64, latency_us: u64, error: &WharfError) -> Self {
        ShadowSide { version, latency_us, predictions: Vec::new(), probabilities: None, error: Some(error.to_string()) }
    }

    /// Row `i`'s prediction as a number (a regressor's value), if it is one.
    pub fn value(&self, i: usize) -> Option<f64> {
        self.predictions.get(i).and_then(Value::as_f64)
    }
}

/// The class of a scored batch's predictions, for [`ShadowRecord::classes`].
pub fn classes_of(scored: &Scored) -> Vec<String> {
    match (&scored.probabilities, &scored.predictions) {
        (Some(p), _) => p.classes.clone(),
        (None, Predictions::Classes { classes, .. }) => classes.clone(),
        _ => Vec::new(),
    }
}

/// The log files at `path`: the file itself, or every `shadow-*.jsonl` of a directory in
/// name order (which is start order within one model).
pub fn files(path: &Path) -> Result<Vec<PathBuf>, WharfError> {
    jsonl::files(path, FILE_PREFIX, "`wharf serve --shadow` wrote")
}

/// Calls `each` with every record of the log at `path` (a file or a directory), in order.
/// Memory is one line at a time.
///
/// # Errors
/// An unreadable file, a line over [`MAX_LINE_BYTES`] or one that is not a record (named by
/// file and line), or the first error `each` returns.
pub fn for_each_record(
    path: &Path,
    each: impl FnMut(ShadowRecord) -> Result<(), WharfError>,
) -> Result<(), WharfError> {
    jsonl::for_each(&files(path)?, "shadow log record", each)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> ShadowRecord {
        let side = |v| ShadowSide {
            version: v,
            latency_us: 10,
            predictions: vec!["yes".into()],
            probabilities: Some(vec![vec![Some(0.2), Some(0.8)]]),
            error: None,
        };
        ShadowRecord {
            request_id: id.into(),
            time: "2026-12-04T00:00:00Z".into(),
            model: "lead".into(),
            classes: vec!["no".into(), "yes".into()],
            champion: side(1),
            challenger: side(2),
        }
    }

    #[test]
    fn records_round_trip_through_a_directory_and_a_torn_last_line_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let line = |id| serde_json::to_string(&record(id)).unwrap();
        std::fs::write(dir.path().join("shadow-lead-1.jsonl"), format!("{}\n\n{}\n", line("a"), line("b"))).unwrap();
        let torn = line("d");
        std::fs::write(dir.path().join("shadow-lead-2.jsonl"), format!("{}\n{}", line("c"), &torn[..20])).unwrap();
        std::fs::write(dir.path().join("other.jsonl"), "not a log\n").unwrap();
        let mut ids = Vec::new();
        for_each_record(dir.path(), |r| {
            ids.push(r.request_id);
            Ok(())
        })
        .unwrap();
        assert_eq!(ids, ["a", "b", "c"]);
    }

    #[test]
    fn a_bad_line_is_an_error_naming_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("log.jsonl");
        std::fs::write(&file, format!("{}\n{{\"oops\": 1}}\n", serde_json::to_string(&record("a")).unwrap())).unwrap();
        let err = for_each_record(&file, |_| Ok(())).unwrap_err().to_string();
        assert!(err.contains("log.jsonl:2") && err.contains("not a shadow log record"), "{err}");
        let empty = tempfile::tempdir().unwrap();
        let err = for_each_record(empty.path(), |_| Ok(())).unwrap_err().to_string();
        assert!(err.contains("no shadow-*.jsonl files"), "{err}");
    }
}
