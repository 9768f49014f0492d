//! The one layer every request passes through before its route: it refuses an announced
//! oversize body (413), sets the body limit the extractors apply, bounds the request's time
//! (408), records model requests' metrics and traces the request. One layer, with one clock reading and one boxed future, rather
//! than a layer for each: measured in the `request` bench, the four separate layers this
//! replaced (tower-http's trace layer, an axum `from_fn` middleware that cloned the route
//! on every request, the deadline and the metrics layers) cost a 1-row predict about 2 µs,
//! a third of the server's own time for it. Each job's logic stays in its own module
//! ([`crate::limits`], [`crate::deadline`], [`crate::request_metrics`]); this file only
//! orders them.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Request};
use axum::response::Response;
use tower::{Layer, Service};
use tracing::{Instrument, Level, Span};

use crate::deadline::Deadlines;
use crate::request_metrics::Target;
use crate::AppState;

/// Wraps the router in [`Front`].
#[derive(Clone)]
pub(crate) struct FrontLayer {
    app: AppState,
    deadlines: Deadlines,
}

impl FrontLayer {
    pub(crate) fn new(app: AppState) -> Self {
        let deadlines = Deadlines::new(app.options.request_timeout);
        FrontLayer { app, deadlines }
    }
}

impl<S> Layer<S> for FrontLayer {
    type Service = Front<S>;

    fn layer(&self, inner: S) -> Self::Service {
        let body_limit = DefaultBodyLimit::max(self.app.options.body_limit);
        Front { inner, app: self.app.clone(), deadlines: self.deadlines.clone(), body_limit }
    }
}

/// The service of [`FrontLayer`].
#[derive(Clone)]
pub(crate) struct Front<S> {
    inner: S,
    app: AppState,
    deadlines: Deadlines,
    /// Set on the request here rather than by axum's layer, which would be one more service
    /// and future around the router.
    body_limit: DefaultBodyLimit,
}

impl<S> Service<Request> for Front<S>
where
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let started = Instant::now();
        // Counted outside the limits, so a request answered 413 or 408 is an error.
        let target = Target::of(&request, &self.app);
        let (method, uri) = (request.method().clone(), request.uri().clone());
        // The span costs only when debug logging is on; handlers' events then carry the
        // request.
        let span = if tracing::enabled!(Level::DEBUG) {
            tracing::debug_span!("request", %method, uri = %shown(&uri))
        } else {
            Span::none()
        };
        let refusal = crate::limits::announced_too_large(&request, self.app.options.body_limit);
        if refusal.is_none() {
            self.body_limit.apply(&mut request);
        }
        // The router is called inside the boxed future (on the instance polled ready, as
        // tower's `Service` contract asks; the clone takes its place): the request then moves
        // once, into the box, instead of again with every future wrapped around its call.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let deadlines = self.deadlines.clone();
        Box::pin(crate::request_metrics::counting(async move {
            let response = match refusal {
                Some(refusal) => refusal,
                None => match deadlines.within(started, inner.call(request).instrument(span.clone())).await {
                    Ok(answered) => answered?,
                    Err(timed_out) => timed_out,
                },
            };
            let status = response.status();
            let elapsed = started.elapsed();
            let latency_ms = elapsed.as_secs_f64() * 1e3;
            // A server error is logged at any level, as tower-http's trace layer did.
            if status.is_server_error() {
                let uri = shown(&uri);
                tracing::error!(parent: &span, %method, %uri, status = status.as_u16(), latency_ms, "request failed");
            } else {
                tracing::debug!(parent: &span, status = status.as_u16(), latency_ms, "request answered");
            }
            if let Some(target) = target {
                target.record(&response, crate::request_metrics::rows_scored(), elapsed);
            }
            Ok(response)
        }))
    }
}

/// The URI as logs show it: a credential a client put in the query (`?api_key=…`) masked by
/// the one redaction rule.
fn shown(uri: &axum::http::Uri) -> String {
    wharf_core::redact::url(&uri.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_in_the_query_never_reaches_the_log() {
        let uri: axum::http::Uri = "/models/lead/predict?api_key=S3CRET-9&version=2".parse().expect("a URI");
        let text = shown(&uri);
        assert!(!text.contains("S3CRET-9"), "{text}");
        assert!(text.starts_with("/models/lead/predict?") && text.contains("version=2"), "{text}");
    }
}
