//! From Wharf's [`LineageEvent`] to an OpenLineage [`RunEvent`].
//!
//! Wharf names datasets with short URI-like strings; OpenLineage wants a (namespace, name)
//! pair. The rule, following OpenLineage's naming conventions:
//!
//! | Wharf dataset             | namespace       | name              |
//! |---------------------------|-----------------|-------------------|
//! | `bundled:lead_scoring`    | `bundled`       | `lead_scoring`    |
//! | `file:data/x.csv`         | `file`          | `data/x.csv`      |
//! | `registry:lead/3`         | `registry`      | `lead/3`          |
//! | `s3://bucket/path/x.csv`  | `s3://bucket`   | `path/x.csv`      |
//! | `leads` (no scheme)       | the job namespace | `leads`         |

use wharf_core::ports::lineage::validate_event;
use wharf_core::{LineageEvent, LineageEventType, Result};

use crate::event::{
    EventType, Facets, InputDataset, Job, OutputDataset, Run, RunEvent, PRODUCER, RUN_EVENT_SCHEMA_URL,
};
use crate::facets::{
    DatasourceDatasetFacet, ErrorMessageRunFacet, Facet, JobTypeJobFacet, ParentJobRef, ParentRunFacet, ParentRunRef,
    ProcessingEngineRunFacet, SchemaDatasetFacet, SchemaField, SourceCodeLocationJobFacet, WharfModelRunFacet,
};

/// Maps `event` onto a RunEvent whose job lives in `namespace`.
///
/// Run ids that are not UUIDs (a caller may set any string) map to a stable UUID derived
/// from the string, so every event of that run still carries the same `runId`.
pub fn to_run_event(event: &LineageEvent, namespace: &str) -> Result<RunEvent> {
    validate_event(event)?;
    let event_type = match event.event_type {
        LineageEventType::Start => EventType::Start,
        LineageEventType::Running => EventType::Running,
        LineageEventType::Complete => EventType::Complete,
        LineageEventType::Abort => EventType::Abort,
        LineageEventType::Fail => EventType::Fail,
        LineageEventType::Other => EventType::Other,
    };

    let mut job_facets = Facets::new();
    job_facets.insert(
        "jobType".into(),
        JobTypeJobFacet { processing_type: "BATCH".into(), integration: "WHARF".into(), job_type: "JOB".into() }
            .to_value(),
    );
    if let Some(source) = &event.source {
        job_facets.insert(
            "sourceCodeLocation".into(),
            SourceCodeLocationJobFacet {
                kind: source.kind.clone(),
                url: source.url.clone(),
                version: source.version.clone(),
            }
            .to_value(),
        );
    }

    let mut run_facets = Facets::new();
    run_facets.insert(
        "processing_engine".into(),
        ProcessingEngineRunFacet {
            version: env!("CARGO_PKG_VERSION").into(),
            name: "wharf".into(),
            openlineage_adapter_version: env!("CARGO_PKG_VERSION").into(),
        }
        .to_value(),
    );
    if let Some(parent) = &event.parent {
        run_facets.insert(
            "parent".into(),
            ParentRunFacet {
                run: ParentRunRef { run_id: run_uuid(&parent.run_id) },
                job: ParentJobRef { namespace: namespace.to_string(), name: parent.job.clone() },
            }
            .to_value(),
        );
    }
    if event.event_type == LineageEventType::Fail {
        run_facets.insert("errorMessage".into(), error_facet(event).to_value());
    }
    if let Some(model) = &event.model {
        run_facets.insert(
            "wharf_model".into(),
            WharfModelRunFacet {
                name: model.name.clone(),
                version: model.version,
                sha256: model.sha256.clone(),
                algorithm: model.algorithm.clone(),
                // JSON has no NaN or infinity; such a metric says nothing a reader could use.
                metrics: model.metrics.iter().filter(|(_, v)| v.is_finite()).map(|(k, v)| (k.clone(), *v)).collect(),
            }
            .to_value(),
        );
    }

    let inputs = event
        .inputs
        .iter()
        .map(|d| {
            let (namespace, name, facets) = dataset(d, namespace, event);
            InputDataset { namespace, name, facets, input_facets: Facets::new() }
        })
        .collect();
    let outputs = event
        .outputs
        .iter()
        .map(|d| {
            let (namespace, name, facets) = dataset(d, namespace, event);
            OutputDataset { namespace, name, facets, output_facets: Facets::new() }
        })
        .collect();

    Ok(RunEvent {
        event_type: Some(event_type),
        event_time: event.event_time.fixed_offset(),
        run: Run { run_id: run_uuid(&event.run_id), facets: run_facets },
        job: Job { namespace: namespace.to_string(), name: event.name.clone(), facets: job_facets },
        inputs,
        outputs,
        producer: PRODUCER.into(),
        schema_url: RUN_EVENT_SCHEMA_URL.into(),
    })
}

