//! The request timeout (`serving.request_timeout_ms`) on one shared, coarse clock.
//!
//! tower-http's `TimeoutLayer` arms a tokio timer per request. Registering a timer that is
//! earlier than the one the runtime's driver sleeps on wakes the driver (an eventfd write
//! and a context switch), and under a 1-row predict load that happened on 0.83 requests in
//! 1: the largest single cost `perf` found on the request path. Here one ticker task wakes
//! every request in flight once per tick, and each checks its own deadline, so a request
//! pays an uncontended `Notify` registration instead of a timer, and a timeout fires up to
//! one tick late (a twentieth of the timeout, between 10 and 250 ms).

use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::sync::Notify;

use crate::problem::Problem;

/// The timeout every request shares, and the tick that checks it.
#[derive(Clone)]
pub(crate) struct Deadlines(Arc<Inner>);

struct Inner {
    timeout: Duration,
    tick: Duration,
    clock: Notify,
    ticker: OnceLock<()>,
}

impl Deadlines {
    pub(crate) fn new(timeout: Duration) -> Self {
        let tick = (timeout / 20).clamp(Duration::from_millis(10), Duration::from_millis(250));
        Deadlines(Arc::new(Inner { timeout, tick, clock: Notify::new(), ticker: OnceLock::new() }))
    }

    /// Starts the ticker on the first request, inside the runtime that serves it; it stops
    /// when the router holding these deadlines is dropped.
    fn ensure_ticker(&self) {
        self.0.ticker.get_or_init(|| {
            let weak: Weak<Inner> = Arc::downgrade(&self.0);
            let tick = self.0.tick;
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(tick);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    interval.tick().await;
                    match weak.upgrade() {
                        Some(inner) => inner.clock.notify_waiters(),
                        None => return,
                    }
                }
            });
        });
    }
}

/// The tower layer: answers 408 (problem+json) when the inner service has not answered by
/// the deadline, dropping the handler's future, as `TimeoutLayer` does. A plain layer, not
/// an axum `from_fn` middleware, which would clone the inner service on every request.
#[derive(Clone)]
pub(crate) struct DeadlineLayer(pub(crate) Deadlines);

impl<S> tower::Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Deadline { inner, deadlines: self.0.clone() }
    }
}

/// The service of [`DeadlineLayer`].
#[derive(Clone)]
pub(crate) struct Deadline<S> {
    inner: S,
    deadlines: Deadlines,
}

impl<S> tower::Service<Request> for Deadline<S>
where
    S: tower::Service<Request, Response = Response> + Send,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let deadlines = self.deadlines.clone();
        deadlines.ensure_ticker();
        let deadline = Instant::now() + deadlines.0.timeout;
        let call = self.inner.call(request);
        Box::pin(async move {
            tokio::pin!(call);
            loop {
                let tick = deadlines.0.clock.notified();
                tokio::select! {
                    biased;
                    response = &mut call => return response,
                    () = tick => {
                        if Instant::now() >= deadline {
                            return Ok(timed_out(deadlines.0.timeout));
                        }
                    }
                }
            }
        })
    }
}

fn timed_out(timeout: Duration) -> Response {
    Problem::new(
        StatusCode::REQUEST_TIMEOUT,
        "Request timeout",
        format!("no answer within serving.request_timeout_ms ({} ms)", timeout.as_millis()),
    )
    .into_response()
}
