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
    ///
    /// MLflow's own variables fill what Wharf's configuration leaves unset, as MLflow's
    /// client reads them: `MLFLOW_TRACKING_URI` for `uri` and `MLFLOW_EXPERIMENT_NAME` for
    /// `experiment`. A key set in `wharf.toml` or by a `WHARF_` variable wins.
    pub fn tracking(config: &WharfConfig) -> Result<MlflowConfig> {
        let mut own: MlflowConfig = config.adapter(TRACKING_KEY)?;
        own.fill_from(config.adapter_table(TRACKING_KEY), "MLFLOW_TRACKING_URI", env_var);
        Ok(own)
    }

    /// `[registry.mlflow]` of `config`, its `uri` filled from `MLFLOW_REGISTRY_URI` when
    /// unset (the fallback to the tracking URI is the registry's business).
    pub fn registry(config: &WharfConfig) -> Result<MlflowConfig> {
        let mut own: MlflowConfig = config.adapter(REGISTRY_KEY)?;
        own.fill_from(config.adapter_table(REGISTRY_KEY), "MLFLOW_REGISTRY_URI", env_var);
        Ok(own)
    }

    /// Fills `uri` from the variable `uri_var` and `experiment` from
    /// `MLFLOW_EXPERIMENT_NAME`, where `table` (what the configuration set) has no value.
    fn fill_from(&mut self, table: Option<&toml::Table>, uri_var: &str, var: impl Fn(&str) -> Option<String>) {
        let set = |key: &str| table.is_some_and(|t| t.contains_key(key));
        if !set("uri") {
            if let Some(uri) = var(uri_var) {
                self.uri = Some(uri);
            }
        }
        if !set("experiment") {
            if let Some(experiment) = var("MLFLOW_EXPERIMENT_NAME") {
                self.experiment = experiment;
            }
        }
    }
}

/// A variable's value, when it is set and not blank.
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mlflow_s_variables_fill_only_what_wharf_s_configuration_leaves_unset() {
        let env = |name: &str| match name {
            "MLFLOW_TRACKING_URI" => Some("http://mlflow.example:5000".to_string()),
            "MLFLOW_EXPERIMENT_NAME" => Some("churn".to_string()),
            _ => None,
        };
        let mut unset = MlflowConfig::default();
        unset.fill_from(None, "MLFLOW_TRACKING_URI", env);
        assert_eq!(unset.uri.as_deref(), Some("http://mlflow.example:5000"));
        assert_eq!(unset.experiment, "churn");

        let table: toml::Table = toml::from_str("uri = \"http://own:5000\"\nexperiment = \"wharf\"").unwrap();
        let mut own: MlflowConfig = table.clone().try_into().unwrap();
        own.fill_from(Some(&table), "MLFLOW_TRACKING_URI", env);
        assert_eq!(own.uri.as_deref(), Some("http://own:5000"), "Wharf's key wins");
        assert_eq!(own.experiment, "wharf", "even when it equals the default");
    }
}
