//! `WharfConfig`: which adapter serves each port, and the built-in ports' settings.
//!
//! Precedence, lowest first: built-in defaults < `wharf.toml` < `wharf.<profile>.toml` (for
//! each profile in `WHARF_PROFILE`, a comma list, later ones winning) < `WHARF_*`
//! environment variables < values set in code on the loaded struct.
//!
//! # The environment namespace
//!
//! One rule decides which variables are configuration: `WHARF_<SECTION>__<KEY>`, with a
//! double underscore between levels (`WHARF_TRACKING__BACKEND=mlflow`,
//! `WHARF_TRACKING__MLFLOW__URI=http://127.0.0.1:5000`), plus `WHARF_CONFIG` (another file
//! than `./wharf.toml`) and `WHARF_PROFILE`. Any other `WHARF_*` name (no double
//! underscore) is not configuration: tools and tests may use such names
//! (`WHARF_PEERS_DIR`, `WHARF_TEST_REDIS_URL`) without a `wharf` command taking them for
//! keys. Two mistakes are still caught, naming the variable: a double-underscore name with
//! an unknown key (`WHARF_TRACKING__BACKEN`), and a name that starts with a section and a
//! single underscore (`WHARF_TRACKING_BACKEND`), which is refused with the right spelling
//! (`WHARF_TRACKING__BACKEND`) rather than ignored. So a tool's own variable must not start
//! with a section name (`WHARF_SERVING_…`).
//!
//! The OpenLineage clients' shared `OPENLINEAGE_URL`, `OPENLINEAGE_NAMESPACE` and
//! `OPENLINEAGE_API_KEY` set `lineage.openlineage.*` just below the `WHARF_*` variables.
//!
//! # Adapter tables
//!
//! The core knows each section's `backend` and the built-in adapters' keys. An adapter's own
//! table (`[tracking.mlflow]`, `[serving.bentoml]`) is kept raw here, and the adapter crate
//! deserializes it with [`WharfConfig::adapter`], so adding an adapter never edits the core.
//! Errors still name the full key (`tracking.mlflow.timeout_ms`), or the environment
//! variable that set it. Which tables a section may hold is checked when the container is
//! built, against the adapters the [`AdapterCatalog`](crate::AdapterCatalog) knows.
//!
//! Unknown keys and bad values are errors naming the key (or the environment variable), so
//! a typo never silently falls back to a default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{Result, WharfError};

/// Environment variables that are neither configuration keys nor ignored: the loader reads
/// `WHARF_CONFIG` and `WHARF_PROFILE`, the command line `WHARF_LOG`.
pub const LOADER_VARIABLES: [&str; 3] = ["WHARF_CONFIG", "WHARF_PROFILE", "WHARF_LOG"];

/// The configuration's sections: a `WHARF_<SECTION>_…` name with a single underscore is
/// refused as a misspelt key.
pub const SECTIONS: [&str; 4] = ["tracking", "registry", "lineage", "serving"];

/// The OpenLineage clients' shared environment variables and the keys they set.
pub const OPENLINEAGE_VARIABLES: [(&str, &str); 3] = [
    ("OPENLINEAGE_URL", "lineage.openlineage.url"),
    ("OPENLINEAGE_NAMESPACE", "lineage.openlineage.namespace"),
    ("OPENLINEAGE_API_KEY", "lineage.openlineage.api_key"),
];

/// The whole configuration.
#[derive(Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct WharfConfig {
    /// Experiment tracking.
    pub tracking: TrackingConfig,
    /// Model registry.
    pub registry: RegistryConfig,
    /// Lineage events.
    pub lineage: LineageConfig,
    /// Model serving.
    pub serving: ServingConfig,
    /// Which environment variable set which key, to name it in adapters' errors.
    #[serde(skip)]
    origins: Origins,
}

/// The adapters' own tables of one section (`[tracking.mlflow]` → `"mlflow"`), raw: each
/// adapter crate deserializes its own through [`WharfConfig::adapter`].
pub type AdapterTables = BTreeMap<String, toml::Value>;

