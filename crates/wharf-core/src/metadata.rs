//! What is known about a model besides its parameters: the metadata every artifact carries,
//! whatever its kind.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::records::Row;
use crate::signature::Signature;

/// Everything known about a model besides its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMetadata {
    /// Inputs, task and classes.
    pub signature: Signature,
    /// The algorithm: `logistic`, `linear`, `tree`, `random-forest` or `kmeans` for the
    /// built-in estimators; a kind of its own names its own.
    pub algorithm: String,
    /// Training parameters, as text.
    pub params: BTreeMap<String, String>,
    /// Evaluation metrics (holdout metrics when the trainer had a holdout).
    pub metrics: BTreeMap<String, f64>,
    /// Free-form tags.
    pub tags: BTreeMap<String, String>,
    /// When the model was fitted.
    pub created_at: DateTime<Utc>,
    /// SHA-256 of the training data (`wharf_ml::Dataset::fingerprint`).
    pub data_fingerprint: String,
    /// The training data's name.
    pub data_source: String,
    /// Versions of wharf and the learning libraries that produced the model.
    pub library_versions: BTreeMap<String, String>,
    /// A few training rows (features only): a real input that readiness probes and smoke
    /// tests can predict without the caller inventing one. Stored as JSON text because the
    /// artifact codec cannot carry self-describing JSON values.
    #[serde(with = "rows_as_json")]
    pub sample_input: Vec<Row>,
}

/// Serialises rows as one JSON string, so non-self-describing codecs can carry them.
mod rows_as_json {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::records::Row;

    pub(super) fn serialize<S: Serializer>(rows: &[Row], s: S) -> Result<S::Ok, S::Error> {
        let text = serde_json::to_string(rows).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Row>, D::Error> {
        let text = String::deserialize(d)?;
        serde_json::from_str(&text).map_err(serde::de::Error::custom)
    }
}
