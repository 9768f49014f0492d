//! JSON Schemas generated from a model's signature, and the OpenAPI document.
//!
//! The schemas say exactly what the server accepts, so a client can validate before it
//! sends: numeric features are numbers (or `null`, imputed with the training mean),
//! categorical features one of their training levels, every feature required and nothing
//! else allowed.

use serde_json::{json, Map, Value};
use wharf_core::{FeatureKind, Signature, Task};

const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// The schema of one record: an object with exactly the signature's features.
pub fn record_schema(signature: &Signature, with_target: bool) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for feature in &signature.features {
        properties.insert(feature.name.clone(), feature_schema(&feature.kind));
        required.push(Value::String(feature.name.clone()));
    }
    if with_target {
        if let Some(target) = &signature.target {
            let schema = match signature.task {
                Task::Classification => json!({"enum": signature.classes}),
                _ => json!({"type": "number"}),
            };
            properties.insert(target.clone(), schema);
            required.push(Value::String(target.clone()));
        }
    }
    json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
}

fn feature_schema(kind: &FeatureKind) -> Value {
    match kind {
        FeatureKind::Numeric => json!({"type": ["number", "null"]}),
        FeatureKind::Categorical { levels } => {
            let mut values: Vec<Value> = levels.iter().cloned().map(Value::String).collect();
            values.push(Value::Null);
            json!({"enum": values})
        }
        // A feature type added later: any value here; the model checks it on predict.
        _ => json!({}),
    }
}

/// The predict body: `{"records": [...]}` or `{"instances": [[...]]}`.
pub fn predict_schema(name: &str, signature: &Signature) -> Value {
    let n = signature.features.len();
    let cells: Vec<Value> = signature.features.iter().map(|f| feature_schema(&f.kind)).collect();
    json!({
        "$schema": DIALECT,
        "title": format!("{name} predict input"),
        "type": "object",
        "properties": {
            "records": {"type": "array", "minItems": 1, "items": record_schema(signature, false)},
            "instances": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "array", "prefixItems": cells, "minItems": n, "maxItems": n},
            },
        },
        "oneOf": [{"required": ["records"]}, {"required": ["instances"]}],
        "additionalProperties": false,
    })
}

/// The score body: `{"records": [...]}` whose records also carry the target.
pub fn score_schema(name: &str, signature: &Signature) -> Value {
    json!({
        "$schema": DIALECT,
        "title": format!("{name} score input"),
        "type": "object",
        "properties": {
            "records": {"type": "array", "minItems": 1, "items": record_schema(signature, true)},
        },
        "required": ["records"],
        "additionalProperties": false,
    })
}

/// Strips `$schema`, which OpenAPI component schemas do not carry.
fn component(mut schema: Value) -> Value {
    if let Value::Object(map) = &mut schema {
        map.remove("$schema");
    }
    schema
}

/// An OpenAPI 3.1 document with a path per served model, each typed by its own schemas.
pub fn openapi(models: &[(String, Signature)]) -> Value {
    let problem = json!({"description": "Problem", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}});
    let get = |summary: &str| json!({"get": {"summary": summary, "responses": {"200": {"description": "OK"}}}});
    let mut paths = Map::new();
    paths.insert("/livez".into(), get("Liveness: the process is up"));
    paths.insert("/readyz".into(), get("Readiness: every model predicts its bundled sample input"));
    paths.insert("/healthz".into(), get("Summary: live, per-model readiness, uptime"));
    paths.insert("/models".into(), get("The served models"));
    paths.insert("/metrics".into(), get("Prometheus metrics"));
    let mut schemas = Map::new();
    schemas.insert(
        "Problem".into(),
        json!({"type": "object", "properties": {
            "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
            "detail": {"type": "string"}, "path": {"type": "string"}}}),
    );
    for (name, signature) in models {
        let predict_ref = format!("{name}_predict");
        let score_ref = format!("{name}_score");
        schemas.insert(predict_ref.clone(), component(predict_schema(name, signature)));
        schemas.insert(score_ref.clone(), component(score_schema(name, signature)));
        let version = json!([{"name": "version", "in": "query", "required": false,
            "description": "Another served version (number or alias)", "schema": {"type": "string"}}]);
        let post = |summary: String, schema: &str| {
            json!({"post": {
                "summary": summary,
                "parameters": version,
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}},
                "responses": {"200": {"description": "OK"}, "404": problem, "413": problem, "415": problem, "422": problem},
            }})
        };
        paths.insert(format!("/models/{name}/predict"), post(format!("Predict with {name}"), &predict_ref));
        paths.insert(
            format!("/models/{name}/predict_proba"),
            post(format!("Class probabilities from {name}"), &predict_ref),
        );
        paths.insert(
            format!("/models/{name}/score"),
            post(format!("Metrics of {name} on labelled records"), &score_ref),
        );
        paths.insert(format!("/models/{name}"), get(&format!("Metadata and signature of {name}")));
        paths.insert(format!("/models/{name}/readyz"), get(&format!("Readiness of {name}")));
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Wharf model server", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}
