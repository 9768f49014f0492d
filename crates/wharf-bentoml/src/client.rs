//! The HTTP side: one pooled blocking client, bounded retries, and a circuit breaker.
//!
//! Retries cover only failures where nothing was computed (no connection, 503 "not ready"):
//! a 4xx will not change on retry and a 500 may be an expensive model failing again.
//! The breaker exists so a dead service costs callers one fast error instead of a connect
//! attempt (and its retries) per request.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, Response};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::StatusCode;
use serde_json::Value;
use url::Url;
use wharf_core::retry::{parse_retry_after, retry, Call, Failure, RetryPolicy};
use wharf_core::{Result, WharfError};

use crate::error::BentoError;

/// The largest answer read from the service.
const MAX_ANSWER_BYTES: u64 = 256 << 20;
/// The most bytes of an error answer read.
const MAX_ERROR_BODY_BYTES: u64 = 64 << 10;

/// Settings the client needs, already checked.
#[derive(Clone)]
pub(crate) struct ClientSettings {
    pub(crate) base: Url,
    pub(crate) timeout: Duration,
    pub(crate) auth_header: Option<(HeaderName, HeaderValue)>,
    pub(crate) retry: RetryPolicy,
    pub(crate) breaker_failures: u64,
    pub(crate) breaker_cooldown: Duration,
}

impl std::fmt::Debug for ClientSettings {
    // The URL's userinfo and the header's value are credentials: the one redaction rule.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSettings")
            .field("base", &wharf_core::redact::url(self.base.as_str()))
            .field("timeout", &self.timeout)
            .field("auth_header", &self.auth_header.as_ref().map(|(name, _)| wharf_core::redact::header(name.as_str())))
            .field("retry", &self.retry)
            .field("breaker_failures", &self.breaker_failures)
            .field("breaker_cooldown", &self.breaker_cooldown)
            .finish()
    }
}

#[derive(Debug, Default)]
struct BreakerState {
    consecutive_failures: u64,
    open_until: Option<Instant>,
}

/// Talks to one BentoML service.
#[derive(Debug)]
pub(crate) struct BentoClient {
    http: Client,
    settings: ClientSettings,
    breaker: Mutex<BreakerState>,
}

/// Why one attempt failed, before the retry policy looks at it.
enum Failed {
    /// No answer (connection refused, timeout) or the breaker is open.
    Unreachable(BentoError),
    /// 503: the service is up but not ready; nothing was computed. Boxed: a response is
    /// large next to the other failures.
    NotReady(Box<Response>),
}

/// Predictions compute and store nothing, so every call is idempotent; what limits retries
/// is cost. A refused connection or a 503 computed nothing: retried. A timeout may still be
/// running remotely, and retrying would pile up work and overrun the caller's budget; an
/// open breaker means "do not touch the network": neither is retried.
fn classify(failed: &Failed) -> Failure {
    match failed {
        Failed::Unreachable(BentoError::Connect { .. }) => Failure::NotSent { retry_after: None },
        Failed::Unreachable(_) => Failure::Fatal,
        Failed::NotReady(response) => Failure::NotSent {
            retry_after: response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after),
        },
    }
}

impl BentoClient {
    pub(crate) fn new(settings: ClientSettings) -> Result<Self> {
        let mut headers = HeaderMap::new();
        if let Some((name, value)) = &settings.auth_header {
            let mut value = value.clone();
            value.set_sensitive(true);
            headers.insert(name.clone(), value);
        }
        let http = Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .default_headers(headers)
            .user_agent(concat!("wharf-bentoml/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                WharfError::backend(crate::error::ADAPTER, "cannot build the HTTP client", Some(Box::new(e)))
            })?;
        Ok(BentoClient { http, settings, breaker: Mutex::new(BreakerState::default()) })
    }

    pub(crate) fn base(&self) -> &Url {
        &self.settings.base
    }

    fn endpoint(&self, path: &str) -> Result<Url> {
        self.settings
            .base
            .join(path.trim_start_matches('/'))
            .map_err(|e| WharfError::config("serving.bentoml.api", format!("'{path}' does not make a URL: {e}")))
    }

    /// Fails fast while the breaker is open.
    fn check_breaker(&self, endpoint: &str) -> std::result::Result<(), BentoError> {
        let state = self.breaker.lock().unwrap_or_else(|p| p.into_inner());
        match state.open_until {
            Some(until) if Instant::now() < until => Err(BentoError::CircuitOpen {
                endpoint: endpoint.to_string(),
                failures: state.consecutive_failures,
                remaining: until.saturating_duration_since(Instant::now()),
            }),
            _ => Ok(()),
        }
    }

    fn record_reachable(&self) {
        let mut state = self.breaker.lock().unwrap_or_else(|p| p.into_inner());
        *state = BreakerState::default();
    }

    fn record_unreachable(&self) {
        let mut state = self.breaker.lock().unwrap_or_else(|p| p.into_inner());
        state.consecutive_failures += 1;
        if self.settings.breaker_failures > 0 && state.consecutive_failures >= self.settings.breaker_failures {
            // Half-open after the cool-down: the next call goes out; one more failure re-opens.
            state.open_until = Some(Instant::now() + self.settings.breaker_cooldown);
            tracing::warn!(
                failures = state.consecutive_failures,
                cooldown_ms = self.settings.breaker_cooldown.as_millis() as u64,
                "BentoML unreachable: circuit open"
            );
        }
    }

