//! Sending requests: authentication, retries (through [`wharf_core::retry`]) and turning
//! MLflow's error envelope into errors.
//!
//! Requests are retried with backoff and jitter on 429, 5xx and transport errors, but only
//! when repeating them cannot duplicate anything: creations are retried only when the
//! connection was never made or the server turned them away (429).

use std::io::Read;

use reqwest::blocking::{RequestBuilder, Response};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use url::Url;
use wharf_core::bounded::read_capped;
use wharf_core::retry::{parse_retry_after, retry, Call, Failure};

/// The largest JSON answer read from the REST API (a search page of versions with their
/// tags is well under this).
const MAX_ANSWER_BYTES: u64 = 64 << 20;
/// The most bytes of an error answer read.
const MAX_ERROR_BODY_BYTES: u64 = 64 << 10;
use wharf_core::{Result, WharfError};

use super::{Auth, MlflowClient};
use crate::error::{scrub, MlflowError, ADAPTER};

impl MlflowClient {
    pub(super) fn url(&self, path: &str) -> Result<Url> {
        self.base
            .join(path)
            .map_err(|e| WharfError::backend(ADAPTER, format!("bad request path '{path}'"), Some(Box::new(e))))
    }

    pub(super) fn api(&self, endpoint: &str) -> Result<Url> {
        self.url(&format!("api/2.0/mlflow/{endpoint}"))
    }

    /// Sends a request built by `build`, retrying per the client's policy (only what
    /// `call` allows: see [`classify`]), and returns the successful response (any 2xx).
    pub(super) fn send(&self, operation: &str, call: Call, build: impl Fn() -> RequestBuilder) -> Result<Response> {
        retry(&self.retry, call, classify, |_| {
            let request = match &self.auth {
                Auth::None => build(),
                Auth::Bearer(token) => build().bearer_auth(token),
                Auth::Basic { username, password } => build().basic_auth(username, Some(password)),
            };
            match request.send() {
                Ok(resp) if resp.status().is_success() => Ok(resp),
                Ok(resp) => Err(error_from_response(operation, resp)),
                Err(source) => Err(MlflowError::Transport { operation: operation.to_string(), source: scrub(source) }),
            }
        })
        .map_err(|err| {
            tracing::debug!(operation, error = %err, "MLflow request failed");
            err.into()
        })
    }

    pub(super) fn decode<T: DeserializeOwned>(operation: &str, resp: Response) -> Result<T> {
        let announced = resp.content_length();
        let bytes = read_capped(resp, announced, MAX_ANSWER_BYTES).map_err(|e| {
            WharfError::backend(ADAPTER, format!("{operation}: unreadable answer: {e}"), Some(Box::new(e)))
        })?;
        // An empty body stands for `{}` (artifact uploads answer with no body at all).
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
        serde_json::from_slice(bytes)
            .map_err(|source| MlflowError::Decode { operation: operation.to_string(), source }.into())
    }

    pub(super) fn get<T: DeserializeOwned>(&self, endpoint: &str, query: &[(&str, &str)]) -> Result<T> {
        let url = self.api(endpoint)?;
        let resp = self.send(endpoint, Call::Idempotent, || self.http.get(url.clone()).query(query))?;
        Self::decode(endpoint, resp)
    }

    pub(super) fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        endpoint: &str,
        call: Call,
        body: &serde_json::Value,
    ) -> Result<T> {
        let url = self.api(endpoint)?;
        // `json` sets `Content-Type: application/json`, without which MLflow answers 400.
        let resp = self.send(endpoint, call, || self.http.request(method.clone(), url.clone()).json(body))?;
        Self::decode(endpoint, resp)
    }

    pub(super) fn post<T: DeserializeOwned>(&self, endpoint: &str, body: &serde_json::Value) -> Result<T> {
        self.call(Method::POST, endpoint, Call::Idempotent, body)
    }

    pub(super) fn create<T: DeserializeOwned>(&self, endpoint: &str, body: &serde_json::Value) -> Result<T> {
        self.call(Method::POST, endpoint, Call::NotIdempotent, body)
    }
}

/// What a failed request means for a retry: a refused connection or a 429 never reached
/// MLflow's handlers; a timeout or a 5xx may have (so creations are not repeated after one).
fn classify(err: &MlflowError) -> Failure {
    match err {
        MlflowError::Transport { source, .. } if source.is_connect() => Failure::NotSent { retry_after: None },
        MlflowError::Transport { .. } => Failure::MaybeSent { retry_after: None },
        MlflowError::Api { status: 429, retry_after, .. } | MlflowError::Http { status: 429, retry_after, .. } => {
            Failure::NotSent { retry_after: *retry_after }
        }
        MlflowError::Api { status, retry_after, .. } | MlflowError::Http { status, retry_after, .. }
            if *status >= 500 =>
        {
            Failure::MaybeSent { retry_after: *retry_after }
        }
        _ => Failure::Fatal,
    }
}

/// True when `err` carries MLflow's `error_code` `code`.
pub(crate) fn has_code(err: &WharfError, code: &str) -> bool {
    match err {
        WharfError::Backend { source: Some(source), .. } => {
            source.downcast_ref::<MlflowError>().and_then(MlflowError::code) == Some(code)
        }
        _ => false,
    }
}

pub(super) fn error_from_response(operation: &str, resp: Response) -> MlflowError {
    #[derive(Deserialize)]
    struct Envelope {
        error_code: String,
        #[serde(default)]
        message: String,
    }
    let status = resp.status().as_u16();
    let retry_after =
        resp.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
    // Only the start of an error page is read (a misbehaving proxy may send megabytes).
    let text = read_capped(resp.take(MAX_ERROR_BODY_BYTES), None, MAX_ERROR_BODY_BYTES)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    match serde_json::from_str::<Envelope>(&text) {
        Ok(env) => MlflowError::Api {
            operation: operation.to_string(),
            status,
            code: env.error_code,
            // The ALREADY_EXISTS message for experiments embeds raw SQL; keep messages short.
            message: truncate(&env.message, 500),
            retry_after,
        },
        Err(_) => {
            MlflowError::Http { operation: operation.to_string(), status, body: truncate(&text, 200), retry_after }
        }
    }
}

pub(super) fn truncate(text: &str, max: usize) -> String {
    let text = text.trim();
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}
