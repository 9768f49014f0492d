//! Refusals that must come before any work: a body announced larger than the limit (413 at
//! once, without waiting for bytes that may never come) and scoring past the concurrency
//! limit (503 with `Retry-After`, so load beyond capacity is shed instead of queued).

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::problem::Problem;
use crate::AppState;

/// Seconds a shed client is asked to wait: scoring requests take milliseconds, so a second
/// is long enough for the queue to move and short enough not to idle a retrying client.
const RETRY_AFTER_SECONDS: &str = "1";

/// The 413 answer, at once, when `Content-Length` announces more than the body limit:
/// waiting for bytes that may never come would hold a connection for nothing.
pub(crate) fn announced_too_large(request: &Request, limit: usize) -> Option<Response> {
    announced(request).is_some_and(|length| length > u64::try_from(limit).unwrap_or(u64::MAX)).then(|| too_large(limit))
}

/// The 413 answer every over-limit body gets.
pub(crate) fn too_large(limit: usize) -> Response {
    let mut response = Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "Payload too large",
        "the request body is larger than the server accepts",
    )
    .with("limit_bytes", limit.into())
    .into_response();
    // The unread body is not drained: the client is told the connection ends here.
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A place among the `serving.max_concurrent_scoring` scoring requests in progress. The
/// scoring handlers take it as their first extractor, so it is taken before the body is
/// read and bounds body memory too; without one the request is answered 503 with
/// `Retry-After`. An extractor rather than a middleware layer, because a layer costs every
/// request a clone and a box of the route's service stack (measured: a few percent of
/// 1-row throughput).
pub(crate) struct ScoringPermit {
    _permit: tokio::sync::OwnedSemaphorePermit,
    big: bool,
}

impl axum::extract::FromRequestParts<AppState> for ScoringPermit {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, app: &AppState) -> Result<Self, Response> {
        let Ok(permit) = app.scoring.clone().try_acquire_owned() else {
            app.metrics.shed();
            let mut response = Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Overloaded",
                "too many scoring requests in progress; retry shortly",
            )
            .into_response();
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
            return Err(response);
        };
        let big = announced_in(&parts.headers).is_some_and(|length| length >= TRIM_AFTER_BYTES);
        Ok(ScoringPermit { _permit: permit, big })
    }
}

impl Drop for ScoringPermit {
    /// The handler is done with the body when its permit goes: hand a large one's freed
    /// buffers back.
    fn drop(&mut self) {
        if self.big {
            release_freed_memory();
        }
    }
}

/// A body at least this large leaves megabytes of freed buffers behind.
const TRIM_AFTER_BYTES: u64 = 1 << 20;

/// Hands memory freed by a large request back to the system. glibc keeps freed memory in
/// per-thread arenas, so without this a burst of large bodies leaves the server at its
/// peak size long after; the trim runs off the reactor, and only after large requests.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tokio::task::spawn_blocking(|| {
        // SAFETY: malloc_trim only returns free heap pages to the system; it touches no
        // memory the program holds.
        unsafe { libc::malloc_trim(0) };
    });
}

fn announced(request: &Request) -> Option<u64> {
    announced_in(request.headers())
}

fn announced_in(headers: &axum::http::HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok())
}
