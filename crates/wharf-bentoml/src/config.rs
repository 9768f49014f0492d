//! `[serving.bentoml]`: this adapter's own configuration table, read from the core's raw
//! table so the core never names BentoML's settings.

use serde::{Deserialize, Serialize};
use wharf_core::config::lenient;
use wharf_core::{Result, WharfConfig};

/// The model server's table.
pub const KEY: &str = "serving.bentoml";

/// `[serving.bentoml]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct BentoMlConfig {
    /// Service base URL.
    pub url: Option<String>,
    /// API (endpoint) name.
    pub api: String,
    /// Request timeout in milliseconds.
    #[serde(deserialize_with = "lenient::u64")]
    pub timeout_ms: u64,
    /// Largest batch sent in one request.
    #[serde(deserialize_with = "lenient::u64")]
    pub max_batch: u64,
    /// API answering class probabilities; empty when the service has none.
    pub proba_api: String,
    /// The API parameter the records are sent under (`{"<input_field>": ...}`).
    pub input_field: String,
    /// How the records are laid out under `input_field`.
    pub payload: BentoMlPayload,
    /// An extra header sent with every request, as `Name: value` (`Authorization: Bearer …`).
    pub auth_header: Option<String>,
    /// Extra attempts after a connection error or a 503 (other failures are not retried).
    #[serde(deserialize_with = "lenient::u64")]
    pub retries: u64,
    /// Consecutive connection failures after which calls fail fast without touching the network.
    #[serde(deserialize_with = "lenient::u64")]
    pub breaker_failures: u64,
    /// How long calls fail fast once the breaker has opened, in milliseconds.
    #[serde(deserialize_with = "lenient::u64")]
    pub breaker_cooldown_ms: u64,
}

/// The JSON shape of the records sent to a BentoML API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum BentoMlPayload {
    /// A list of feature lists in signature order: an `np.ndarray` or `list[list[float]]` parameter.
    Matrix,
    /// A list of objects keyed by feature name: a `list[<pydantic model>]` parameter.
    Records,
}

impl Default for BentoMlConfig {
    fn default() -> Self {
        BentoMlConfig {
            url: None,
            api: "predict".into(),
            timeout_ms: 10_000,
            max_batch: 1_000,
            proba_api: "predict_proba".into(),
            input_field: "input_data".into(),
            payload: BentoMlPayload::Matrix,
            auth_header: None,
            retries: 2,
            breaker_failures: 5,
            breaker_cooldown_ms: 5_000,
        }
    }
}

impl BentoMlConfig {
    /// `[serving.bentoml]` of `config`; a bad value is an error naming its full key (or the
    /// environment variable that set it).
    pub fn from_wharf(config: &WharfConfig) -> Result<BentoMlConfig> {
        config.adapter(KEY)
    }
}
