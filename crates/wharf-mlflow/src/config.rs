//! `[tracking.mlflow]` and `[registry.mlflow]`: this adapter's own configuration table,
//! read from the core's raw table so the core never names MLflow's settings.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use wharf_core::config::lenient;
use wharf_core::{Result, WharfConfig};

/// The tracker's table.
pub const TRACKING_KEY: &str = "tracking.mlflow";
/// The registry's table; an unset `uri` falls back to `tracking.mlflow.uri`.
pub const REGISTRY_KEY: &str = "registry.mlflow";

/// `[tracking.mlflow]` and `[registry.mlflow]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct MlflowConfig {
    /// Tracking server URI (`http://127.0.0.1:5000`).
    pub uri: Option<String>,
    /// Experiment runs are logged to.
    pub experiment: String,
    /// Request timeout in milliseconds.
    #[serde(deserialize_with = "lenient::u64")]
    pub timeout_ms: u64,
    /// Tracking only: when true, an unreachable or failing server is an error; when false
    /// (the default) runs are spooled to `spool_dir` and can be replayed with `wharf runs sync`.
    #[serde(deserialize_with = "lenient::bool")]
    pub strict: bool,
    /// Tracking only: where runs go while the server is unreachable (a file-tracker directory).
    pub spool_dir: PathBuf,
}

impl Default for MlflowConfig {
    fn default() -> Self {
        MlflowConfig {
            uri: None,
            experiment: "wharf".into(),
            timeout_ms: 30_000,
            strict: false,
            spool_dir: PathBuf::from("wharf-runs/mlflow-spool"),
        }
    }
}

impl MlflowConfig {
    /// `[tracking.mlflow]` of `config`; a bad value is an error naming its full key.
    pub fn tracking(config: &WharfConfig) -> Result<MlflowConfig> {
        config.adapter(TRACKING_KEY)
    }

    /// `[registry.mlflow]` of `config` (its `uri` as written: the fallback to the tracking
    /// URI is the registry's business).
    pub fn registry(config: &WharfConfig) -> Result<MlflowConfig> {
        config.adapter(REGISTRY_KEY)
    }
}
