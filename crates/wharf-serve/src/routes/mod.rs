//! The HTTP handlers, one file per concern: probes and metrics ([`health`]), the model
//! catalog ([`catalog`]), scoring ([`predict`]), reloads ([`admin`]), drift and feedback ([`watch`]) and the OpenAPI
//! document with its offline page ([`docs`]). What they share (finding the version a request
//! asks for, running work off the reactor) is here. Request metrics are not counted here but
//! by the layer around them ([`crate::front`], with [`crate::request_metrics`]).

use std::borrow::Cow;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{StatusCode, Uri};
use wharf_core::excerpt;

use crate::problem::Problem;
use crate::state::Loaded;
use crate::AppState;

pub(crate) mod admin;
pub(crate) mod catalog;
pub(crate) mod docs;
pub(crate) mod health;
pub(crate) mod predict;
pub(crate) mod watch;

pub(crate) use predict::{AnswerHead, INLINE_WORK};

/// The query of model endpoints: only `version` (and `probabilities` on predict) is read,
/// each when asked for ([`crate::query::param`]), so a repeated or unknown parameter is
/// never an error and reading the query allocates nothing.
pub(crate) struct VersionQuery(Uri);

impl VersionQuery {
    /// `?version=`: a version number or an alias.
    pub(crate) fn version(&self) -> Option<Cow<'_, str>> {
        crate::query::param(self.0.query(), "version")
    }

    /// `?probabilities=`.
    pub(crate) fn probabilities(&self) -> Option<Cow<'_, str>> {
        crate::query::param(self.0.query(), "probabilities")
    }
}

/// A path parameter (`{name}`), or a 400 problem+json when it cannot be read (a name that
/// is not UTF-8), instead of axum's plain-text rejection.
pub(crate) struct PathParam(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathParam {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(PathParam(value)),
            Err(rejection) => Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "Invalid path",
                format!("the path cannot be read: {}", excerpt(&rejection.body_text())),
            )
            .at("name")),
        }
    }
}

/// The query as a [`VersionQuery`] (a reference-counted clone of the URI).
pub(crate) struct QueryParams(pub VersionQuery);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(QueryParams(VersionQuery(parts.uri.clone())))
    }
}

fn unknown_model(name: &str) -> Problem {
    Problem::not_found(format!("model '{name}' is not served")).at("name")
}

/// Finds the served version a request asks for: `?version=` or `name@version` in the path
/// (`/models/lead@champion/predict`); the path's selector wins.
pub(crate) fn resolve(app: &AppState, name: &str, version: Option<&str>) -> Result<Arc<Loaded>, Problem> {
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
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Problem> + Send + 'static,
) -> Result<T, Problem> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Problem::internal(format!("prediction task failed: {e}")))?
}
