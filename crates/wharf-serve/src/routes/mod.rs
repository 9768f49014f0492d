//! The HTTP handlers, one file per concern: probes and metrics ([`health`]), the model
//! catalog ([`catalog`]), scoring ([`predict`]), reloads ([`admin`]) and the OpenAPI
//! document with its offline page ([`docs`]). What they share (finding the version a request
//! asks for, running work off the reactor) is here. Request metrics are not counted here but
//! by a layer around them ([`crate::request_metrics`]).

use std::collections::HashMap;
use std::sync::Arc;

use crate::problem::Problem;
use crate::state::Loaded;
use crate::AppState;

pub(crate) mod admin;
pub(crate) mod catalog;
pub(crate) mod docs;
pub(crate) mod health;
pub(crate) mod predict;

/// The query of model endpoints; only `version` (and `probabilities` on predict) is read. A
/// map (not a struct) so a repeated or unknown parameter can never turn into a plain-text
/// rejection.
type VersionQuery = HashMap<String, String>;

fn unknown_model(name: &str) -> Problem {
    Problem::not_found(format!("model '{name}' is not served")).at("name")
}

/// Finds the served version a request asks for: `?version=` or `name@version` in the path
/// (`/models/lead@champion/predict`); the path's selector wins.
fn resolve(app: &AppState, name: &str, version: Option<&str>) -> Result<Arc<Loaded>, Problem> {
    let (name, version) = match name.split_once('@') {
        Some((name, selector)) => (name, Some(selector)),
        None => (name, version),
    };
    let served = app.models.get(name).ok_or_else(|| unknown_model(name))?;
    let slot = served.slot(version).ok_or_else(|| {
        Problem::not_found(format!("version '{}' of model '{name}' is not served", version.unwrap_or_default()))
            .at("version")
    })?;
    Ok(slot.current())
}

/// Runs CPU-bound or blocking work on the blocking pool so the reactor keeps answering.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, Problem> + Send + 'static) -> Result<T, Problem> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Problem::internal(format!("prediction task failed: {e}")))?
}
