//! `WharfConfig`: which adapter serves each port, and their settings.
//!
//! Precedence, lowest first: built-in defaults < `wharf.toml` < `wharf.<profile>.toml` (for
//! each profile in `WHARF_PROFILE`, a comma list, later ones winning) < `WHARF_*`
//! environment variables < values set in code on the loaded struct.
//!
//! Environment variables name a key path with `__` between levels:
//! `WHARF_TRACKING__BACKEND=mlflow`, `WHARF_TRACKING__MLFLOW__URI=http://127.0.0.1:5000`.
//! `WHARF_CONFIG` names another file than `./wharf.toml`. The OpenLineage clients' shared
//! `OPENLINEAGE_URL`, `OPENLINEAGE_NAMESPACE` and `OPENLINEAGE_API_KEY` set
//! `lineage.openlineage.*` just below the `WHARF_*` variables.
//!
//! Unknown keys and bad values are errors naming the key (or the environment variable), so
//! a typo never silently falls back to a default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

use crate::{Result, WharfError};

/// Environment variables the loader itself reads (not config keys).
pub const LOADER_VARIABLES: [&str; 3] = ["WHARF_CONFIG", "WHARF_PROFILE", "WHARF_LOG"];

/// The prefix of the test suite's own variables (`WHARF_TEST_REDIS_URL`, …), which are not
/// config keys either: `cargo xtask backends` prints them for a shell to export, and a
/// `wharf` run in that shell must not take them for unknown keys.
pub const TEST_VARIABLE_PREFIX: &str = "WHARF_TEST_";

/// The OpenLineage clients' shared environment variables and the keys they set.
pub const OPENLINEAGE_VARIABLES: [(&str, &str); 3] = [
    ("OPENLINEAGE_URL", "lineage.openlineage.url"),
    ("OPENLINEAGE_NAMESPACE", "lineage.openlineage.namespace"),
    ("OPENLINEAGE_API_KEY", "lineage.openlineage.api_key"),
];

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct WharfConfig {
    /// Experiment tracking.
    pub tracking: TrackingConfig,
    /// Model registry.
    pub registry: RegistryConfig,
    /// Lineage events.
    pub lineage: LineageConfig,
    /// Model serving.
    pub serving: ServingConfig,
}

/// `[tracking]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackingConfig {
    /// `file` (default), `noop` or `mlflow`.
    pub backend: String,
    /// Directory of the file tracker.
    pub dir: PathBuf,
    /// `[tracking.mlflow]`
    pub mlflow: MlflowConfig,
}

impl Default for TrackingConfig {
    fn default() -> Self {
        TrackingConfig { backend: "file".into(), dir: PathBuf::from("wharf-runs"), mlflow: MlflowConfig::default() }
    }
}

/// `[tracking.mlflow]` and `[registry.mlflow]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MlflowConfig {
    /// Tracking server URI (`http://127.0.0.1:5000`).
    pub uri: Option<String>,
    /// Experiment runs are logged to.
    pub experiment: String,
    /// Request timeout in milliseconds.
    #[serde(deserialize_with = "lenient_u64")]
    pub timeout_ms: u64,
    /// Tracking only: when true, an unreachable or failing server is an error; when false
    /// (the default) runs are spooled to `spool_dir` and can be replayed with `wharf runs sync`.
    #[serde(deserialize_with = "lenient_bool")]
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

/// `[registry]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// `file` (default) or `mlflow`.
    pub backend: String,
    /// Directory of the file registry.
    pub dir: PathBuf,
    /// `[registry.mlflow]`; an unset `uri` falls back to `tracking.mlflow.uri`.
    pub mlflow: MlflowConfig,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig { backend: "file".into(), dir: PathBuf::from("wharf-registry"), mlflow: MlflowConfig::default() }
    }
}

/// `[lineage]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LineageConfig {
    /// `file` (default), `noop` or `openlineage`.
    pub backend: String,
    /// JSON-lines file of the file sink.
    pub path: PathBuf,
    /// `[lineage.openlineage]`
    pub openlineage: OpenLineageConfig,
}

impl Default for LineageConfig {
    fn default() -> Self {
        LineageConfig {
            backend: "file".into(),
            path: PathBuf::from("wharf-lineage.jsonl"),
            openlineage: OpenLineageConfig::default(),
        }
    }
}

/// `[lineage.openlineage]`
///
/// `url`, `namespace` and `api_key` also come from the environment variables the
/// OpenLineage clients share (`OPENLINEAGE_URL`, `OPENLINEAGE_NAMESPACE`,
/// `OPENLINEAGE_API_KEY`), below every `WHARF_*` variable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
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
    #[serde(deserialize_with = "lenient_u64")]
    pub timeout_ms: u64,
    /// `http` (default), `file` (JSON lines of RunEvents at `path`) or `console` (stdout).
    pub transport: String,
    /// File of the `file` transport.
    pub path: PathBuf,
    /// Retries after a 5xx answer or a connection error (0 = one attempt only).
    #[serde(deserialize_with = "lenient_u64")]
    pub retries: u64,
    /// `none` (default) or `gzip`: how HTTP request bodies are compressed.
    pub compression: String,
    /// When false (default), events the receiver does not take are spooled to `spool_path`
    /// for `wharf lineage replay` and the job goes on; when true, `emit` fails.
    #[serde(deserialize_with = "lenient_bool")]
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

