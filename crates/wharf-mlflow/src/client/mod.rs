//! A typed, blocking client for the parts of MLflow's REST API Wharf uses.
//!
//! Shapes follow MLflow 3.17 as observed on a real server, including its quirks: empty lists
//! are omitted from answers (every list field is `#[serde(default)]`), NaN travels as the
//! string `"NaN"`, an unknown alias is a 400 rather than a 404, deleting an alias needs a JSON
//! body, and an unknown run status is silently ignored (so statuses are typed here).
//!
//! Every method returns [`wharf_core::Result`]; MLflow's `RESOURCE_DOES_NOT_EXIST` becomes
//! [`WharfError::NotFound`], `INVALID_PARAMETER_VALUE` becomes [`WharfError::InvalidInput`],
//! and everything else a [`WharfError::Backend`] carrying the HTTP status and `error_code`.
//!
//!
//! One concern per file: `transport` sends and retries, `dto` holds the JSON shapes,
//! and the endpoints are grouped as MLflow groups them: tracking (experiments and runs),
//! artifacts, and the model registry.

use std::time::Duration;

use reqwest::blocking::Client;
use url::Url;
use wharf_core::{Result, WharfError};

use crate::error::ADAPTER;

mod artifacts;
mod dto;
mod registry;
mod tracking;
mod transport;

pub use artifacts::{proxy_path, MAX_DOWNLOAD_BYTES};
pub use dto::*;
/// The retry policy every request goes through (re-exported from [`wharf_core::retry`]).
pub use wharf_core::retry::RetryPolicy;

/// 3 retries from 200 ms up to 2 s apart, jittered, none started after a minute: enough to
/// ride out a server restart without stalling a training job for long.
pub fn default_retry() -> RetryPolicy {
    RetryPolicy::default()
        .max_retries(3)
        .initial_delay(Duration::from_millis(200))
        .max_delay(Duration::from_secs(2))
        .max_elapsed(Duration::from_secs(60))
}

/// Most metrics MLflow accepts in one `runs/log-batch`.
pub const MAX_BATCH_METRICS: usize = 1000;
/// Most params MLflow accepts in one `runs/log-batch`.
pub const MAX_BATCH_PARAMS: usize = 100;
/// Most tags MLflow accepts in one `runs/log-batch`.
pub const MAX_BATCH_TAGS: usize = 100;
/// Most entities (metrics + params + tags) in one `runs/log-batch`.
pub const MAX_BATCH_ENTITIES: usize = 1000;
/// MLflow refuses batch requests over 1 MB; stay clearly below it.
const MAX_BATCH_BYTES: usize = 900_000;

/// How the client authenticates.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Auth {
    /// No credentials.
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// HTTP basic auth (MLflow's `basic-auth` app).
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
}

impl std::fmt::Debug for Auth {
    // Credentials never appear in logs or error messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Bearer(_) => f.write_str("Bearer(***)"),
            Auth::Basic { username, .. } => write!(f, "Basic({username}:***)"),
        }
    }
}

impl Auth {
    /// Credentials from MLflow's own environment variables, as its Python client reads them:
    /// `MLFLOW_TRACKING_TOKEN` (bearer) wins over `MLFLOW_TRACKING_USERNAME` /
    /// `MLFLOW_TRACKING_PASSWORD` (basic).
    pub fn from_env() -> Auth {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if let Some(token) = var("MLFLOW_TRACKING_TOKEN") {
            return Auth::Bearer(token);
        }
        match (var("MLFLOW_TRACKING_USERNAME"), var("MLFLOW_TRACKING_PASSWORD")) {
            (Some(username), Some(password)) => Auth::Basic { username, password },
            _ => Auth::None,
        }
    }
}

/// A blocking MLflow REST client. Cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct MlflowClient {
    http: Client,
    /// The server's base URL, always ending in `/`.
    base: Url,
    auth: Auth,
    retry: RetryPolicy,
}

impl MlflowClient {
    /// A client for the server at `uri` (`http://127.0.0.1:5000`, or with a path prefix), with
    /// a per-request `timeout` and credentials from the environment ([`Auth::from_env`]).
    pub fn new(uri: &str, timeout: Duration) -> Result<MlflowClient> {
        let mut base = Url::parse(uri.trim()).map_err(|e| {
            WharfError::config("mlflow.uri", format!("'{}' is not a URL: {e}", wharf_core::redact::url(uri)))
        })?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(WharfError::config(
                "mlflow.uri",
                format!("'{}' must be an http:// or https:// URL", wharf_core::redact::url(uri)),
            ));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("wharf-mlflow/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| WharfError::backend(ADAPTER, "could not build the HTTP client", Some(Box::new(e))))?;
        Ok(MlflowClient { http, base, auth: Auth::from_env(), retry: default_retry() })
    }

    /// Uses `auth` instead of the environment's credentials.
    pub fn with_auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Uses `retry` instead of the default (3 retries from 200 ms).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &Url {
        &self.base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_is_never_printed() {
        let a = Auth::Basic { username: "u".into(), password: "secret".into() };
        assert!(!format!("{a:?}").contains("secret"));
        assert!(!format!("{:?}", Auth::Bearer("tok".into())).contains("tok"));
    }
}