/// The `errorMessage` facet of a FAIL event: Wharf jobs put the error in `metadata.error`.
fn error_facet(event: &LineageEvent) -> ErrorMessageRunFacet {
    let message = match event.metadata.get("error") {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(other) if !other.is_null() => other.to_string(),
        _ => "the job failed (no error message was recorded)".to_string(),
    };
    let stack_trace = match event.metadata.get("error_chain") {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        _ => None,
    };
    ErrorMessageRunFacet { message, programming_language: "RUST".into(), stack_trace }
}

/// Splits a Wharf dataset string into (namespace, name) and builds its facets.
fn dataset(raw: &str, job_namespace: &str, event: &LineageEvent) -> (String, String, Facets) {
    let (namespace, name) = dataset_name(raw, job_namespace);
    let mut facets = Facets::new();
    let uri = raw.contains("://").then(|| url::Url::parse(raw).ok()).flatten().map(|u| u.to_string());
    facets.insert("dataSource".into(), DatasourceDatasetFacet { name: namespace.clone(), uri }.to_value());
    if let Some(fields) = event.schemas.get(raw) {
        let fields = fields
            .iter()
            .map(|f| SchemaField {
                name: f.name.clone(),
                field_type: f.field_type.clone(),
                description: f.description.clone(),
            })
            .collect();
        facets.insert("schema".into(), SchemaDatasetFacet { fields }.to_value());
    }
    (namespace, name, facets)
}

/// The (namespace, name) of a Wharf dataset string (see the module docs for the table).
pub fn dataset_name(raw: &str, default_namespace: &str) -> (String, String) {
    if let Some((scheme, rest)) = raw.split_once("://") {
        if is_scheme(scheme) {
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            let name = if path.is_empty() { "/".to_string() } else { path.to_string() };
            return (format!("{scheme}://{authority}"), name);
        }
    }
    if let Some((scheme, rest)) = raw.split_once(':') {
        // One-letter schemes are Windows drive letters (`C:\data.csv`), not namespaces.
        if scheme.len() > 1 && is_scheme(scheme) && !rest.is_empty() {
            return (scheme.to_string(), rest.to_string());
        }
    }
    (default_namespace.to_string(), raw.to_string())
}