/// Tables of `[serving]` that are `wharf serve`'s own settings, not an adapter's: the
/// prediction log (`[serving.log]`) and live drift (`[serving.drift]`).
pub const SERVING_TABLES: &[&str] = &["log", "drift"];

/// `[tracking]`
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct TrackingConfig {
    /// `file` (default), `noop` or an adapter's backend (`mlflow`).
    pub backend: String,
    /// Directory of the file tracker.
    pub dir: PathBuf,
    /// The adapters' tables (`[tracking.mlflow]`).
    #[serde(flatten)]
    pub adapters: AdapterTables,
}

impl Default for TrackingConfig {
    fn default() -> Self {
        TrackingConfig { backend: "file".into(), dir: PathBuf::from("wharf-runs"), adapters: AdapterTables::new() }
    }
}

/// `[registry]`
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct RegistryConfig {
    /// `file` (default) or an adapter's backend (`mlflow`).
    pub backend: String,
    /// Directory of the file registry.
    pub dir: PathBuf,
    /// The adapters' tables (`[registry.mlflow]`).
    #[serde(flatten)]
    pub adapters: AdapterTables,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig { backend: "file".into(), dir: PathBuf::from("wharf-registry"), adapters: AdapterTables::new() }
    }
}

/// `[lineage]`
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct LineageConfig {
    /// `file` (default), `noop` or an adapter's backend (`openlineage`).
    pub backend: String,
    /// JSON-lines file of the file sink.
    pub path: PathBuf,
    /// The adapters' tables (`[lineage.openlineage]`).
    #[serde(flatten)]
    pub adapters: AdapterTables,
}

impl Default for LineageConfig {
    fn default() -> Self {
        LineageConfig {
            backend: "file".into(),
            path: PathBuf::from("wharf-lineage.jsonl"),
            adapters: AdapterTables::new(),
        }
    }
}

/// `[serving]`
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ServingConfig {
    /// `local` (default) or an adapter's backend (`bentoml`).
    pub backend: String,
    /// Address `wharf serve` listens on.
    pub addr: String,
    /// Largest request body accepted, in bytes; larger bodies get 413.
    #[serde(deserialize_with = "lenient::u64")]
    pub body_limit_bytes: u64,
    /// Time a request may take before it is answered 408, in milliseconds.
    #[serde(deserialize_with = "lenient::u64")]
    pub request_timeout_ms: u64,
    /// Bearer token for the admin endpoints (`/admin/...`); they are disabled when unset.
    pub admin_token: Option<String>,
    /// How often `wharf serve` checks the registry for moved aliases and reloads, in
    /// milliseconds; 0 (the default) checks only when asked through the admin endpoint.
    #[serde(deserialize_with = "lenient::u64")]
    pub reload_interval_ms: u64,
    /// Micro-batching: concurrent single-row predict requests to one model are scored
    /// together, up to this many rows per call; 0 (the default) turns it off.
    #[serde(deserialize_with = "lenient::u64")]
    pub micro_batch_max_rows: u64,
    /// How long the first request of a micro-batch waits for others, in microseconds; 0 (the
    /// default) waits one pass of the scheduler.
    #[serde(deserialize_with = "lenient::u64")]
    pub micro_batch_wait_us: u64,
    /// Longest a new connection may take to send its first request's headers, in
    /// milliseconds; silent and slow-header clients are disconnected after it.
    #[serde(deserialize_with = "lenient::u64")]
    pub header_read_timeout_ms: u64,
    /// Longest a keep-alive connection may sit with no request in flight (from the end of
    /// one answer to the next request's headers), in milliseconds.
    #[serde(deserialize_with = "lenient::u64")]
    pub idle_timeout_ms: u64,
    /// Most connections open at once; at the cap a new connection closes the longest-idle
    /// one, or is itself closed when every connection is busy. Lowered at start to fit the
    /// process's open-file limit.
    #[serde(deserialize_with = "lenient::u64")]
    pub max_connections: u64,
    /// Most predict/score requests in progress at once; more are answered 503 with
    /// `Retry-After` instead of queueing.
    #[serde(deserialize_with = "lenient::u64")]
    pub max_concurrent_scoring: u64,
    /// Bearer tokens (or `X-API-Key` values) allowed to score and read the catalog; when
    /// empty (the default) those endpoints are open. A TOML array, or in the environment a
    /// comma-separated list.
    #[serde(deserialize_with = "lenient::string_list")]
    pub scoring_tokens: Vec<String>,
    /// A file holding the admin token (a mounted secret), instead of `admin_token`: read
    /// by `wharf serve` at start, trimmed, `#` lines skipped.
    pub admin_token_file: Option<PathBuf>,
    /// A file of scoring tokens, one per line (a mounted secret), added to
    /// `scoring_tokens`: read by `wharf serve` at start.
    pub scoring_tokens_file: Option<PathBuf>,
    /// PEM certificate chain: with `tls_key`, `wharf serve` speaks only HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates: when set, clients must present a certificate they signed (mTLS).
    pub tls_client_ca: Option<PathBuf>,
    /// Directory of the shadow log: what a shadowed challenger (`wharf serve --shadow`)
    /// answered next to the champion, for `wharf promote --from-shadow`.
    pub shadow_log: PathBuf,
    /// The model (`NAME` or `NAME@VERSION|@ALIAS`) MLflow's `POST /invocations` scores when a
    /// request names none; unset: the only model served. `wharf serve --default-model` wins.
    pub default_model: Option<String>,
    /// The adapters' tables (`[serving.bentoml]`), and the prediction log's and drift's own
    /// (`[serving.log]`, `[serving.drift]`, read by `wharf serve`).
    #[serde(flatten)]
    pub adapters: AdapterTables,
}