/// `[serving]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServingConfig {
    /// `local` (default) or `bentoml`.
    pub backend: String,
    /// `[serving.bentoml]`
    pub bentoml: BentoMlConfig,
    /// Address `wharf serve` listens on.
    pub addr: String,
    /// Largest request body accepted, in bytes; larger bodies get 413.
    #[serde(deserialize_with = "lenient_u64")]
    pub body_limit_bytes: u64,
    /// Time a request may take before it is answered 408, in milliseconds.
    #[serde(deserialize_with = "lenient_u64")]
    pub request_timeout_ms: u64,
    /// Bearer token for the admin endpoints (`/admin/...`); they are disabled when unset.
    pub admin_token: Option<String>,
    /// How often `wharf serve` checks the registry for moved aliases and reloads, in
    /// milliseconds; 0 (the default) checks only when asked through the admin endpoint.
    #[serde(deserialize_with = "lenient_u64")]
    pub reload_interval_ms: u64,
    /// Micro-batching: concurrent single-row predict requests to one model are scored
    /// together, up to this many rows per call; 0 (the default) turns it off.
    #[serde(deserialize_with = "lenient_u64")]
    pub micro_batch_max_rows: u64,
    /// How long the first request of a micro-batch waits for others, in microseconds; 0 (the
    /// default) waits one pass of the scheduler.
    #[serde(deserialize_with = "lenient_u64")]
    pub micro_batch_wait_us: u64,
}

impl Default for ServingConfig {
    fn default() -> Self {
        ServingConfig {
            backend: "local".into(),
            bentoml: BentoMlConfig::default(),
            addr: "127.0.0.1:8080".into(),
            body_limit_bytes: 16 * 1024 * 1024,
            request_timeout_ms: 30_000,
            admin_token: None,
            reload_interval_ms: 0,
            micro_batch_max_rows: 0,
            micro_batch_wait_us: 0,
        }
    }
}

/// `[serving.bentoml]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BentoMlConfig {
    /// Service base URL.
    pub url: Option<String>,
    /// API (endpoint) name.
    pub api: String,
    /// Request timeout in milliseconds.
    #[serde(deserialize_with = "lenient_u64")]
    pub timeout_ms: u64,
    /// Largest batch sent in one request.
    #[serde(deserialize_with = "lenient_u64")]
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
    #[serde(deserialize_with = "lenient_u64")]
    pub retries: u64,
    /// Consecutive connection failures after which calls fail fast without touching the network.
    #[serde(deserialize_with = "lenient_u64")]
    pub breaker_failures: u64,
    /// How long calls fail fast once the breaker has opened, in milliseconds.
    #[serde(deserialize_with = "lenient_u64")]
    pub breaker_cooldown_ms: u64,
}

/// The JSON shape of the records sent to a BentoML API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
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

/// Accepts an integer or a string holding one (environment variables are always text).
fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        N(u64),
        S(String),
    }
    match Raw::deserialize(d)? {
        Raw::N(n) => Ok(n),
        Raw::S(s) => s
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("expected a non-negative integer, found '{s}'"))),
    }
}

/// Accepts a boolean or a string holding one (environment variables are always text).
fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        B(bool),
        S(String),
    }
    match Raw::deserialize(d)? {
        Raw::B(b) => Ok(b),
        Raw::S(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(serde::de::Error::custom(format!("expected true or false, found '{s}'"))),
        },
    }
}

/// Where a configuration value came from, kept to name the culprit in errors.
#[derive(Debug, Clone, Default)]
struct Origins {
    /// Dotted key → environment variable that set it.
    env: BTreeMap<String, String>,
}

impl WharfConfig {
    /// Loads from the current directory and the process environment.
    pub fn load() -> Result<WharfConfig> {
        let dir = std::env::current_dir().map_err(|e| WharfError::io(".", e))?;
        Self::load_from(&dir, std::env::vars())
    }

