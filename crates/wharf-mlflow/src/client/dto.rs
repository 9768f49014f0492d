//! The request and answer shapes of MLflow's REST API, as a real 3.x server sends them:
//! every list is `#[serde(default)]` (empty lists are omitted) and metric values may be the
//! strings `"NaN"`/`"Infinity"`.

use serde::{Deserialize, Serialize};

/// A `{key, value}` pair (tags and params).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    /// Key.
    pub key: String,
    /// Value.
    #[serde(default)]
    pub value: String,
}

impl KeyValue {
    /// A pair.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        KeyValue { key: key.into(), value: value.into() }
    }
}

/// An experiment.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Experiment {
    /// Id (a string of digits).
    pub experiment_id: String,
    /// Name.
    pub name: String,
    /// Where its runs' artifacts go (`mlflow-artifacts:/1`).
    #[serde(default)]
    pub artifact_location: String,
    /// `active` or `deleted`.
    #[serde(default)]
    pub lifecycle_stage: String,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<KeyValue>,
}

/// A run's identity and state.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RunMeta {
    /// Run id (32 hex characters).
    pub run_id: String,
    /// Experiment id.
    #[serde(default)]
    pub experiment_id: String,
    /// Run name.
    #[serde(default)]
    pub run_name: String,
    /// `RUNNING`, `SCHEDULED`, `FINISHED`, `FAILED` or `KILLED`.
    #[serde(default)]
    pub status: String,
    /// Start, in ms since the epoch.
    #[serde(default)]
    pub start_time: i64,
    /// End, in ms since the epoch.
    #[serde(default)]
    pub end_time: Option<i64>,
    /// Root of the run's artifacts (`mlflow-artifacts:/1/<run>/artifacts`).
    #[serde(default)]
    pub artifact_uri: String,
    /// `active` or `deleted`.
    #[serde(default)]
    pub lifecycle_stage: String,
}

/// A run's logged data (metrics: latest value per key only).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct RunData {
    /// Latest value of each metric.
    #[serde(default)]
    pub metrics: Vec<Metric>,
    /// Params.
    #[serde(default)]
    pub params: Vec<KeyValue>,
    /// Tags (including MLflow's `mlflow.*` system tags).
    #[serde(default)]
    pub tags: Vec<KeyValue>,
}

/// A run.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Run {
    /// Identity and state.
    pub info: RunMeta,
    /// Logged data.
    #[serde(default)]
    pub data: RunData,
    /// Datasets the run read.
    #[serde(default)]
    pub inputs: RunInputs,
}

/// A run's inputs.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct RunInputs {
    /// Its dataset inputs.
    #[serde(default)]
    pub dataset_inputs: Vec<DatasetInputEntry>,
}

/// One dataset input of a run: the dataset and the input's tags (`mlflow.data.context`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetInputEntry {
    /// Tags of the input.
    #[serde(default)]
    pub tags: Vec<KeyValue>,
    /// The dataset.
    pub dataset: DatasetEntry,
}

/// A dataset as MLflow records it; `source` and `profile` are JSON text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetEntry {
    /// Name.
    pub name: String,
    /// Content digest.
    pub digest: String,
    /// `local`, `http`, `s3`, …
    pub source_type: String,
    /// Where it lives, as JSON text (`{"uri": "…"}` for `local`).
    pub source: String,
    /// Summary statistics as JSON text (`{"num_rows": 1200}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// One metric point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// Name.
    pub key: String,
    /// Value; NaN and infinities travel as strings (see [`mlflow_f64`]).
    #[serde(with = "mlflow_f64")]
    pub value: f64,
    /// When, in ms since the epoch (MLflow requires it).
    pub timestamp: i64,
    /// Step.
    #[serde(default)]
    pub step: i64,
}

/// A file or directory in an artifact listing.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FileInfo {
    /// Path relative to the listed directory.
    pub path: String,
    /// Whether it is a directory.
    #[serde(default)]
    pub is_dir: bool,
    /// Size in bytes (files only).
    #[serde(default)]
    pub file_size: Option<i64>,
}

/// An alias of a registered model.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AliasEntry {
    /// Alias name.
    pub alias: String,
    /// Version number as text.
    pub version: String,
}

/// A registered model.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RegisteredModelEntry {
    /// Name.
    pub name: String,
    /// Created, in ms since the epoch.
    #[serde(default)]
    pub creation_timestamp: i64,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<KeyValue>,
    /// Aliases (only in `registered-models/get`).
    #[serde(default)]
    pub aliases: Vec<AliasEntry>,
}

/// A model version.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ModelVersionEntry {
    /// Registered model name.
    pub name: String,
    /// Version number as text.
    pub version: String,
    /// Created, in ms since the epoch.
    #[serde(default)]
    pub creation_timestamp: i64,
    /// Where the version's files are (`mlflow-artifacts:/…` or `runs:/…`).
    #[serde(default)]
    pub source: String,
    /// The run that produced it.
    #[serde(default)]
    pub run_id: Option<String>,
    /// `READY`, `PENDING_REGISTRATION` or `FAILED_REGISTRATION`.
    #[serde(default)]
    pub status: String,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<KeyValue>,
    /// Aliases (in `model-versions/get` and get-by-alias; not in searches).
    #[serde(default)]
    pub aliases: Vec<String>,
}

impl ModelVersionEntry {
    /// The value of tag `key`.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.iter().find(|t| t.key == key).map(|t| t.value.as_str())
    }
}

/// MLflow's run status enum. Typed because the server ignores unknown values with a 200.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum MlflowRunStatus {
    /// Running.
    Running,
    /// Scheduled.
    Scheduled,
    /// Finished.
    Finished,
    /// Failed.
    Failed,
    /// Killed.
    Killed,
}

/// (De)serializes metric values the way MLflow writes them: numbers, or the strings `"NaN"`,
/// `"Infinity"` and `"-Infinity"` (JSON has no NaN, and serde_json would write `null`,
/// which MLflow rejects).
pub mod mlflow_f64 {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes a number, or a string for non-finite values.
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_nan() {
            s.serialize_str("NaN")
        } else if v.is_infinite() {
            s.serialize_str(if *v > 0.0 { "Infinity" } else { "-Infinity" })
        } else {
            s.serialize_f64(*v)
        }
    }

    /// Reads a number or one of the strings MLflow uses.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(f64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(n),
            Raw::S(s) => match s.as_str() {
                "NaN" | "nan" => Ok(f64::NAN),
                "Infinity" | "inf" => Ok(f64::INFINITY),
                "-Infinity" | "-inf" => Ok(f64::NEG_INFINITY),
                other => other.parse().map_err(|_| serde::de::Error::custom(format!("not a metric value: '{other}'"))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_values_round_trip_including_non_finite() {
        for v in [1.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let m = Metric { key: "k".into(), value: v, timestamp: 1, step: 2 };
            let text = serde_json::to_string(&m).unwrap();
            let back: Metric = serde_json::from_str(&text).unwrap();
            assert!(back.value == v || (v.is_nan() && back.value.is_nan()), "{text}");
        }
        let m: Metric = serde_json::from_str(r#"{"key":"k","value":"NaN","timestamp":1}"#).unwrap();
        assert!(m.value.is_nan());
        assert_eq!(m.step, 0, "a missing step is 0");
    }

    #[test]
    fn lists_may_be_absent() {
        let run: Run = serde_json::from_str(r#"{"info":{"run_id":"r"}}"#).unwrap();
        assert!(run.data.metrics.is_empty() && run.data.tags.is_empty());
    }
}
