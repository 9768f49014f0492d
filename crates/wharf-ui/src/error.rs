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

/// Gives the framework's own refusals (a query that does not parse, a method a page does not
/// take, a path segment that is not valid UTF-8) the same HTML page as every other error,
/// instead of a bare line of text.
pub(crate) async fn as_page(response: Response) -> Response {
    let status = response.status();
    let ours = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html") || t.starts_with("application/json"));
    if !status.is_client_error() || ours {
        return response;
    }
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap_or_default();
    let detail = String::from_utf8_lossy(&bytes).trim().to_string();
    let detail = if detail.is_empty() { status.canonical_reason().unwrap_or("refused").to_string() } else { detail };
    match status {
        StatusCode::NOT_FOUND => return UiError::NotFound(detail).into_response(),
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {
            return UiError::BadRequest(detail).into_response()
        }
        _ => {}
    }
    let body = format!("<p class=\"message\">{}</p><p><a href=\"/runs\">Back to runs</a></p>", html::esc(&detail));
    let title = status.canonical_reason().unwrap_or("Refused");
    (status, axum::response::Html(html::layout(title, "", &body))).into_response()
}

/// A script that asked for JSON (`format=json`) gets its errors as JSON too:
/// `{"status": 404, "error": "..."}`.
pub(crate) async fn json_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let json = req.uri().query().is_some_and(|q| q.split('&').any(|kv| kv == "format=json"));
    let response = next.run(req).await;
    let status = response.status();
    if !json || status.is_success() || status.is_redirection() {
        return response;
    }
    let bytes = axum::body::to_bytes(response.into_body(), 1024 * 1024).await.unwrap_or_default();
    let page = String::from_utf8_lossy(&bytes);
    // The page's message, unescaped enough to read.
    let message = page
        .split_once("<p class=\"message\">")
        .and_then(|(_, rest)| rest.split_once("</p>"))
        .map(|(m, _)| {
            m.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&amp;", "&")
        })
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
    (status, axum::Json(serde_json::json!({ "status": status.as_u16(), "error": message }))).into_response()
}

/// Any path no route takes.
pub(crate) async fn not_found(uri: Uri) -> Response {
    UiError::NotFound(format!("no page at {}", uri.path())).into_response()
}
