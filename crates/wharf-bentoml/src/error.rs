//! The adapter's private error type. Callers see [`WharfError`]; this type travels as its
//! `source`, so the HTTP status and BentoML's body stay inspectable in logs.

use std::time::Duration;

use wharf_core::WharfError;

/// `err` with the URL it carries masked by the one redaction rule ([`wharf_core::redact`]):
/// reqwest's message quotes the URL, userinfo (a live basic-auth credential) included.
pub(crate) fn scrub(err: reqwest::Error) -> reqwest::Error {
    let Some(url) = err.url() else { return err };
    match url::Url::parse(&wharf_core::redact::url(url.as_str())) {
        Ok(masked) => err.with_url(masked),
        Err(_) => err.without_url(),
    }
}

/// The adapter name used in every [`WharfError::Backend`] this crate produces.
pub(crate) const ADAPTER: &str = "bentoml";

/// What went wrong talking to BentoML.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BentoError {
    /// No answer: connection refused or reset, DNS, TLS.
    #[error("{endpoint}: cannot reach BentoML: {source}")]
    Connect {
        endpoint: String,
        #[source]
        source: reqwest::Error,
    },
    /// No answer within `serving.bentoml.timeout_ms`.
    #[error("{endpoint}: no answer within {timeout:?}")]
    Timeout { endpoint: String, timeout: Duration },
    /// The breaker is open: recent calls could not reach the service, so this one was not tried.
    #[error(
        "{endpoint}: circuit open after {failures} consecutive connection failures; not retrying for {remaining:?}"
    )]
    CircuitOpen { endpoint: String, failures: u64, remaining: Duration },
    /// BentoML refused the input (400/422 with pydantic's `detail`).
    #[error("{endpoint}: BentoML refused the input (HTTP {status}): {message}")]
    Rejected { endpoint: String, status: u16, path: String, message: String },
    /// Any other error status.
    #[error("{endpoint}: HTTP {status}: {message}")]
    Status { endpoint: String, status: u16, message: String },
    /// A 200 answer that is not what the model's task needs.
    #[error("{endpoint}: unexpected answer: {message}")]
    Decode { endpoint: String, message: String },
}

impl From<BentoError> for WharfError {
    fn from(err: BentoError) -> WharfError {
        match err {
            // The caller's records are at fault: say so in the caller's vocabulary, quoting BentoML.
            BentoError::Rejected { ref path, .. } => WharfError::invalid(path.clone(), err.to_string()),
            other => WharfError::backend(ADAPTER, other.to_string(), Some(Box::new(other))),
        }
    }
}