impl Default for ServingConfig {
    fn default() -> Self {
        ServingConfig {
            backend: "local".into(),
            addr: "127.0.0.1:8080".into(),
            body_limit_bytes: 16 * 1024 * 1024,
            request_timeout_ms: 30_000,
            admin_token: None,
            reload_interval_ms: 0,
            micro_batch_max_rows: 0,
            micro_batch_wait_us: 0,
            header_read_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            max_connections: 10_000,
            max_concurrent_scoring: 64,
            scoring_tokens: Vec::new(),
            admin_token_file: None,
            scoring_tokens_file: None,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            shadow_log: PathBuf::from("wharf-shadow"),
            default_model: None,
            adapters: AdapterTables::new(),
        }
    }
}

// `Debug` shows what `wharf doctor` shows, secrets masked by the one redaction rule: a
// configuration printed with `{:?}` (a tracing field, a panic message, a test failure)
// never carries a credential.
macro_rules! debug_masked {
    ($($ty:ident),*) => {$(
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match toml::Table::try_from(self) {
                    Ok(mut table) => {
                        mask(&mut table);
                        write!(f, "{} {:?}", stringify!($ty), table)
                    }
                    Err(_) => write!(f, "{} {{ .. }}", stringify!($ty)),
                }
            }
        }
    )*};
}
debug_masked!(WharfConfig, TrackingConfig, RegistryConfig, LineageConfig, ServingConfig);

/// Deserializers that accept a value or a string holding one, since environment variables
/// are always text. Adapter crates use them on their own tables'
/// fields: `#[serde(deserialize_with = "wharf_core::config::lenient::u64")]`.
pub mod lenient {
    use serde::{Deserialize, Deserializer};

    /// An integer, or a string holding one.
    pub fn u64<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
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

