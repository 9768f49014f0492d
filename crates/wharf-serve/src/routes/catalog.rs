//! The catalog: which models are served, their metadata, and the JSON Schemas of their
//! request bodies, all read from the loaded versions without a predict call.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::{resolve, PathParam, QueryParams};
use crate::problem::Problem;
use crate::state::Loaded;
use crate::AppState;

fn summary(name: &str, loaded: &Loaded) -> Value {
    let sig = loaded.model.signature();
    json!({
        "name": name,
        "version": loaded.version.0,
        "aliases": loaded.info.aliases,
        "created": loaded.info.created_at,
        "task": sig.task,
        "classes": sig.classes,
        "algorithm": loaded.model.metadata().algorithm,
    })
}

pub async fn list_models(State(app): State<AppState>) -> Json<Value> {
    let models: Vec<Value> = app
        .models
        .models
        .iter()
        .map(|m| {
            let versions: Vec<Value> = m.slots.iter().map(|s| summary(&m.name, &s.current())).collect();
            let mut first = versions.first().cloned().unwrap_or_default();
            if let Value::Object(map) = &mut first {
                map.insert("served_versions".into(), json!(versions.iter().map(|v| &v["version"]).collect::<Vec<_>>()));
            }
            first
        })
        .collect();
    Json(json!({"models": models}))
}

pub async fn model_info(
    State(app): State<AppState>,
    PathParam(name): PathParam,
    QueryParams(q): QueryParams,
) -> Result<Json<Value>, Problem> {
    let loaded = resolve(&app, &name, q.version().as_deref())?;
    let name = loaded.info.name.clone();
    let meta = loaded.model.metadata();
    let mut body = summary(&name, &loaded);
    if let Value::Object(map) = &mut body {
        map.insert("signature".into(), json!(meta.signature));
        map.insert("params".into(), json!(meta.params));
        map.insert("metrics".into(), json!(meta.metrics));
        // The drift profile is kilobytes of bins, served at `/models/{name}/drift` instead.
        let tags: std::collections::BTreeMap<_, _> =
            meta.tags.iter().filter(|(k, _)| k.as_str() != wharf_core::drift::PROFILE_TAG).collect();
        map.insert("tags".into(), json!(tags));
        map.insert("trained_at".into(), json!(meta.created_at));
        map.insert("data_fingerprint".into(), json!(meta.data_fingerprint));
        map.insert("data_source".into(), json!(meta.data_source));
        map.insert("library_versions".into(), json!(meta.library_versions));
        map.insert("sha256".into(), json!(loaded.info.sha256));
        map.insert("sample_input".into(), json!(meta.sample_input));
        map.insert("predict_schema".into(), crate::schema::predict_schema(&name, &meta.signature));
        map.insert("score_schema".into(), crate::schema::score_schema(&name, &meta.signature));
    }
    Ok(Json(body))
}

pub async fn predict_schema(
    State(app): State<AppState>,
    PathParam(name): PathParam,
    QueryParams(q): QueryParams,
) -> Result<Json<Value>, Problem> {
    let loaded = resolve(&app, &name, q.version().as_deref())?;
    let name = loaded.info.name.clone();
    Ok(Json(crate::schema::predict_schema(&name, loaded.model.signature())))
}

pub async fn score_schema(
    State(app): State<AppState>,
    PathParam(name): PathParam,
    QueryParams(q): QueryParams,
) -> Result<Json<Value>, Problem> {
    let loaded = resolve(&app, &name, q.version().as_deref())?;
    let name = loaded.info.name.clone();
    Ok(Json(crate::schema::score_schema(&name, loaded.model.signature())))
}
