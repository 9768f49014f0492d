//! Request metrics: every `POST /models/{name}/{predict, predict_proba, score}`, Open
//! Inference Protocol `infer` and MLflow `/invocations` to a served model is counted
//! (requests, errors, rows scored) and timed, by model and version, by the front layer
//! ([`crate::front`]) around the handlers rather than inside them, so a handler does only
//! its own job and a request the router, the body limit or the timeout answered is counted
//! too.
//!
//! A handler tells the layer how many rows it scored with [`scored_rows`], which the layer
//! reads back when the request completes ([`rows_scored`]); an answer that never told it (every
//! error) scored none. The count travels in a task-local value rather than in the
//! response's extensions: the first extension of a response allocates its map, and a 1-row
//! answer had no other.

use std::borrow::Cow;
use std::cell::Cell;
use std::future::Future;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderValue, Method, Uri};
use axum::response::Response;

use crate::query::{param, percent_decoded};
use crate::AppState;

tokio::task_local! {
    /// The rows the request being answered scored.
    static SCORED_ROWS: Cell<usize>;
}

/// Tells the layer that this request scored `rows` rows. Outside a counted request (a
/// router embedded without the front layer) it does nothing.
pub(crate) fn scored_rows(rows: usize) {
    let _ = SCORED_ROWS.try_with(|scored| scored.set(rows));
}

/// Runs `request` with a count of the rows it scores, which [`rows_scored`] reads.
pub(crate) fn counting<F: Future>(request: F) -> impl Future<Output = F::Output> {
    SCORED_ROWS.scope(Cell::new(0), request)
}

/// The rows the request [`counting`] runs has scored so far.
pub(crate) fn rows_scored() -> usize {
    SCORED_ROWS.try_with(Cell::get).unwrap_or(0)
}

/// A model request on its way, with what is needed to record it when it completes.
pub(crate) struct Target {
    app: AppState,
    uri: Uri,
    /// `X-Wharf-Model` of an `/invocations` request.
    model_header: Option<HeaderValue>,
}

impl Target {
    /// The series point `request` will be, when it is a model request. Only model requests
    /// are series; the URI is kept (a reference-counted clone) so the name is read again at
    /// the end instead of being copied now.
    pub(crate) fn of(request: &Request, app: &AppState) -> Option<Target> {
        let path = request.uri().path();
        let counted = endpoint(path).is_some() || v2_infer(path).is_some() || path == INVOCATIONS;
        (request.method() == Method::POST && counted).then(|| Target {
            app: app.clone(),
            uri: request.uri().clone(),
            model_header: (path == INVOCATIONS)
                .then(|| request.headers().get(&crate::protocol::mlflow::MODEL_HEADER).cloned())
                .flatten(),
        })
    }

    /// Records the request, answered with `response` after `elapsed`.
    pub(crate) fn record(self, response: &Response, rows: usize, elapsed: Duration) {
        let path = self.uri.path();
        let (label, name, selector): (&'static str, Cow<'_, str>, Option<Cow<'_, str>>) =
            if let Some((name, label)) = endpoint(path) {
                let Some(name) = percent_decoded(name) else { return };
                (label, name, param(self.uri.query(), "version"))
            } else if let Some((name, version)) = v2_infer(path) {
                let (Some(name), version) = (percent_decoded(name), version.map(percent_decoded)) else { return };
                let Some(version) = version.map_or(Some(None), |v| v.map(Some)) else { return };
                ("v2_infer", name, version)
            } else if path == INVOCATIONS {
                let Ok(reference) = crate::protocol::mlflow::target(&self.app, self.model_header.as_ref()) else {
                    return;
                };
                ("invocations", Cow::Owned(reference.to_string()), None)
            } else {
                return;
            };
        // `lead@champion` is a series of `lead` at the version `champion` names; a name or
        // version that is not served is no series.
        let (name, selector) = match name.split_once('@') {
            Some((name, selector)) => (name, Some(selector)),
            None => (name.as_ref(), selector.as_deref()),
        };
        let Some(slot) = self.app.models.get(name).and_then(|m| m.slot(selector)) else { return };
        let version = slot.current().version.0;
        let ok = response.status().is_success();
        let rows = if ok { rows } else { 0 };
        self.app.metrics.observe(name, version, label, elapsed, ok, rows);
    }
}

/// MLflow's scoring path.
const INVOCATIONS: &str = "/invocations";

/// The (still percent-encoded) model name and version of an Open Inference Protocol infer
/// path, `/v2/models/{name}[/versions/{version}]/infer`.
fn v2_infer(path: &str) -> Option<(&str, Option<&str>)> {
    let rest = path.strip_prefix("/v2/models/")?.strip_suffix("/infer")?;
    let (name, version) = match rest.split_once("/versions/") {
        Some((name, version)) => (name, Some(version)),
        None => (rest, None),
    };
    let plain = |s: &str| !s.is_empty() && !s.contains('/');
    (plain(name) && version.is_none_or(plain)).then_some((name, version))
}

/// The (still percent-encoded) model name and the endpoint label of a model request path,
/// `/models/{name}/{endpoint}` with or without a trailing slash.
fn endpoint(path: &str) -> Option<(&str, &'static str)> {
    let rest = path.strip_prefix("/models/")?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let at = rest.bytes().position(|b| b == b'/')?;
    let (name, endpoint) = (&rest[..at], &rest[at + 1..]);
    let label = match endpoint {
        "predict" => "predict",
        "predict_proba" => "predict_proba",
        "score" => "score",
        _ => return None,
    };
    (!name.is_empty()).then_some((name, label))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_paths_are_recognised() {
        assert_eq!(endpoint("/models/lead/predict"), Some(("lead", "predict")));
        assert_eq!(endpoint("/models/lead%40champion/predict_proba/"), Some(("lead%40champion", "predict_proba")));
        assert_eq!(endpoint("/models/lead/score"), Some(("lead", "score")));
        assert_eq!(endpoint("/models/lead/readyz"), None);
        assert_eq!(endpoint("/models/lead"), None);
        assert_eq!(endpoint("/models//predict"), None);
    }

    #[test]
    fn protocol_paths_are_recognised() {
        assert_eq!(v2_infer("/v2/models/lead/infer"), Some(("lead", None)));
        assert_eq!(v2_infer("/v2/models/lead/versions/2/infer"), Some(("lead", Some("2"))));
        assert_eq!(v2_infer("/v2/models/lead/ready"), None);
        assert_eq!(v2_infer("/v2/models//infer"), None);
        assert_eq!(v2_infer("/v2/models/a/b/infer"), None);
    }
}