    /// A list of strings, or one string holding a comma-separated list, bracketed or not
    /// (`a,b`, `["a", "b"]`, `[]`); blank items are dropped.
    pub fn string_list<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            L(Vec<String>),
            S(String),
        }
        let items = match Raw::deserialize(d)? {
            Raw::L(items) => items,
            Raw::S(s) => {
                let s = s.trim();
                let inner = s.strip_prefix('[').and_then(|s| s.strip_suffix(']'));
                match inner {
                    Some(inner) => inner.split(',').map(|s| s.trim().trim_matches('"').to_string()).collect(),
                    None => s.split(',').map(str::to_string).collect(),
                }
            }
        };
        Ok(items.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
    }

    /// A number, or a string holding one.
    pub fn f64<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(f64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(n),
            Raw::S(s) => {
                s.trim().parse().map_err(|_| serde::de::Error::custom(format!("expected a number, found '{s}'")))
            }
        }
    }

    /// A boolean, or a string holding one (`true`/`false`, `1`/`0`, `yes`/`no`).
    pub fn bool<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<bool, D::Error> {
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
}

/// Where a configuration value came from, kept to name the culprit in errors.
#[derive(Debug, Clone, Default)]
struct Origins {
    /// Dotted key → environment variable that set it.
    env: BTreeMap<String, String>,
}

impl PartialEq for Origins {
    /// Provenance is not part of the value: two configurations with the same keys are equal.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Origins {
    /// The environment variable that set `key`, or the key itself.
    fn name(&self, key: &str) -> String {
        self.env.get(key).cloned().unwrap_or_else(|| key.to_string())
    }
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
            if LOADER_VARIABLES.contains(&var.as_str()) || !is_configuration_variable(var)? {
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
        let table: toml::Table = text.parse().map_err(|e| toml_syntax_error("<toml>", text, &e))?;
        Self::from_table(table, &Origins::default())
    }

    fn from_table(table: toml::Table, origins: &Origins) -> Result<WharfConfig> {
        let de = toml::Value::Table(table);
        let mut config = serde_path_to_error::deserialize::<_, WharfConfig>(de).map_err(|err| {
            let key = err.path().to_string();
            config_error_named(origins.name(&key), &key, err.inner().to_string())
        })?;
        config.origins = origins.clone();
        for (section, tables) in config.sections() {
            // Only tables may sit beside a section's own keys: anything else is a typo.
            if let Some((name, _)) = tables.iter().find(|(_, v)| !v.is_table()) {
                let key = format!("{section}.{name}");
                return Err(WharfError::config(
                    origins.name(&key),
                    format!("unknown field `{name}` (neither a key of [{section}] nor an adapter's table)"),
                ));
            }
        }
        Ok(config)
    }