    /// Loads from `dir` (for `wharf.toml` and profile files) and the given environment.
    pub fn load_from(dir: &Path, env: impl IntoIterator<Item = (String, String)>) -> Result<WharfConfig> {
        let (env, openlineage_env): (BTreeMap<String, String>, BTreeMap<String, String>) = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("WHARF_") || OPENLINEAGE_VARIABLES.iter().any(|(v, _)| v == k))
            .partition(|(k, _)| k.starts_with("WHARF_"));
        let mut merged = toml::Table::new();
        let base = match env.get("WHARF_CONFIG") {
            Some(path) => {
                let path = dir.join(path);
                if !path.is_file() {
                    return Err(WharfError::config("WHARF_CONFIG", format!("{} does not exist", path.display())));
                }
                Some(path)
            }
            None => Some(dir.join("wharf.toml")).filter(|p| p.is_file()),
        };
        let base_dir = base.as_deref().map(crate::fsutil::parent_dir).unwrap_or_else(|| dir.to_path_buf());
        if let Some(path) = &base {
            merge(&mut merged, read_table(path)?);
        }
        if let Some(profiles) = env.get("WHARF_PROFILE") {
            for profile in profiles.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                if !profile.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                    return Err(WharfError::config("WHARF_PROFILE", format!("'{profile}' is not a profile name")));
                }
                let path = base_dir.join(format!("wharf.{profile}.toml"));
                if !path.is_file() {
                    return Err(WharfError::config(
                        "WHARF_PROFILE",
                        format!("profile '{profile}' has no file {}", path.display()),
                    ));
                }
                merge(&mut merged, read_table(&path)?);
            }
        }
        let mut origins = Origins::default();
        // The OpenLineage clients' own variables, below every WHARF_* variable.
        for (var, key) in OPENLINEAGE_VARIABLES {
            if let Some(value) = openlineage_env.get(var) {
                let path: Vec<String> = key.split('.').map(String::from).collect();
                origins.env.insert(key.to_string(), var.to_string());
                set_path(&mut merged, &path, toml::Value::String(value.clone()), var)?;
            }
        }
        for (var, value) in &env {
            if LOADER_VARIABLES.contains(&var.as_str()) || var.starts_with(TEST_VARIABLE_PREFIX) {
                continue;
            }
            let path: Vec<String> = var["WHARF_".len()..].split("__").map(|s| s.to_ascii_lowercase()).collect();
            if path.iter().any(|p| p.is_empty()) {
                return Err(WharfError::config(var.as_str(), "malformed variable name (use WHARF_SECTION__KEY)"));
            }
            origins.env.insert(path.join("."), var.clone());
            set_path(&mut merged, &path, toml::Value::String(value.clone()), var)?;
        }
        Self::from_table(merged, &origins)
    }

    /// Parses one TOML document (no files, no environment): handy in tests and examples.
    pub fn from_toml_str(text: &str) -> Result<WharfConfig> {
        let table: toml::Table =
            text.parse().map_err(|e: toml::de::Error| WharfError::config("<toml>", e.to_string()))?;
        Self::from_table(table, &Origins::default())
    }

    fn from_table(table: toml::Table, origins: &Origins) -> Result<WharfConfig> {
        let de = toml::Value::Table(table);
        serde_path_to_error::deserialize::<_, WharfConfig>(de).map_err(|err| {
            let key = err.path().to_string();
            let message = err.inner().to_string();
            let key = origins.env.get(&key).cloned().unwrap_or(key);
            WharfError::config(key, message)
        })
    }

    /// The configuration as TOML (what `wharf doctor` prints). API keys are masked.
    pub fn to_toml_masked(&self) -> String {
        let mut copy = self.clone();
        if copy.lineage.openlineage.api_key.is_some() {
            copy.lineage.openlineage.api_key = Some("***".into());
        }
        if copy.serving.admin_token.is_some() {
            copy.serving.admin_token = Some("***".into());
        }
        // Keep the header's name (which credential is configured), hide its value.
        if let Some(header) = &copy.serving.bentoml.auth_header {
            let name = header.split_once(':').map_or("", |(name, _)| name).trim();
            copy.serving.bentoml.auth_header = Some(format!("{name}: ***"));
        }
        toml::to_string(&copy).unwrap_or_default()
    }
}

fn read_table(path: &Path) -> Result<toml::Table> {
    let text = std::fs::read_to_string(path).map_err(|e| WharfError::io(path, e))?;
    text.parse::<toml::Table>().map_err(|e| WharfError::config(path.display().to_string(), e.to_string()))
}

/// Deep-merges `over` into `base` (tables merge, everything else replaces).
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value, var: &str) -> Result<()> {
    let (last, parents) = path.split_last().ok_or_else(|| WharfError::config(var, "empty key"))?;
    let mut cur = table;
    for p in parents {
        let entry = cur.entry(p.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = match entry {
            toml::Value::Table(t) => t,
            _ => return Err(WharfError::config(var, format!("'{p}' is not a section"))),
        };
    }
    cur.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_suites_variables_are_not_keys_but_other_unknown_ones_are_errors() {
        let dir = std::env::temp_dir();
        let env =
            |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        let loaded = WharfConfig::load_from(&dir, env(&[("WHARF_TEST_REDIS_URL", "redis://127.0.0.1:1")]));
        assert!(loaded.is_ok(), "{loaded:?}");
        let err = WharfConfig::load_from(&dir, env(&[("WHARF_TESTING", "1")])).expect_err("unknown key").to_string();
        assert!(err.contains("WHARF_TESTING"), "{err}");
    }
}
