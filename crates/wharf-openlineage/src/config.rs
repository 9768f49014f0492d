//! `[lineage.openlineage]`: this adapter's own configuration table, read from the core's
//! raw table so the core never names OpenLineage's settings.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use wharf_core::config::lenient;
use wharf_core::{Result, WharfConfig};

/// The emitter's table.
pub const KEY: &str = "lineage.openlineage";

/// `[lineage.openlineage]`
///
/// `url`, `namespace` and `api_key` also come from the environment variables the
/// OpenLineage clients share (`OPENLINEAGE_URL`, `OPENLINEAGE_NAMESPACE`,
/// `OPENLINEAGE_API_KEY`), below every `WHARF_*` variable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct OpenLineageConfig {
    /// Receiver base URL (required by the `http` transport).
    pub url: Option<String>,
    /// Job namespace.
    pub namespace: String,
    /// Bearer API key.
    pub api_key: Option<String>,
    /// Endpoint path under `url`.
    pub endpoint: String,
    /// Request timeout in milliseconds.
    #[serde(deserialize_with = "lenient::u64")]
    pub timeout_ms: u64,
    /// `http` (default), `file` (JSON lines of RunEvents at `path`) or `console` (stdout).
    pub transport: String,
    /// File of the `file` transport.
    pub path: PathBuf,
    /// Retries after a 5xx or 429 answer or a connection error (0 = one attempt only).
    #[serde(deserialize_with = "lenient::u64")]
    pub retries: u64,
    /// `none` (default) or `gzip`: how HTTP request bodies are compressed.
    pub compression: String,
    /// When false (default), events the receiver does not take are spooled to `spool_path`
    /// for `wharf lineage replay` and the job goes on; when true, `emit` fails.
    #[serde(deserialize_with = "lenient::bool")]
    pub strict: bool,
    /// JSON-lines file of events waiting for replay.
    pub spool_path: PathBuf,
}

impl Default for OpenLineageConfig {
    fn default() -> Self {
        OpenLineageConfig {
            url: None,
            namespace: "wharf".into(),
            api_key: None,
            endpoint: "api/v1/lineage".into(),
            timeout_ms: 5_000,
            transport: "http".into(),
            path: PathBuf::from("openlineage-events.jsonl"),
            retries: 2,
            compression: "none".into(),
            strict: false,
            spool_path: PathBuf::from("wharf-lineage-spool.jsonl"),
        }
    }
}

impl OpenLineageConfig {
    /// `[lineage.openlineage]` of `config`; a bad value is an error naming its full key (or
    /// the environment variable that set it).
    pub fn from_wharf(config: &WharfConfig) -> Result<OpenLineageConfig> {
        config.adapter(KEY)
    }
}
