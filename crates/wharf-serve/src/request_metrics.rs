//! Request metrics as a tower [`Layer`]: every `POST /models/{name}/{predict, predict_proba,
//! score}`, Open Inference Protocol `infer` and MLflow `/invocations` to a served model is
//! counted (requests, errors, rows scored) and timed, by model and version, around the
//! handlers rather than inside them, so a handler does only its own job and a request the
//! router, the body limit or the timeout answered is counted too.
//!
//! A handler tells the layer how many rows it scored by putting [`ScoredRows`] in its
//! response's extensions; an answer without it (every error) scored none.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderValue, Method, Uri};
use axum::response::Response;
use tower::{Layer, Service};

use crate::AppState;

/// How many rows a successful model request scored.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScoredRows(pub(crate) usize);

/// Wraps the router's services in [`RecordMetrics`].
#[derive(Clone)]
pub(crate) struct RequestMetricsLayer {
    app: AppState,
}

impl RequestMetricsLayer {
    pub(crate) fn new(app: AppState) -> Self {
        RequestMetricsLayer { app }
    }
}

impl<S> Layer<S> for RequestMetricsLayer {
    type Service = RecordMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RecordMetrics { inner, app: self.app.clone() }
    }
}

/// Records one series point per model request once its response is ready.
#[derive(Clone)]
pub(crate) struct RecordMetrics<S> {
    inner: S,
    app: AppState,
}

impl<S> Service<Request> for RecordMetrics<S>
where
    S: Service<Request, Response = Response>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Observed<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // Only model requests are series; the URI is kept (a reference-counted clone) so the
        // name is read again at the end instead of being copied now.
        let path = request.uri().path();
        let counted = endpoint(path).is_some() || v2_infer(path).is_some() || path == INVOCATIONS;
        let target = (request.method() == Method::POST && counted).then(|| Target {
            app: self.app.clone(),
            uri: request.uri().clone(),
            model_header: (path == INVOCATIONS)
                .then(|| request.headers().get(&crate::protocol::mlflow::MODEL_HEADER).cloned())
                .flatten(),
            started: Instant::now(),
        });
        Observed { inner: self.inner.call(request), target }
    }
}

/// The inner service's future, plus what is needed to record the request when it completes.
pub(crate) struct Observed<F> {
    inner: F,
    target: Option<Target>,
}

struct Target {
    app: AppState,
    uri: Uri,
    /// `X-Wharf-Model` of an `/invocations` request.
    model_header: Option<HeaderValue>,
    started: Instant,
}

impl<F, E> Future for Observed<F>
where
    F: Future<Output = Result<Response, E>> + Unpin,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let output = match Pin::new(&mut this.inner).poll(cx) {
            Poll::Ready(output) => output,
            Poll::Pending => return Poll::Pending,
        };
        if let (Ok(response), Some(target)) = (&output, this.target.take()) {
            target.record(response);
        }
        Poll::Ready(output)
    }
}

impl Target {
    fn record(self, response: &Response) {
        let path = self.uri.path();
        let (label, name, selector): (&'static str, Cow<'_, str>, Option<Cow<'_, str>>) =
            if let Some((name, label)) = endpoint(path) {
                let Some(name) = percent_decoded(name) else { return };
                (label, name, query_version(self.uri.query()))
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
        let rows = if ok { response.extensions().get::<ScoredRows>().map_or(0, |r| r.0) } else { 0 };
        self.app.metrics.observe(name, version, label, self.started.elapsed(), ok, rows);
    }
}

/// MLflow's scoring path.
const INVOCATIONS: &str = "/invocations";

/// The `version` of a query (`?version=2`), decoded.
fn query_version(query: Option<&str>) -> Option<Cow<'_, str>> {
    query?.split('&').find_map(|pair| pair.strip_prefix("version=")).and_then(percent_decoded)
}

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
    let (name, endpoint) = rest.split_once('/')?;
    let label = match endpoint {
        "predict" => "predict",
        "predict_proba" => "predict_proba",
        "score" => "score",
        _ => return None,
    };
    (!name.is_empty()).then_some((name, label))
}

/// The name as the router decodes it (`lead%40champion` is `lead@champion`); `None` when it
/// is not UTF-8 once decoded, which no served name is. Allocates only for an encoded name.
fn percent_decoded(name: &str) -> Option<Cow<'_, str>> {
    if !name.contains('%') {
        return Some(Cow::Borrowed(name));
    }
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_paths_are_recognised_and_names_decoded() {
        assert_eq!(endpoint("/models/lead/predict"), Some(("lead", "predict")));
        assert_eq!(endpoint("/models/lead%40champion/predict_proba/"), Some(("lead%40champion", "predict_proba")));
        assert_eq!(endpoint("/models/lead/score"), Some(("lead", "score")));
        assert_eq!(endpoint("/models/lead/readyz"), None);
        assert_eq!(endpoint("/models/lead"), None);
        assert_eq!(endpoint("/models//predict"), None);
        assert_eq!(percent_decoded("lead%40champion").as_deref(), Some("lead@champion"));
        assert_eq!(percent_decoded("lead").as_deref(), Some("lead"));
        assert_eq!(percent_decoded("100%"), Some(Cow::Owned("100%".into())));
        assert_eq!(percent_decoded("%ff"), None);
    }

    #[test]
    fn protocol_paths_are_recognised() {
        assert_eq!(v2_infer("/v2/models/lead/infer"), Some(("lead", None)));
        assert_eq!(v2_infer("/v2/models/lead/versions/2/infer"), Some(("lead", Some("2"))));
        assert_eq!(v2_infer("/v2/models/lead/ready"), None);
        assert_eq!(v2_infer("/v2/models//infer"), None);
        assert_eq!(v2_infer("/v2/models/a/b/infer"), None);
        assert_eq!(query_version(Some("probabilities=array&version=champion")).as_deref(), Some("champion"));
        assert_eq!(query_version(Some("probabilities=array")), None);
    }
}
