//! What a page answers when it cannot show what was asked: a page (or JSON) with a clear
//! message and the right status. Nothing a visitor types produces a 500: unknown paths,
//! runs and models are 404, malformed queries 400.

use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use wharf_core::WharfError;

use crate::html;

/// Why a page could not be shown.
#[derive(Debug)]
#[non_exhaustive]
pub enum UiError {
    /// Nothing at this path, or the run, model or version does not exist.
    NotFound(String),
    /// The query asks for something malformed (`?runs=` with one run, a bad version).
    BadRequest(String),
    /// A port failed (a tracker server down, an unreadable file).
    Port(String),
    /// The server itself failed.
    Internal(String),
}

impl From<WharfError> for UiError {
    fn from(e: WharfError) -> Self {
        match e {
            WharfError::NotFound { .. } => UiError::NotFound(e.to_string()),
            WharfError::InvalidInput { .. } => UiError::BadRequest(e.to_string()),
            other => UiError::Port(other.to_string()),
        }
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            UiError::NotFound(m) => (StatusCode::NOT_FOUND, "Not found", m),
            UiError::BadRequest(m) => (StatusCode::BAD_REQUEST, "Bad request", m),
            UiError::Port(m) => (StatusCode::BAD_GATEWAY, "A store could not be read", m),
            UiError::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, "Error", m),
        };
        let body = format!("<p class=\"message\">{}</p><p><a href=\"/runs\">Back to runs</a></p>", html::esc(&message));
        (status, axum::response::Html(html::layout(title, "", &body))).into_response()
    }
}

/// Any path no route takes.
pub(crate) async fn not_found(uri: Uri) -> Response {
    UiError::NotFound(format!("no page at {}", uri.path())).into_response()
}
