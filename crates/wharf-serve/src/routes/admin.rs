//! Reloading models from the registry: the token-guarded admin endpoint and the poller that
//! follows moved aliases. New versions are made by the same model-server factory as at start
//! and swapped in whole, so a request always sees one version from start to end.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{blocking, unknown_model, PathParam};
use crate::problem::Problem;
use crate::state;
use crate::AppState;

/// Re-resolves every served selector of `name` in the registry, loads and self-tests the
/// new versions, then swaps them in. Nothing is swapped unless every version loads.
pub async fn admin_reload(State(app): State<AppState>, PathParam(name): PathParam, headers: HeaderMap) -> Response {
    if let Some(refused) = crate::auth::refuse_admin(&app, &headers) {
        return refused;
    }
    match reload(&app, &name, false).await {
        Ok(changes) => Json(json!({"model": name, "reloaded": changes})).into_response(),
        Err(problem) => problem.into_response(),
    }
}

/// Reloads `name` from the registry. With `only_if_moved`, versions are loaded only when a
/// selector now resolves to another version than the one serving (what the poller uses, so
/// an idle poll costs one metadata read per model and loads nothing).
pub(crate) async fn reload(app: &AppState, name: &str, only_if_moved: bool) -> Result<Vec<Value>, Problem> {
    app.models.get(name).ok_or_else(|| unknown_model(name))?;
    let registry =
        app.models.registry.clone().ok_or_else(|| {
            Problem::new(StatusCode::CONFLICT, "No registry", "models were not loaded from a registry")
        })?;
    let _one_reload_at_a_time = app.reload_lock.lock().await;
    let app = app.clone();
    let name = name.to_string();
    blocking(move || {
        let served = app.models.get(&name).ok_or_else(|| unknown_model(&name))?;
        if only_if_moved {
            let mut moved = false;
            for slot in &served.slots {
                let info = registry.version_info(&name, &slot.selector)?;
                moved |= info.version != slot.current().version;
            }
            if !moved {
                return Ok(Vec::new());
            }
        }
        let fresh = served
            .slots
            .iter()
            .map(|s| state::load_from_registry(registry.as_ref(), &app.models.servers, &name, &s.selector))
            .collect::<Result<Vec<_>, _>>()?;
        let mut changes = Vec::new();
        for (slot, loaded) in served.slots.iter().zip(fresh) {
            app.metrics.model_loaded(&name, loaded.version.0, loaded.load_seconds);
            let version = loaded.version.0;
            let previous = slot.swap(loaded);
            changes.push(
                json!({"selector": slot.selector.to_string(), "previous": previous.version.0, "version": version}),
            );
        }
        tracing::info!(model = %name, ?changes, "model reloaded");
        Ok(changes)
    })
    .await
}

/// Polls the registry every `interval` and reloads models whose selectors moved (an alias
/// set to another version), so `wharf models alias` takes effect without a restart. A failed
/// poll is logged and the serving versions stay.
pub(crate) async fn poll_registry(app: AppState, interval: std::time::Duration) {
    let names: Vec<String> = app.models.models.iter().map(|m| m.name.clone()).collect();
    loop {
        tokio::time::sleep(interval).await;
        for name in &names {
            if let Err(problem) = reload(&app, name, true).await {
                tracing::warn!(model = %name, detail = %problem.detail, "registry poll: model not reloaded");
            }
        }
    }
}