    /// Each section's name and adapter tables.
    pub fn sections(&self) -> [(&'static str, &AdapterTables); 4] {
        [
            ("tracking", &self.tracking.adapters),
            ("registry", &self.registry.adapters),
            ("lineage", &self.lineage.adapters),
            ("serving", &self.serving.adapters),
        ]
    }

    fn section_mut(&mut self, section: &str) -> Option<&mut AdapterTables> {
        match section {
            "tracking" => Some(&mut self.tracking.adapters),
            "registry" => Some(&mut self.registry.adapters),
            "lineage" => Some(&mut self.lineage.adapters),
            "serving" => Some(&mut self.serving.adapters),
            _ => None,
        }
    }

    /// The raw adapter table at `key` (`tracking.mlflow`), if the configuration has one.
    pub fn adapter_table(&self, key: &str) -> Option<&toml::Table> {
        let (section, name) = key.split_once('.')?;
        let tables = self.sections().into_iter().find(|(s, _)| *s == section)?.1;
        tables.get(name).and_then(toml::Value::as_table)
    }

    /// The adapter table at `key` (`tracking.mlflow`) as the adapter's own type `C`; a
    /// missing table gives `C`'s defaults (so `C` should be `#[serde(default)]`). Errors
    /// name the full key (`tracking.mlflow.timeout_ms`), or the environment variable that
    /// set it.
    pub fn adapter<C: DeserializeOwned>(&self, key: &str) -> Result<C> {
        let table = self.adapter_table(key).cloned().unwrap_or_default();
        serde_path_to_error::deserialize::<_, C>(toml::Value::Table(table)).map_err(|err| {
            let path = err.path().to_string();
            let full = if path.is_empty() || path == "." { key.to_string() } else { format!("{key}.{path}") };
            config_error_named(self.origins.name(&full), &full, err.inner().to_string())
        })
    }

    /// Replaces the adapter table at `key` (`tracking.mlflow`) with `value`: how code sets
    /// an adapter's settings (code has the last word).
    pub fn set_adapter<C: Serialize>(&mut self, key: &str, value: &C) -> Result<()> {
        let (section, name) = key
            .split_once('.')
            .filter(|(_, name)| !name.is_empty() && !name.contains('.'))
            .ok_or_else(|| WharfError::config(key, "expected <section>.<adapter>"))?;
        let table = toml::Table::try_from(value).map_err(|e| WharfError::config(key, e.to_string()))?;
        let tables = self.section_mut(section).ok_or_else(|| WharfError::config(key, "unknown section"))?;
        tables.insert(name.to_string(), toml::Value::Table(table));
        self.origins.env.retain(|k, _| !k.starts_with(&format!("{key}.")));
        Ok(())
    }

    /// The configuration as TOML (what `wharf doctor` prints), every value through
    /// [`crate::redact::value`]: `***` under a credential's key (the admin token, an
    /// `api_key`, a `password`, an `auth_header`, which keeps its header name so one can see
    /// which credential is configured), and every URL without its userinfo or credential
    /// query parameters.
    pub fn to_toml_masked(&self) -> String {
        let Ok(mut table) = toml::Table::try_from(self) else { return String::new() };
        mask(&mut table);
        toml::to_string(&table).unwrap_or_default()
    }
}

/// Whether a key names a credential, whose value is never printed (the one rule:
/// [`crate::redact::is_secret_key`]).
pub fn is_secret_key(key: &str) -> bool {
    crate::redact::is_secret_key(key)
}

fn mask(table: &mut toml::Table) {
    for (key, value) in table.iter_mut() {
        mask_value(key, value);
    }
}

fn mask_value(key: &str, value: &mut toml::Value) {
    match value {
        toml::Value::String(text) => *text = crate::redact::value(key, text),
        // Whatever sits under a credential's key (a number, a list, a table) is a credential.
        other if is_secret_key(key) => *other = toml::Value::String(crate::redact::MASK.into()),
        toml::Value::Table(table) => mask(table),
        toml::Value::Array(items) => items.iter_mut().for_each(|v| mask_value(key, v)),
        _ => {}
    }
}

/// A configuration error named `name` about the dotted `key`, whose message never repeats
/// a secret: a bad value under a credential's key is not described (serde quotes it), and
/// URLs in the message are masked.
fn config_error_named(name: String, key: &str, message: String) -> WharfError {
    let last = key.rsplit('.').next().unwrap_or(key);
    let message = if is_secret_key(last) {
        "invalid value (not shown: the key holds a credential)".to_string()
    } else {
        crate::redact::text(&message)
    };
    WharfError::config(name, message)
}

/// A TOML syntax error in `source` (read from `label`), with the line and column and an
/// excerpt of the line only when it does not hold a credential: toml's own message quotes
/// the line, which may be `admin_token = "…`.
fn toml_syntax_error(label: &str, source: &str, err: &toml::de::Error) -> WharfError {
    let mut message = err.message().trim().to_string();
    if let Some(span) = err.span() {
        let start = span.start.min(source.len());
        let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[start..].find('\n').map_or(source.len(), |i| start + i);
        let line_no = source[..start].matches('\n').count() + 1;
        let column = source[line_start..start].chars().count() + 1;
        let line = source[line_start..line_end].trim_end();
        let key = line.split_once('=').map(|(k, _)| k.trim().trim_matches('"'));
        // Inside a multi-line string the line has no key of its own: never show it.
        let excerpt = match key {
            Some(k) if !k.is_empty() && !is_secret_key(k) => format!(": `{}`", crate::redact::text(line)),
            _ => String::new(),
        };
        message = format!("line {line_no}, column {column}: {message}{excerpt}");
    }
    WharfError::config(label, message)
}

/// Whether `var` (a `WHARF_*` name) is configuration under the namespace rule: it has a
/// double underscore. A single-underscore name that starts with a section is an error
/// naming the right spelling, since it can only be a misspelt key.
fn is_configuration_variable(var: &str) -> Result<bool> {
    let rest = &var["WHARF_".len()..];
    if rest.contains("__") {
        return Ok(true);
    }
    let lower = rest.to_ascii_lowercase();
    for section in SECTIONS {
        if let Some(key) = lower.strip_prefix(section).and_then(|r| r.strip_prefix('_')) {
            return Err(WharfError::config(
                var,
                format!(
                    "looks like a configuration key, but configuration variables put `__` between levels: \
                     did you mean WHARF_{}__{}?",
                    section.to_ascii_uppercase(),
                    key.to_ascii_uppercase()
                ),
            ));
        }
    }
    Ok(false)
}

fn read_table(path: &Path) -> Result<toml::Table> {
    let text = std::fs::read_to_string(path).map_err(|e| WharfError::io(path, e))?;
    text.parse::<toml::Table>().map_err(|e| toml_syntax_error(&path.display().to_string(), &text, &e))
}

/// Deep-merges `over` into `base` (tables merge, everything else replaces).
pub(crate) fn merge(base: &mut toml::Table, over: toml::Table) {
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

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn only_double_underscore_names_are_configuration() {
        let dir = std::env::temp_dir();
        // Tooling and test variables are not keys, whatever follows WHARF_.
        let tools = env(&[
            ("WHARF_PEERS_DIR", "/somewhere"),
            ("WHARF_TEST_REDIS_URL", "redis://127.0.0.1:1"),
            ("WHARF_TESTING", "1"),
            ("WHARF_LOG", "debug"),
        ]);
        assert_eq!(WharfConfig::load_from(&dir, tools).expect("not configuration"), WharfConfig::default());
        // A typo in a real configuration variable is still an error naming it.
        let err = WharfConfig::load_from(&dir, env(&[("WHARF_TRACKING__BACKEN", "noop")])).expect_err("typo");
        assert!(matches!(&err, WharfError::Config { key, .. } if key == "WHARF_TRACKING__BACKEN"), "{err}");
        let set = WharfConfig::load_from(&dir, env(&[("WHARF_TRACKING__BACKEND", "noop")])).expect("key");
        assert_eq!(set.tracking.backend, "noop");
    }

    #[test]
    fn a_single_underscore_after_a_section_is_refused_with_the_right_name() {
        let dir = std::env::temp_dir();
        for (var, right) in [
            ("WHARF_TRACKING_BACKEND", "WHARF_TRACKING__BACKEND"),
            ("WHARF_SERVING_BENTOML_URL", "WHARF_SERVING__BENTOML_URL"),
            ("WHARF_Lineage_path", "WHARF_LINEAGE__PATH"),
        ] {
            match WharfConfig::load_from(&dir, env(&[(var, "x")])) {
                Err(WharfError::Config { key, message }) => {
                    assert_eq!(key, var);
                    assert!(message.contains(right), "{var}: {message}");
                }
                other => panic!("{var}: expected an error, got {other:?}"),
            }
        }
    }

    #[test]
    fn adapter_tables_are_raw_here_and_typed_by_their_adapter() {
        #[derive(Debug, Default, Deserialize, Serialize, PartialEq)]
        #[serde(default, deny_unknown_fields)]
        struct Mine {
            #[serde(deserialize_with = "lenient::u64")]
            timeout_ms: u64,
            api_key: Option<String>,
        }
        let dir = std::env::temp_dir();
        let c = WharfConfig::load_from(
            &dir,
            env(&[("WHARF_TRACKING__MINE__TIMEOUT_MS", "250"), ("WHARF_TRACKING__MINE__API_KEY", "s3cret")]),
        )
        .expect("load");
        let mine: Mine = c.adapter("tracking.mine").expect("typed");
        assert_eq!(mine, Mine { timeout_ms: 250, api_key: Some("s3cret".into()) });
        assert_eq!(c.adapter::<Mine>("tracking.absent").expect("defaults"), Mine::default());
        assert!(!c.to_toml_masked().contains("s3cret"), "{}", c.to_toml_masked());

        let c = WharfConfig::load_from(&dir, env(&[("WHARF_TRACKING__MINE__TIMEOUT_MS", "soon")])).expect("raw");
        let err = c.adapter::<Mine>("tracking.mine").expect_err("bad value");
        assert!(matches!(&err, WharfError::Config { key, .. } if key == "WHARF_TRACKING__MINE__TIMEOUT_MS"), "{err}");
        let c = WharfConfig::from_toml_str("[tracking.mine]\ntimeout = 1\n").expect("raw");
        let err = c.adapter::<Mine>("tracking.mine").expect_err("unknown key");
        assert!(matches!(&err, WharfError::Config { key, .. } if key == "tracking.mine.timeout"), "{err}");

        let mut c = WharfConfig::default();
        c.set_adapter("tracking.mine", &Mine { timeout_ms: 9, api_key: None }).expect("set");
        assert_eq!(c.adapter::<Mine>("tracking.mine").expect("typed").timeout_ms, 9);
        let err = WharfConfig::from_toml_str("[tracking]\nbackendd = 1\n").expect_err("not a table");
        assert!(matches!(&err, WharfError::Config { key, .. } if key == "tracking.backendd"), "{err}");
    }

    #[test]
    fn no_secret_is_repeated_by_printing_or_errors() {
        let secret = "S3CRET-xyzzy";
        // Printing: the admin token, an adapter's credential, a URL's userinfo and query.
        let c = WharfConfig::from_toml_str(&format!(
            "[serving]\nadmin_token = \"{secret}\"\n[tracking.mine]\nuri = \"http://u:{secret}@h/?token={secret}\"\n\
             pass_phrase_key = 7\n"
        ))
        .expect("valid");
        let shown = c.to_toml_masked();
        assert!(!shown.contains(secret) && shown.contains("http://***@h/?token=***"), "{shown}");
        // A syntax error on a credential's line: the position, never the line.
        let err = WharfConfig::from_toml_str(&format!("[serving]\nadmin_token = \"{secret}\n")).expect_err("bad");
        let text = err.to_string();
        assert!(!text.contains(secret) && text.contains("line 2"), "{text}");
        // A syntax error elsewhere still quotes its line, URLs masked.
        let err = WharfConfig::from_toml_str(&format!("[tracking.mine]\nuri = \"http://u:{secret}@h\" x\n"))
            .expect_err("bad");
        let text = err.to_string();
        assert!(!text.contains(secret) && text.contains("uri = "), "{text}");
        // A value of the wrong type under a credential's key is not described.
        let err = WharfConfig::from_toml_str(&format!("[serving]\nadmin_token = [\"{secret}\"]\n")).expect_err("type");
        assert!(!err.to_string().contains(secret), "{err}");
        let dir = std::env::temp_dir();
        let c = WharfConfig::load_from(&dir, env(&[("WHARF_TRACKING__MINE__TIMEOUT_MS", secret)])).expect("raw");
        #[derive(Debug, Deserialize)]
        struct Mine {
            #[serde(deserialize_with = "lenient::u64")]
            #[allow(dead_code)]
            timeout_ms: u64,
        }
        // Not a credential's key: the value may be quoted (it is the user's typo to see).
        assert!(c.adapter::<Mine>("tracking.mine").is_err());
    }

    #[test]
    fn debug_output_is_masked_too() {
        let c = WharfConfig::from_toml_str(
            "[serving]\nadmin_token = \"S3CRET-dbg\"\n[tracking.mine]\nuri = \"http://u:S3CRET-dbg@h\"\n",
        )
        .expect("valid");
        for shown in [format!("{c:?}"), format!("{:?}", c.serving), format!("{:?}", c.tracking)] {
            assert!(!shown.contains("S3CRET-dbg"), "{shown}");
        }
        assert!(format!("{c:?}").contains("http://***@h"));
    }
}