/// RFC 3986 scheme syntax: a letter, then letters, digits, `+`, `-` or `.`.
fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// The run id as a UUID: parsed when it is one, otherwise a stable UUID (version 8, the
/// "custom" layout) hashed from the string, so events of one run still match.
pub fn run_uuid(run_id: &str) -> uuid::Uuid {
    if let Ok(id) = uuid::Uuid::parse_str(run_id) {
        return id;
    }
    // Two FNV-1a passes with different offsets give 128 stable bits; collision resistance
    // against an adversary is not needed for run correlation.
    let fnv = |offset: u64| run_id.bytes().fold(offset, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3));
    let mut bits = (u128::from(fnv(0xcbf2_9ce4_8422_2325)) << 64) | u128::from(fnv(0x6c62_272e_07bb_0142));
    bits = (bits & !(0xF_u128 << 76)) | (0x8_u128 << 76); // version 8
    bits = (bits & !(0x3_u128 << 62)) | (0x2_u128 << 62); // RFC 4122 variant
    uuid::Uuid::from_u128(bits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wharf_core::{ModelFacts, SourceLocation};

    #[test]
    fn dataset_strings_split_into_namespace_and_name() {
        assert_eq!(dataset_name("bundled:lead_scoring", "ns"), ("bundled".into(), "lead_scoring".into()));
        assert_eq!(dataset_name("file:data/x.csv", "ns"), ("file".into(), "data/x.csv".into()));
        assert_eq!(dataset_name("registry:lead/3", "ns"), ("registry".into(), "lead/3".into()));
        assert_eq!(dataset_name("s3://bucket/a/b.csv", "ns"), ("s3://bucket".into(), "a/b.csv".into()));
        assert_eq!(dataset_name("s3://bucket", "ns"), ("s3://bucket".into(), "/".into()));
        assert_eq!(dataset_name("leads", "ns"), ("ns".into(), "leads".into()));
        assert_eq!(dataset_name(r"C:\data.csv", "ns"), ("ns".into(), r"C:\data.csv".into()));
        assert_eq!(dataset_name("odd:", "ns"), ("ns".into(), "odd:".into()));
    }

    #[test]
    fn run_ids_become_stable_uuids() {
        let v7 = uuid::Uuid::now_v7();
        assert_eq!(run_uuid(&v7.to_string()), v7);
        let a = run_uuid("run-42");
        assert_eq!(a, run_uuid("run-42"));
        assert_ne!(a, run_uuid("run-43"));
        assert_eq!(a.get_version_num(), 8);
        assert_eq!(a.get_variant(), uuid::Variant::RFC4122);
    }

    #[test]
    fn an_event_maps_with_its_facets() {
        let event = LineageEvent::new("train-lead")
            .event_type(LineageEventType::Fail)
            .input("bundled:lead_scoring")
            .output("registry:lead/1")
            .schema(
                "registry:lead/1",
                vec![wharf_core::SchemaField { name: "age".into(), field_type: "DOUBLE".into(), description: None }],
            )
            .model(ModelFacts {
                name: "lead".into(),
                version: Some(1),
                sha256: None,
                algorithm: None,
                metrics: [("accuracy".to_string(), 0.9), ("nan".to_string(), f64::NAN)].into_iter().collect(),
            })
            .parent("pipeline", "p-1")
            .source(SourceLocation { kind: "git".into(), url: "https://example.com/repo".into(), version: None })
            .meta("error", "boom");
        let run = to_run_event(&event, "wharf").expect("maps");
        assert_eq!(run.event_type, Some(EventType::Fail));
        assert_eq!(run.run.run_id.to_string(), event.run_id);
        assert_eq!(run.run.facets["errorMessage"]["message"], "boom");
        assert_eq!(run.run.facets["errorMessage"]["programmingLanguage"], "RUST");
        assert_eq!(run.run.facets["wharf_model"]["metrics"], serde_json::json!({"accuracy": 0.9}));
        assert_eq!(run.run.facets["parent"]["job"]["name"], "pipeline");
        assert_eq!(run.job.facets["sourceCodeLocation"]["type"], "git");
        assert_eq!(run.outputs[0].facets["schema"]["fields"][0]["name"], "age");
        assert!(!run.inputs[0].facets.contains_key("schema"));
        let json = serde_json::to_value(&run).expect("json");
        assert_eq!(json["schemaURL"], RUN_EVENT_SCHEMA_URL);
        assert!(json["eventTime"].as_str().is_some_and(|t| t.ends_with("+00:00") || t.ends_with('Z')));
        let back: RunEvent = serde_json::from_value(json).expect("round trip");
        assert_eq!(back, run);
    }

    #[test]
    fn an_event_without_a_name_is_invalid_input() {
        assert!(matches!(
            to_run_event(&LineageEvent::new(" "), "wharf"),
            Err(wharf_core::WharfError::InvalidInput { .. })
        ));
    }
}
