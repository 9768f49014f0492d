//! Where RunEvents go: an HTTP receiver, a JSON-lines file, or stdout.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::OpenLineageConfig;
use wharf_core::retry::{parse_retry_after, retry, Call, Failure, RetryPolicy};
use wharf_core::{Result, WharfError};

use crate::event::RunEvent;

/// The adapter's name in errors and reports.
pub(crate) const ADAPTER: &str = "openlineage";

/// First pause between attempts; it doubles on each retry, up to [`MAX_BACKOFF`].
const BASE_BACKOFF: Duration = Duration::from_millis(100);
/// Longest computed pause between attempts, so a retrying emitter never stalls a job for long.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Longest time one event may spend in retries before it is spooled (or fails, when strict).
const MAX_RETRYING: Duration = Duration::from_secs(30);

/// Why the HTTP transport could not deliver an event. Private: callers see
/// [`WharfError::Backend`] with this as the source.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    /// No answer: connection refused, DNS, timeout.
    #[error("receiver unreachable at {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The receiver answered 5xx (or 429, too many requests) on every attempt.
    #[error("receiver failed with HTTP {status} after {attempts} attempt(s): {body}")]
    ServerError { status: u16, attempts: u32, body: String, retry_after: Option<Duration> },
    /// The receiver refused the event (4xx): retrying the same event cannot help.
    #[error("receiver rejected the event with HTTP {status}: {body}")]
    Rejected { status: u16, body: String },
    /// The event could not be serialized or compressed.
    #[error("could not encode the event: {0}")]
    Encode(String),
}

impl SendError {
    /// True when the receiver could not be reached or kept failing: the event may go
    /// through later, so it is worth spooling.
    pub(crate) fn is_transient(&self) -> bool {
        matches!(self, SendError::Unreachable { .. } | SendError::ServerError { .. })
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

/// How request bodies are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain JSON.
    None,
    /// `Content-Encoding: gzip`.
    Gzip,
}

/// POSTs events to `{url}/{endpoint}`.
pub struct HttpTransport {
    client: reqwest::blocking::Client,
    endpoint: url::Url,
    api_key: Option<String>,
    compression: Compression,
    retry: RetryPolicy,
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The API key stays out of logs and panics.
        f.debug_struct("HttpTransport")
            .field("endpoint", &wharf_core::redact::url(self.endpoint.as_str()))
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("compression", &self.compression)
            .field("retry", &self.retry)
            .finish()
    }
}

