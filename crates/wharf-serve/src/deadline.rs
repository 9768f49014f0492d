//! The request timeout (`serving.request_timeout_ms`) on one shared, coarse clock.
//!
//! tower-http's `TimeoutLayer` arms a tokio timer per request. Registering a timer that is
//! earlier than the one the runtime's driver sleeps on wakes the driver (an eventfd write
//! and a context switch), and under a 1-row predict load that happened on 0.83 requests in
//! 1: the largest single cost `perf` found on the request path. Here one ticker task wakes
//! every request in flight once per tick, and each checks its own deadline, so a request
//! pays an uncontended `Notify` registration instead of a timer, and a timeout fires up to
//! one tick late (a twentieth of the timeout, between 10 and 250 ms).

use std::future::Future;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

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

impl Deadlines {
    /// `call`'s output, or the 408 answer when it has not completed within the timeout of
    /// `started`. A timed-out `call` is dropped, as `TimeoutLayer` drops the handler.
    pub(crate) async fn within<F: Future>(&self, started: Instant, call: F) -> Result<F::Output, Response> {
        self.ensure_ticker();
        let deadline = started + self.0.timeout;
        tokio::pin!(call);
        loop {
            let tick = self.0.clock.notified();
            tokio::select! {
                biased;
                output = &mut call => return Ok(output),
                () = tick => {
                    if Instant::now() >= deadline {
                        return Err(timed_out(self.0.timeout));
                    }
                }
            }
        }
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
