//! The adapter's private error type. Callers only ever see [`WharfError`]; this type travels
//! as its `source`, so the HTTP status and MLflow's `error_code` stay inspectable in logs
//! without MLflow's vocabulary leaking into callers' code.

use std::time::Duration;

use wharf_core::WharfError;

/// The adapter name used in every [`WharfError::Backend`] this crate produces.
pub(crate) const ADAPTER: &str = "mlflow";

/// What went wrong talking to MLflow.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MlflowError {
    /// MLflow answered with its JSON error envelope.
    #[error("{operation}: HTTP {status} {code}: {message}")]
    Api { operation: String, status: u16, code: String, message: String, retry_after: Option<Duration> },
    /// An error status without the JSON envelope (Flask's HTML 404/405, a proxy's page).
    #[error("{operation}: HTTP {status}: {body}")]
    Http { operation: String, status: u16, body: String, retry_after: Option<Duration> },
    /// The request never got an answer: connection refused, reset, timed out.
    #[error("{operation}: {source}")]
    Transport {
        operation: String,
        #[source]
        source: reqwest::Error,
    },
    /// A 200 answer whose body is not what the API documents.
    #[error("{operation}: unexpected response body: {source}")]
    Decode {
        operation: String,
        #[source]
        source: serde_json::Error,
    },
}

impl MlflowError {
    /// MLflow's `error_code`, when the server sent one.
    pub(crate) fn code(&self) -> Option<&str> {
        match self {
            MlflowError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// True when the server could not be reached or was overloaded or broken (no answer,
    /// 429, 5xx): the request may succeed later. This drives retries and the spool fallback.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            MlflowError::Transport { .. } => true,
            MlflowError::Api { status, .. } | MlflowError::Http { status, .. } => *status == 429 || *status >= 500,
            MlflowError::Decode { .. } => false,
        }
    }
}

impl From<MlflowError> for WharfError {
    fn from(err: MlflowError) -> WharfError {
        match &err {
            // MLflow's own message names the run, model or version, which is what a caller needs.
            MlflowError::Api { code, message, .. } if code == "RESOURCE_DOES_NOT_EXIST" => {
                WharfError::not_found(message.clone())
            }
            MlflowError::Api { code, message, operation, .. } if code == "INVALID_PARAMETER_VALUE" => {
                WharfError::invalid(operation.clone(), message.clone())
            }
            _ => {
                let summary = match &err {
                    MlflowError::Transport { operation, .. } => format!("{operation}: MLflow server unreachable"),
                    MlflowError::Api { operation, status, code, .. } => format!("{operation}: HTTP {status} {code}"),
                    MlflowError::Http { operation, status, .. } => format!("{operation}: HTTP {status}"),
                    MlflowError::Decode { operation, .. } => format!("{operation}: unexpected response"),
                };
                WharfError::backend(ADAPTER, summary, Some(Box::new(err)))
            }
        }
    }
}

/// `err` with the URL it carries masked by the one redaction rule ([`wharf_core::redact`]):
/// reqwest's message quotes the URL, userinfo (a live basic-auth credential) included.
pub(crate) fn scrub(err: reqwest::Error) -> reqwest::Error {
    let Some(url) = err.url() else { return err };
    match url::Url::parse(&wharf_core::redact::url(url.as_str())) {
        Ok(masked) => err.with_url(masked),
        Err(_) => err.without_url(),
    }
}

/// True when `err` came from MLflow being unreachable or failing server-side (see
/// [`MlflowError::is_transient`]): the tracker spools instead of failing in that case.
pub(crate) fn is_unavailable(err: &WharfError) -> bool {
    match err {
        WharfError::Backend { source: Some(source), .. } => {
            source.downcast_ref::<MlflowError>().is_some_and(MlflowError::is_transient)
        }
        _ => false,
    }
}