    /// One POST; the breaker is consulted before it and told how it went.
    fn attempt(&self, url: &Url, endpoint: &str, body: &Value) -> std::result::Result<Response, Failed> {
        self.check_breaker(endpoint).map_err(Failed::Unreachable)?;
        match self.http.post(url.clone()).json(body).send() {
            Ok(response) => {
                self.record_reachable();
                if response.status() == StatusCode::SERVICE_UNAVAILABLE {
                    Err(Failed::NotReady(Box::new(response)))
                } else {
                    Ok(response)
                }
            }
            Err(e) => {
                self.record_unreachable();
                Err(Failed::Unreachable(if e.is_timeout() {
                    BentoError::Timeout { endpoint: endpoint.to_string(), timeout: self.settings.timeout }
                } else {
                    BentoError::Connect { endpoint: endpoint.to_string(), source: crate::error::scrub(e) }
                }))
            }
        }
    }

    /// POSTs `body` to API `api` and returns the decoded JSON answer.
    pub(crate) fn call(&self, api: &str, body: &Value) -> Result<Value> {
        let url = self.endpoint(api)?;
        let endpoint = url.path().to_string();
        let outcome = retry(&self.settings.retry, Call::Idempotent, classify, |_| self.attempt(&url, &endpoint, body));
        let response = match outcome {
            Ok(response) => response,
            Err(Failed::NotReady(response)) => *response,
            Err(Failed::Unreachable(err)) => return Err(err.into()),
        };
        decode(&endpoint, response).map_err(Into::into)
    }

    /// `GET /readyz` answers 200 (within a short time; readiness probes must not hang).
    pub(crate) fn ready(&self) -> bool {
        let Ok(url) = self.endpoint("readyz") else { return false };
        if self.check_breaker(url.path()).is_err() {
            return false;
        }
        let timeout = self.settings.timeout.min(Duration::from_secs(2));
        match self.http.get(url).timeout(timeout).send() {
            Ok(r) => {
                self.record_reachable();
                r.status() == StatusCode::OK
            }
            Err(_) => {
                self.record_unreachable();
                false
            }
        }
    }
}

/// Turns an answer into JSON or the matching error.
fn decode(endpoint: &str, response: Response) -> std::result::Result<Value, BentoError> {
    let status = response.status();
    // Read with a cap (answers of the largest batch are far below it), into one buffer.
    let limit = if status.is_success() { MAX_ANSWER_BYTES } else { MAX_ERROR_BODY_BYTES };
    let announced = if status.is_success() { response.content_length() } else { None };
    // An error page is cut at its cap rather than refused: its start is what explains it.
    let cut = if status.is_success() { limit + 1 } else { limit };
    let body = wharf_core::bounded::read_capped(std::io::Read::take(response, cut), announced, limit)
        .map_err(|e| BentoError::Decode { endpoint: endpoint.into(), message: e.to_string() })?;
    let text = String::from_utf8_lossy(&body);
    if status.is_success() {
        return serde_json::from_str(&text)
            .map_err(|e| BentoError::Decode { endpoint: endpoint.into(), message: format!("not JSON ({e})") });
    }
    let json: Option<Value> = serde_json::from_str(&text).ok();
    let code = status.as_u16();
    match status {
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {
            let (path, message) = json.as_ref().map(rejection).unwrap_or_else(|| (endpoint.into(), short(&text)));
            Err(BentoError::Rejected { endpoint: endpoint.into(), status: code, path, message })
        }
        StatusCode::NOT_FOUND => Err(BentoError::Status {
            endpoint: endpoint.into(),
            status: code,
            message: format!("{}: the service has no such API (check serving.bentoml.api / proba_api)", short(&text)),
        }),
        StatusCode::METHOD_NOT_ALLOWED => Err(BentoError::Status {
            endpoint: endpoint.into(),
            status: code,
            message: format!("{}: this path is not a BentoML API (check serving.bentoml.api)", short(&text)),
        }),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(BentoError::Status {
            endpoint: endpoint.into(),
            status: code,
            message: format!("{}: check serving.bentoml.auth_header", short(&text)),
        }),
        _ => {
            let message = json
                .as_ref()
                .and_then(|j| j.get("error"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| short(&text));
            Err(BentoError::Status { endpoint: endpoint.into(), status: code, message })
        }
    }
}

/// `(path, message)` from BentoML's 400 body: `{"error": "...", "detail": [{"loc": [...], "msg": "..."}]}`.
fn rejection(body: &Value) -> (String, String) {
    let error = body.get("error").and_then(Value::as_str).unwrap_or("invalid input").to_string();
    let details: Vec<(String, String)> = body
        .get("detail")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|d| {
                    let loc = d
                        .get("loc")
                        .and_then(Value::as_array)
                        .map(|l| {
                            l.iter()
                                .map(|p| p.as_str().map(str::to_string).unwrap_or_else(|| p.to_string()))
                                .collect::<Vec<_>>()
                                .join(".")
                        })
                        .unwrap_or_default();
                    let msg = d.get("msg").and_then(Value::as_str).unwrap_or("invalid").to_string();
                    (loc, msg)
                })
                .collect()
        })
        .unwrap_or_default();
    let path =
        details.first().map(|(loc, _)| loc.clone()).filter(|l| !l.is_empty()).unwrap_or_else(|| "records".into());
    if details.is_empty() {
        return (path, error);
    }
    let listed: Vec<String> =
        details.iter().map(|(loc, msg)| if loc.is_empty() { msg.clone() } else { format!("{loc}: {msg}") }).collect();
    (path, format!("{error}: {}", listed.join("; ")))
}

/// A body cut to one readable line for error messages.
fn short(text: &str) -> String {
    let line = text.trim().replace('\n', " ");
    if line.chars().count() > 300 {
        format!("{}…", line.chars().take(300).collect::<String>())
    } else if line.is_empty() {
        "(empty body)".into()
    } else {
        line
    }
}
