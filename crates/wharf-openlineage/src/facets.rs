//! The facets Wharf writes: the standard ones it has facts for, and its own `wharf_model`.
//!
//! Each facet is a typed body plus the `_producer` / `_schemaURL` pair every facet carries;
//! [`Facet::to_value`] joins them. The `_schemaURL`s point at the exact facet schema versions
//! the bodies follow, so a receiver can validate each one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::PRODUCER;

/// Schema of the dataset `schema` facet.
pub const SCHEMA_DATASET_FACET: &str =
    "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet";
/// Schema of the dataset `dataSource` facet.
pub const DATASOURCE_DATASET_FACET: &str =
    "https://openlineage.io/spec/facets/1-0-1/DatasourceDatasetFacet.json#/$defs/DatasourceDatasetFacet";
/// Schema of the job `sourceCodeLocation` facet.
pub const SOURCE_CODE_LOCATION_JOB_FACET: &str =
    "https://openlineage.io/spec/facets/1-1-0/SourceCodeLocationJobFacet.json#/$defs/SourceCodeLocationJobFacet";
/// Schema of the job `jobType` facet.
pub const JOB_TYPE_JOB_FACET: &str =
    "https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet";
/// Schema of the run `parent` facet.
pub const PARENT_RUN_FACET: &str = "https://openlineage.io/spec/facets/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet";
/// Schema of the run `errorMessage` facet.
pub const ERROR_MESSAGE_RUN_FACET: &str =
    "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet";
/// Schema of the run `processing_engine` facet.
pub const PROCESSING_ENGINE_RUN_FACET: &str =
    "https://openlineage.io/spec/facets/1-1-1/ProcessingEngineRunFacet.json#/$defs/ProcessingEngineRunFacet";

/// `$id` of Wharf's own `wharf_model` run facet schema (the file
/// `crates/wharf-openlineage/schemas/WharfModelRunFacet.json`, published with the sources).
pub const WHARF_MODEL_FACET_ID: &str =
    "https://raw.githubusercontent.com/wharf-rs/wharf/main/crates/wharf-openlineage/schemas/WharfModelRunFacet.json";
/// `_schemaURL` of the `wharf_model` run facet.
pub const WHARF_MODEL_RUN_FACET: &str = concat!(
    "https://raw.githubusercontent.com/wharf-rs/wharf/main/crates/wharf-openlineage/schemas/WharfModelRunFacet.json",
    "#/$defs/WharfModelRunFacet"
);
/// The `wharf_model` facet's JSON Schema, for receivers that want to validate it.
pub const WHARF_MODEL_FACET_SCHEMA: &str = include_str!("../schemas/WharfModelRunFacet.json");

/// A facet body with the schema it follows.
pub trait Facet: Serialize {
    /// The `_schemaURL` of this facet.
    const SCHEMA_URL: &'static str;

    /// The facet as JSON with `_producer` and `_schemaURL` added.
    fn to_value(&self) -> serde_json::Value {
        // Serializing these plain structs cannot fail (string keys, no custom impls), but a
        // failure must not panic library code: it degrades to an empty body.
        let mut value = serde_json::to_value(self).unwrap_or_else(|_| serde_json::Value::Object(Default::default()));
        if let Some(map) = value.as_object_mut() {
            map.insert("_producer".into(), PRODUCER.into());
            map.insert("_schemaURL".into(), Self::SCHEMA_URL.into());
        }
        value
    }
}

/// One column of the `schema` dataset facet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaField {
    /// Column name.
    pub name: String,
    /// Column type.
    #[serde(rename = "type")]
    pub field_type: String,
    /// Free text about the column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Dataset `schema`: the columns of a dataset (for a model, its input features).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaDatasetFacet {
    /// The columns, in order.
    pub fields: Vec<SchemaField>,
}
impl Facet for SchemaDatasetFacet {
    const SCHEMA_URL: &'static str = SCHEMA_DATASET_FACET;
}

/// Dataset `dataSource`: the system a dataset lives in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasourceDatasetFacet {
    /// The source's name (Wharf uses the dataset namespace).
    pub name: String,
    /// A URI of the source, when the dataset name has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
}
impl Facet for DatasourceDatasetFacet {
    const SCHEMA_URL: &'static str = DATASOURCE_DATASET_FACET;
}

/// Job `sourceCodeLocation`: where the job's code lives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceCodeLocationJobFacet {
    /// The source control system (`git`).
    #[serde(rename = "type")]
    pub kind: String,
    /// A URL to the code.
    pub url: String,
    /// The exact version (a commit id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}
impl Facet for SourceCodeLocationJobFacet {
    const SCHEMA_URL: &'static str = SOURCE_CODE_LOCATION_JOB_FACET;
}

/// Job `jobType`: what kind of job this is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobTypeJobFacet {
    /// `BATCH` for Wharf's jobs (they end).
    pub processing_type: String,
    /// The integration that ran it (`WHARF`).
    pub integration: String,
    /// The integration's job kind (`JOB`).
    pub job_type: String,
}
impl Facet for JobTypeJobFacet {
    const SCHEMA_URL: &'static str = JOB_TYPE_JOB_FACET;
}

/// The run of a `parent` facet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParentRunRef {
    /// The parent run's id (a UUID).
    pub run_id: uuid::Uuid,
}

/// The job of a `parent` facet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParentJobRef {
    /// The parent job's namespace.
    pub namespace: String,
    /// The parent job's name.
    pub name: String,
}

/// Run `parent`: the run that started this one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParentRunFacet {
    /// The parent run.
    pub run: ParentRunRef,
    /// The parent job.
    pub job: ParentJobRef,
}
impl Facet for ParentRunFacet {
    const SCHEMA_URL: &'static str = PARENT_RUN_FACET;
}

/// Run `errorMessage`: why a run failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorMessageRunFacet {
    /// The error, as Wharf reports it.
    pub message: String,
    /// Always `RUST`.
    pub programming_language: String,
    /// The chain of causes, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_trace: Option<String>,
}
impl Facet for ErrorMessageRunFacet {
    const SCHEMA_URL: &'static str = ERROR_MESSAGE_RUN_FACET;
}

/// Run `processing_engine`: the engine that ran the job (Wharf and its version).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessingEngineRunFacet {
    /// Engine version.
    pub version: String,
    /// Engine name (`wharf`).
    pub name: String,
    /// Version of the code that wrote the event.
    pub openlineage_adapter_version: String,
}
impl Facet for ProcessingEngineRunFacet {
    const SCHEMA_URL: &'static str = PROCESSING_ENGINE_RUN_FACET;
}

/// Run `wharf_model`: the model a run trained or used, so a lineage tool can tie a
/// deployment to exact artifact bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WharfModelRunFacet {
    /// The registered model name.
    pub name: String,
    /// The registered version, once there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// SHA-256 of the artifact payload, lower-case hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The estimator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    /// Evaluation metrics (finite values only: JSON has no NaN).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, f64>,
}
impl Facet for WharfModelRunFacet {
    const SCHEMA_URL: &'static str = WHARF_MODEL_RUN_FACET;
}
