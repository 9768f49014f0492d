//! Errors as RFC 9457 `application/problem+json`, with the failing field's `path`.
//!
//! Every client mistake maps to a 4xx here, so a bad request can never look like a server
//! fault; only failures inside the server (a model that breaks, a panicked task) are 5xx.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use wharf_core::WharfError;

/// One problem answer.
#[derive(Debug, Clone)]
pub struct Problem {
    /// HTTP status.
    pub status: StatusCode,
    /// Short, fixed summary of the kind of problem.
    pub title: &'static str,
    /// What went wrong this time.
    pub detail: String,
    /// Extra members (`path`, `not_ready`, …).
    pub members: Map<String, Value>,
}

impl Problem {
    /// A problem with a status, a title and a detail.
    pub fn new(status: StatusCode, title: &'static str, detail: impl Into<String>) -> Self {
        Problem { status, title, detail: detail.into(), members: Map::new() }
    }

    /// Names the failing field (`records[0].pages_viewed`).
    pub fn at(self, path: impl Into<String>) -> Self {
        self.with("path", Value::String(path.into()))
    }

    /// The same problem with a `path` that starts with `from` starting with `to` instead.
    pub fn path_prefix(mut self, from: &str, to: &str) -> Self {
        if let Some(Value::String(path)) = self.members.get_mut("path") {
            if let Some(rest) = path.strip_prefix(from) {
                *path = format!("{to}{rest}");
            }
        }
        self
    }

    /// Adds an extension member.
    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.members.insert(key.to_string(), value);
        self
    }

    /// 422 for a value that breaks the model's input schema.
    pub fn invalid(path: impl Into<String>, detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid input", detail).at(path)
    }

    /// 404 for an unknown model or version.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "Not found", detail)
    }

    /// 500 for a failure inside the server.
    pub fn internal(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error", detail)
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let mut body = json!({
            "type": "about:blank",
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if let Value::Object(map) = &mut body {
            map.extend(self.members.clone());
        }
        body
    }
}

impl From<WharfError> for Problem {
    fn from(err: WharfError) -> Self {
        match err {
            WharfError::NotFound { what } => Problem::not_found(format!("not found: {what}")),
            WharfError::InvalidInput { path, message } => Problem::invalid(path, message),
            WharfError::SchemaMismatch { path, message } => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "Schema mismatch", message).at(path)
            }
            WharfError::Unsupported(message) => Problem::new(StatusCode::BAD_REQUEST, "Not supported", message),
            WharfError::NoModelLoaded => {
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Not ready", WharfError::NoModelLoaded.to_string())
            }
            other => Problem::internal(other.to_string()),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        // The request's path and method are on the enclosing trace span.
        tracing::debug!(status = self.status.as_u16(), detail = %self.detail, "request refused");
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        response
    }
}
