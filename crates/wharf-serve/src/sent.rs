//! What a scoring request sent: its headers and its body, taken together as one extractor.
//!
//! axum's `HeaderMap` extractor clones the request's headers, because it cannot know
//! whether a later extractor wants them; a scoring handler read them next to its body, so
//! every request paid for a copy nobody needed. Taking both at once moves the headers out
//! of the request before the body is read (reading the body needs only the request's
//! extensions, where the body limit is).

use std::convert::Infallible;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::HeaderMap;

/// A request's headers and its body (or why the body could not be read: too large, cut
/// off), for the handler to answer in its own protocol's shape.
pub(crate) struct Sent {
    pub(crate) headers: HeaderMap,
    pub(crate) body: Result<Bytes, BytesRejection>,
}

impl<S: Send + Sync> FromRequest<S> for Sent {
    type Rejection = Infallible;

    async fn from_request(mut request: Request, state: &S) -> Result<Self, Infallible> {
        let headers = std::mem::take(request.headers_mut());
        let body = Bytes::from_request(request, state).await;
        Ok(Sent { headers, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::DefaultBodyLimit;
    use axum::http::header;
    use axum::routing::post;
    use axum::Router;
    use tower::ServiceExt;

    async fn echo(sent: Sent) -> String {
        let kind = sent.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("none").to_string();
        match sent.body {
            Ok(body) => format!("{kind} {}", String::from_utf8_lossy(&body)),
            Err(rejection) => format!("{kind} refused {}", rejection.status().as_u16()),
        }
    }

    async fn call(router: Router, body: &'static str) -> String {
        let request = Request::post("/")
            .header(header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(body))
            .expect("a request");
        let response = router.oneshot(request).await.expect("an answer");
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("a body");
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[tokio::test]
    async fn the_headers_and_the_body_both_arrive_and_the_body_limit_still_holds() {
        let router = Router::new().route("/", post(echo));
        assert_eq!(call(router.clone(), "[1,2]").await, "application/json [1,2]");
        let limited = router.layer(DefaultBodyLimit::max(4));
        assert_eq!(call(limited, "[1,2,3]").await, "application/json refused 413");
    }
}
