//! Probes (live, ready, per-model ready, uptime, summary) and the Prometheus exposition.
//! Readiness scores each version's sample input now, so "ready" means "answers", not
//! "was loaded once".

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;

use super::PathParam;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::unknown_model;
use crate::problem::Problem;
use crate::state::{self, Loaded};
use crate::AppState;

pub async fn livez() -> Json<Value> {
    Json(json!("LIVE"))
}

pub async fn uptime(State(app): State<AppState>) -> Json<Value> {
    Json(json!(app.started.elapsed().as_secs_f64()))
}

/// Self-tests every served version of every model, at request time, off the reactor.
async fn readiness(app: &AppState) -> BTreeMap<String, bool> {
    let app = app.clone();
    tokio::task::spawn_blocking(move || {
        app.models
            .models
            .iter()
            .map(|m| {
                let ready = m.slots.iter().all(|s| {
                    let loaded = s.current();
                    state::self_test(&loaded.model, loaded.server.as_ref()).is_ok()
                });
                (m.name.clone(), ready)
            })
            .collect()
    })
    .await
    .unwrap_or_default()
}

pub async fn readyz(State(app): State<AppState>) -> Response {
    let ready = readiness(&app).await;
    let not_ready: Vec<&String> = ready.iter().filter(|(_, ok)| !**ok).map(|(n, _)| n).collect();
    if not_ready.is_empty() && !ready.is_empty() {
        Json(json!("READY")).into_response()
    } else {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Not ready", "Predictor(s) not ready")
            .with("not_ready", json!(not_ready))
            .into_response()
    }
}

pub async fn healthz(State(app): State<AppState>) -> Json<Value> {
    let ready = readiness(&app).await;
    Json(json!({"live": true, "ready": ready, "uptime": app.started.elapsed().as_secs_f64()}))
}

pub async fn model_readyz(State(app): State<AppState>, PathParam(name): PathParam) -> Response {
    let Some(served) = app.models.get(&name) else {
        return unknown_model(&name).into_response();
    };
    let loaded: Vec<Arc<Loaded>> = served.slots.iter().map(|s| s.current()).collect();
    let ok = tokio::task::spawn_blocking(move || {
        loaded.iter().all(|l| state::self_test(&l.model, l.server.as_ref()).is_ok())
    })
    .await
    .unwrap_or(false);
    if ok {
        Json(json!("READY")).into_response()
    } else {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Not ready", "NOT_READY")
            .with("model", json!(name))
            .into_response()
    }
}

pub async fn metrics(State(app): State<AppState>) -> Response {
    let served: Vec<crate::metrics::ModelInfo> = app
        .models
        .models
        .iter()
        .flat_map(|m| m.slots.iter().map(|s| s.current()))
        .map(|loaded| crate::metrics::ModelInfo {
            model: loaded.info.name.clone(),
            version: loaded.version.0,
            kind: loaded.model.kind_id().to_string(),
            sha256: loaded.info.sha256.clone(),
        })
        .collect();
    let mut text = app.metrics.render(app.started.elapsed(), &served);
    app.shadows.render(&mut text);
    app.watch.render(&app.models, &mut text);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}