impl HttpTransport {
    /// The transport `config` describes; a missing or malformed URL is a config error
    /// naming `lineage.openlineage.url`.
    pub fn from_config(config: &OpenLineageConfig) -> Result<HttpTransport> {
        let raw = config.url.as_deref().map(str::trim).filter(|u| !u.is_empty()).ok_or_else(|| {
            WharfError::config(
                "lineage.openlineage.url",
                "the http transport needs a receiver URL (or OPENLINEAGE_URL)",
            )
        })?;
        let base = url::Url::parse(raw).map_err(|e| {
            WharfError::config(
                "lineage.openlineage.url",
                format!("'{}' is not a URL: {e}", wharf_core::redact::url(raw)),
            )
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(WharfError::config(
                "lineage.openlineage.url",
                format!("'{}' is not an http(s) URL", wharf_core::redact::url(raw)),
            ));
        }
        let endpoint_text = format!("{}/{}", raw.trim_end_matches('/'), config.endpoint.trim_start_matches('/'));
        let endpoint = url::Url::parse(&endpoint_text).map_err(|e| {
            WharfError::config(
                "lineage.openlineage.endpoint",
                format!("'{}' does not join to a URL: {e}", config.endpoint),
            )
        })?;
        let compression = match config.compression.trim().to_ascii_lowercase().as_str() {
            "" | "none" => Compression::None,
            "gzip" => Compression::Gzip,
            other => {
                return Err(WharfError::config(
                    "lineage.openlineage.compression",
                    format!("unknown compression '{other}' (expected none or gzip)"),
                ))
            }
        };
        if config.timeout_ms == 0 {
            return Err(WharfError::config("lineage.openlineage.timeout_ms", "must be above 0"));
        }
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .user_agent(concat!("wharf-openlineage/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| WharfError::backend(ADAPTER, "could not build the HTTP client", Some(Box::new(e))))?;
        Ok(HttpTransport {
            client,
            endpoint,
            api_key: config.api_key.clone().filter(|k| !k.is_empty()),
            compression,
            retry: RetryPolicy::default()
                .max_retries(u32::try_from(config.retries).unwrap_or(u32::MAX).min(10))
                .initial_delay(BASE_BACKOFF)
                .max_delay(MAX_BACKOFF)
                .max_elapsed(MAX_RETRYING),
        })
    }

    /// The URL events are POSTed to.
    pub fn endpoint(&self) -> &url::Url {
        &self.endpoint
    }

    /// Sends one event, retrying with jittered exponential backoff on connection errors, 429
    /// and 5xx answers only (another 4xx means the same request will be refused again).
    pub(crate) fn send(&self, event: &RunEvent) -> std::result::Result<(), SendError> {
        let json = serde_json::to_vec(event).map_err(|e| SendError::Encode(e.to_string()))?;
        let body = match self.compression {
            Compression::None => json,
            Compression::Gzip => gzip(&json).map_err(|e| SendError::Encode(e.to_string()))?,
        };
        // A RunEvent is identified by its run id, type and time, and receivers store it once:
        // repeating one that may have arrived is harmless.
        let mut attempts = 0u32;
        let outcome = retry(&self.retry, Call::Idempotent, classify, |_| {
            attempts += 1;
            self.post(&body)
        });
        outcome.map_err(|e| match e {
            SendError::ServerError { status, body, retry_after, .. } => {
                SendError::ServerError { status, body, attempts, retry_after }
            }
            other => other,
        })
    }

    fn post(&self, body: &[u8]) -> std::result::Result<(), SendError> {
        let mut request = self
            .client
            .post(self.endpoint.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        if self.compression == Compression::Gzip {
            request = request.header(reqwest::header::CONTENT_ENCODING, "gzip");
        }
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().map_err(|source| SendError::Unreachable {
            url: wharf_core::redact::url(self.endpoint.as_str()),
            source: scrub(source),
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        // The body helps diagnose a refusal (a validating receiver names the bad field), but
        // it is cut short: a misbehaving server must not flood the logs.
        let mut text = wharf_core::bounded::read_capped(std::io::Read::take(response, 64 << 10), None, 64 << 10)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        if text.len() > 500 {
            let cut = (0..=500).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
            text.truncate(cut);
        }
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Err(SendError::ServerError { status: status.as_u16(), attempts: 1, body: text, retry_after })
        } else {
            Err(SendError::Rejected { status: status.as_u16(), body: text })
        }
    }
}

/// An unreachable receiver (refused connection) never saw the event; a timeout or a 5xx may
/// have stored it; a 429 turned it away; any other 4xx will be refused again.
fn classify(err: &SendError) -> Failure {
    match err {
        SendError::Unreachable { source, .. } if source.is_connect() => Failure::NotSent { retry_after: None },
        SendError::Unreachable { .. } => Failure::MaybeSent { retry_after: None },
        SendError::ServerError { status: 429, retry_after, .. } => Failure::NotSent { retry_after: *retry_after },
        SendError::ServerError { retry_after, .. } => Failure::MaybeSent { retry_after: *retry_after },
        SendError::Rejected { .. } | SendError::Encode(_) => Failure::Fatal,
    }
}

fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes)?;
    encoder.finish()
}

/// The transport an emitter writes through.
#[derive(Debug)]
pub enum Transport {
    /// POST to a receiver.
    Http(HttpTransport),
    /// Append JSON lines to a file.
    File(PathBuf),
    /// Print JSON lines to stdout.
    Console,
}

impl Transport {
    /// The transport `config.transport` names; an unknown name is a config error naming
    /// `lineage.openlineage.transport`.
    pub fn from_config(config: &OpenLineageConfig) -> Result<Transport> {
        match config.transport.trim().to_ascii_lowercase().as_str() {
            "http" => Ok(Transport::Http(HttpTransport::from_config(config)?)),
            "file" => Ok(Transport::File(config.path.clone())),
            "console" => Ok(Transport::Console),
            other => Err(WharfError::config(
                "lineage.openlineage.transport",
                format!("unknown transport '{other}' (expected http, file or console)"),
            )),
        }
    }

    /// Short name for reports (`http`, `file`, `console`).
    pub fn kind(&self) -> &'static str {
        match self {
            Transport::Http(_) => "http",
            Transport::File(_) => "file",
            Transport::Console => "console",
        }
    }
}

/// One event as a JSON line.
pub(crate) fn json_line(event: &RunEvent) -> Result<String> {
    serde_json::to_string(event).map_err(|e| WharfError::invalid("event", e.to_string()))
}

/// Writes `line` to stdout under its lock, so concurrent emitters never interleave.
pub(crate) fn print_line(line: &str) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| WharfError::backend(ADAPTER, "could not write to stdout", Some(Box::new(e))))
}
