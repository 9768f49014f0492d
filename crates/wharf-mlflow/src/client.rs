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
//! Requests are retried with exponential backoff on 429, 5xx and transport errors, but only
//! when repeating them cannot duplicate anything: creations are retried only when the
//! connection was never made.

use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use url::Url;
use wharf_core::{Result, WharfError};

use crate::error::{MlflowError, ADAPTER};

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

/// Bounded retries with exponential backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// Delay before the first retry; doubled each time.
    pub initial_backoff: Duration,
    /// Upper bound of one delay.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { retries: 3, initial_backoff: Duration::from_millis(200), max_backoff: Duration::from_secs(2) }
    }
}

/// Whether repeating a request is harmless, which decides what may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Idempotence {
    /// Reads, updates, tags, log-batch (MLflow ignores duplicate metric points).
    Safe,
    /// Creations: a repeat after the server saw the first could create a second object.
    Create,
}

// ---------------------------------------------------------------- DTOs

/// A `{key, value}` pair (tags and params).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    /// Key.
    pub key: String,
    /// Value.
    #[serde(default)]
    pub value: String,
}

impl KeyValue {
    /// A pair.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        KeyValue { key: key.into(), value: value.into() }
    }
}

/// An experiment.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Experiment {
    /// Id (a string of digits).
    pub experiment_id: String,
    /// Name.
    pub name: String,
    /// Where its runs' artifacts go (`mlflow-artifacts:/1`).
    #[serde(default)]
    pub artifact_location: String,
    /// `active` or `deleted`.
    #[serde(default)]
    pub lifecycle_stage: String,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<KeyValue>,
}

/// A run's identity and state.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RunMeta {
    /// Run id (32 hex characters).
    pub run_id: String,
    /// Experiment id.
    #[serde(default)]
    pub experiment_id: String,
    /// Run name.
    #[serde(default)]
    pub run_name: String,
    /// `RUNNING`, `SCHEDULED`, `FINISHED`, `FAILED` or `KILLED`.
    #[serde(default)]
    pub status: String,
    /// Start, in ms since the epoch.
    #[serde(default)]
    pub start_time: i64,
    /// End, in ms since the epoch.
    #[serde(default)]
    pub end_time: Option<i64>,
    /// Root of the run's artifacts (`mlflow-artifacts:/1/<run>/artifacts`).
    #[serde(default)]
    pub artifact_uri: String,
    /// `active` or `deleted`.
    #[serde(default)]
    pub lifecycle_stage: String,
}

/// A run's logged data (metrics: latest value per key only).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct RunData {
    /// Latest value of each metric.
    #[serde(default)]
    pub metrics: Vec<Metric>,
    /// Params.
    #[serde(default)]
    pub params: Vec<KeyValue>,
    /// Tags (including MLflow's `mlflow.*` system tags).
    #[serde(default)]
    pub tags: Vec<KeyValue>,
}

/// A run.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Run {
    /// Identity and state.
    pub info: RunMeta,
    /// Logged data.
    #[serde(default)]
    pub data: RunData,
}

/// One metric point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// Name.
    pub key: String,
    /// Value; NaN and infinities travel as strings (see [`mlflow_f64`]).
    #[serde(with = "mlflow_f64")]
    pub value: f64,
    /// When, in ms since the epoch (MLflow requires it).
    pub timestamp: i64,
    /// Step.
    #[serde(default)]
    pub step: i64,
}

/// A file or directory in an artifact listing.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FileInfo {
    /// Path relative to the listed directory.
    pub path: String,
    /// Whether it is a directory.
    #[serde(default)]
    pub is_dir: bool,
    /// Size in bytes (files only).
    #[serde(default)]
    pub file_size: Option<i64>,
}

/// An alias of a registered model.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AliasEntry {
    /// Alias name.
    pub alias: String,
    /// Version number as text.
    pub version: String,
}

/// A registered model.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RegisteredModelEntry {
    /// Name.
    pub name: String,
    /// Created, in ms since the epoch.
    #[serde(default)]
    pub creation_timestamp: i64,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<KeyValue>,
    /// Aliases (only in `registered-models/get`).
    #[serde(default)]
    pub aliases: Vec<AliasEntry>,
}

/// A model version.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ModelVersionEntry {
    /// Registered model name.
    pub name: String,
    /// Version number as text.
    pub version: String,
    /// Created, in ms since the epoch.
    #[serde(default)]
    pub creation_timestamp: i64,
    /// Where the version's files are (`mlflow-artifacts:/…` or `runs:/…`).
    #[serde(default)]
    pub source: String,
    /// The run that produced it.
    #[serde(default)]
    pub run_id: Option<String>,
    /// `READY`, `PENDING_REGISTRATION` or `FAILED_REGISTRATION`.
    #[serde(default)]
    pub status: String,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<KeyValue>,
    /// Aliases (in `model-versions/get` and get-by-alias; not in searches).
    #[serde(default)]
    pub aliases: Vec<String>,
}

impl ModelVersionEntry {
    /// The value of tag `key`.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.iter().find(|t| t.key == key).map(|t| t.value.as_str())
    }
}

/// MLflow's run status enum. Typed because the server ignores unknown values with a 200.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum MlflowRunStatus {
    /// Running.
    Running,
    /// Scheduled.
    Scheduled,
    /// Finished.
    Finished,
    /// Failed.
    Failed,
    /// Killed.
    Killed,
}

/// (De)serializes metric values the way MLflow writes them: numbers, or the strings `"NaN"`,
/// `"Infinity"` and `"-Infinity"` (JSON has no NaN, and serde_json would write `null`,
/// which MLflow rejects).
pub mod mlflow_f64 {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes a number, or a string for non-finite values.
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_nan() {
            s.serialize_str("NaN")
        } else if v.is_infinite() {
            s.serialize_str(if *v > 0.0 { "Infinity" } else { "-Infinity" })
        } else {
            s.serialize_f64(*v)
        }
    }

    /// Reads a number or one of the strings MLflow uses.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(f64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(n),
            Raw::S(s) => match s.as_str() {
                "NaN" | "nan" => Ok(f64::NAN),
                "Infinity" | "inf" => Ok(f64::INFINITY),
                "-Infinity" | "-inf" => Ok(f64::NEG_INFINITY),
                other => other.parse().map_err(|_| serde::de::Error::custom(format!("not a metric value: '{other}'"))),
            },
        }
    }
}

// ---------------------------------------------------------------- client

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
        let mut base = Url::parse(uri.trim())
            .map_err(|e| WharfError::config("mlflow.uri", format!("'{uri}' is not a URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(WharfError::config("mlflow.uri", format!("'{uri}' must be an http:// or https:// URL")));
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
        Ok(MlflowClient { http, base, auth: Auth::from_env(), retry: RetryPolicy::default() })
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

    fn url(&self, path: &str) -> Result<Url> {
        self.base
            .join(path)
            .map_err(|e| WharfError::backend(ADAPTER, format!("bad request path '{path}'"), Some(Box::new(e))))
    }

    fn api(&self, endpoint: &str) -> Result<Url> {
        self.url(&format!("api/2.0/mlflow/{endpoint}"))
    }

    /// Sends a request built by `build`, retrying per the policy, and returns the successful
    /// response (any 2xx).
    fn send(&self, operation: &str, idem: Idempotence, build: impl Fn() -> RequestBuilder) -> Result<Response> {
        let mut attempt = 0u32;
        loop {
            let request = match &self.auth {
                Auth::None => build(),
                Auth::Bearer(token) => build().bearer_auth(token),
                Auth::Basic { username, password } => build().basic_auth(username, Some(password)),
            };
            let err = match request.send() {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) => error_from_response(operation, resp),
                Err(source) => MlflowError::Transport { operation: operation.to_string(), source },
            };
            let retryable = match (&err, idem) {
                (_, Idempotence::Safe) => err.is_transient(),
                // A refused connection never reached the server; a 429 was turned away.
                (MlflowError::Transport { source, .. }, Idempotence::Create) => source.is_connect(),
                (MlflowError::Api { status: 429, .. } | MlflowError::Http { status: 429, .. }, _) => true,
                _ => false,
            };
            if !retryable || attempt >= self.retry.retries {
                return Err(err.into());
            }
            let delay = self.retry.initial_backoff.saturating_mul(1 << attempt.min(16)).min(self.retry.max_backoff);
            tracing::debug!(operation, attempt, ?delay, error = %err, "retrying MLflow request");
            std::thread::sleep(delay);
            attempt += 1;
        }
    }

    fn decode<T: DeserializeOwned>(operation: &str, resp: Response) -> Result<T> {
        let bytes = resp
            .bytes()
            .map_err(|source| WharfError::from(MlflowError::Transport { operation: operation.to_string(), source }))?;
        // An empty body stands for `{}` (artifact uploads answer with no body at all).
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
        serde_json::from_slice(bytes)
            .map_err(|source| MlflowError::Decode { operation: operation.to_string(), source }.into())
    }

    fn get<T: DeserializeOwned>(&self, endpoint: &str, query: &[(&str, &str)]) -> Result<T> {
        let url = self.api(endpoint)?;
        let resp = self.send(endpoint, Idempotence::Safe, || self.http.get(url.clone()).query(query))?;
        Self::decode(endpoint, resp)
    }

    fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        endpoint: &str,
        idem: Idempotence,
        body: &serde_json::Value,
    ) -> Result<T> {
        let url = self.api(endpoint)?;
        // `json` sets `Content-Type: application/json`, without which MLflow answers 400.
        let resp = self.send(endpoint, idem, || self.http.request(method.clone(), url.clone()).json(body))?;
        Self::decode(endpoint, resp)
    }

    fn post<T: DeserializeOwned>(&self, endpoint: &str, body: &serde_json::Value) -> Result<T> {
        self.call(Method::POST, endpoint, Idempotence::Safe, body)
    }

    fn create<T: DeserializeOwned>(&self, endpoint: &str, body: &serde_json::Value) -> Result<T> {
        self.call(Method::POST, endpoint, Idempotence::Create, body)
    }

    // ------------------------------------------------------------ experiments

    /// Creates an experiment and returns its id (`RESOURCE_ALREADY_EXISTS` is a Backend
    /// error; see [`get_or_create_experiment`](Self::get_or_create_experiment)).
    pub fn create_experiment(&self, name: &str) -> Result<String> {
        #[derive(Deserialize)]
        struct R {
            experiment_id: String,
        }
        let r: R = self.create("experiments/create", &json!({ "name": name }))?;
        Ok(r.experiment_id)
    }

    /// The experiment called `name` (also when deleted: check `lifecycle_stage`).
    pub fn get_experiment_by_name(&self, name: &str) -> Result<Experiment> {
        #[derive(Deserialize)]
        struct R {
            experiment: Experiment,
        }
        let r: R = self.get("experiments/get-by-name", &[("experiment_name", name)])?;
        Ok(r.experiment)
    }

    /// The experiment with id `id`.
    pub fn get_experiment(&self, id: &str) -> Result<Experiment> {
        #[derive(Deserialize)]
        struct R {
            experiment: Experiment,
        }
        let r: R = self.get("experiments/get", &[("experiment_id", id)])?;
        Ok(r.experiment)
    }

    /// The active experiment called `name`, created when missing. Two processes creating it
    /// at once both end up with the same one. A deleted experiment of that name is an error
    /// (MLflow keeps the name reserved until it is restored or purged).
    pub fn get_or_create_experiment(&self, name: &str) -> Result<Experiment> {
        match self.get_experiment_by_name(name) {
            Ok(exp) => return check_active(exp),
            Err(WharfError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        match self.create_experiment(name) {
            Ok(id) => self.get_experiment(&id),
            Err(e) if has_code(&e, "RESOURCE_ALREADY_EXISTS") => check_active(self.get_experiment_by_name(name)?),
            Err(e) => Err(e),
        }
    }

    // ------------------------------------------------------------ runs

    /// Creates a run in `experiment_id` starting at `start_time_ms`. Without `name` MLflow
    /// picks a random one.
    pub fn create_run(
        &self,
        experiment_id: &str,
        name: Option<&str>,
        start_time_ms: i64,
        tags: &[KeyValue],
    ) -> Result<Run> {
        #[derive(Deserialize)]
        struct R {
            run: Run,
        }
        let mut body = json!({ "experiment_id": experiment_id, "start_time": start_time_ms, "tags": tags });
        if let Some(name) = name {
            body["run_name"] = json!(name);
        }
        let r: R = self.create("runs/create", &body)?;
        Ok(r.run)
    }

    /// The run `run_id` (its metrics hold only the latest value per key).
    pub fn get_run(&self, run_id: &str) -> Result<Run> {
        #[derive(Deserialize)]
        struct R {
            run: Run,
        }
        let r: R = self.get("runs/get", &[("run_id", run_id)])?;
        Ok(r.run)
    }

    /// Sets a run's status and end time.
    pub fn update_run(&self, run_id: &str, status: MlflowRunStatus, end_time_ms: Option<i64>) -> Result<RunMeta> {
        #[derive(Deserialize)]
        struct R {
            run_info: RunMeta,
        }
        let mut body = json!({ "run_id": run_id, "status": status });
        if let Some(end) = end_time_ms {
            body["end_time"] = json!(end);
        }
        let r: R = self.post("runs/update", &body)?;
        Ok(r.run_info)
    }

    /// Sets one tag.
    pub fn set_tag(&self, run_id: &str, key: &str, value: &str) -> Result<()> {
        let _: serde_json::Value =
            self.post("runs/set-tag", &json!({ "run_id": run_id, "key": key, "value": value }))?;
        Ok(())
    }

    /// Logs one param (the same value again is accepted; a different one is InvalidInput).
    pub fn log_param(&self, run_id: &str, key: &str, value: &str) -> Result<()> {
        let _: serde_json::Value =
            self.post("runs/log-parameter", &json!({ "run_id": run_id, "key": key, "value": value }))?;
        Ok(())
    }

    /// Logs one metric point.
    pub fn log_metric(&self, run_id: &str, metric: &Metric) -> Result<()> {
        let mut body = serde_json::to_value(metric)
            .map_err(|e| WharfError::invalid(format!("metrics.{}", metric.key), e.to_string()))?;
        body["run_id"] = json!(run_id);
        let _: serde_json::Value = self.post("runs/log-metric", &body)?;
        Ok(())
    }

    /// Logs any number of metrics, params and tags in as few `runs/log-batch` requests as
    /// MLflow's limits allow (1000 metrics, 100 params, 100 tags, 1000 entities and 1 MB per
    /// request). Returns the number of requests made.
    pub fn log_batch(&self, run_id: &str, metrics: &[Metric], params: &[KeyValue], tags: &[KeyValue]) -> Result<usize> {
        let (mut m, mut p, mut t) = (metrics, params, tags);
        let mut requests = 0;
        while !(m.is_empty() && p.is_empty() && t.is_empty()) {
            let mut bytes = 64;
            let mut entities = 0;
            let take_kv = |items: &[KeyValue], limit: usize, bytes: &mut usize, entities: &mut usize| {
                let mut n = 0;
                for kv in items.iter().take(limit) {
                    let size = kv.key.len() + kv.value.len() + 32;
                    if n > 0 && *bytes + size > MAX_BATCH_BYTES {
                        break;
                    }
                    *bytes += size;
                    *entities += 1;
                    n += 1;
                }
                n
            };
            let np = take_kv(p, MAX_BATCH_PARAMS, &mut bytes, &mut entities);
            let nt = take_kv(t, MAX_BATCH_TAGS, &mut bytes, &mut entities);
            let mut nm = 0;
            for metric in m.iter().take(MAX_BATCH_METRICS.min(MAX_BATCH_ENTITIES - entities)) {
                let size = metric.key.len() + 80;
                if nm + np + nt > 0 && bytes + size > MAX_BATCH_BYTES {
                    break;
                }
                bytes += size;
                nm += 1;
            }
            let body = json!({ "run_id": run_id, "metrics": &m[..nm], "params": &p[..np], "tags": &t[..nt] });
            let _: serde_json::Value = self.post("runs/log-batch", &body)?;
            requests += 1;
            (m, p, t) = (&m[nm..], &p[np..], &t[nt..]);
        }
        Ok(requests)
    }

    /// Every point of metric `key` of run `run_id`, ordered by timestamp then step (MLflow's
    /// order), following pagination.
    pub fn metric_history(&self, run_id: &str, key: &str) -> Result<Vec<Metric>> {
        #[derive(Deserialize)]
        struct R {
            #[serde(default)]
            metrics: Vec<Metric>,
            #[serde(default)]
            next_page_token: Option<String>,
        }
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("run_id", run_id), ("metric_key", key), ("max_results", "25000")];
            if let Some(t) = &token {
                query.push(("page_token", t));
            }
            let r: R = self.get("metrics/get-history", &query)?;
            out.extend(r.metrics);
            match r.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }

    /// Runs of `experiment_ids` matching MLflow's `filter` syntax (all pages).
    pub fn search_runs(&self, experiment_ids: &[&str], filter: &str) -> Result<Vec<Run>> {
        #[derive(Deserialize)]
        struct R {
            #[serde(default)]
            runs: Vec<Run>,
            #[serde(default)]
            next_page_token: Option<String>,
        }
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut body = json!({ "experiment_ids": experiment_ids, "filter": filter, "max_results": 1000 });
            if let Some(t) = &token {
                body["page_token"] = json!(t);
            }
            let r: R = self.post("runs/search", &body)?;
            out.extend(r.runs);
            match r.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }

    // ------------------------------------------------------------ artifacts

    /// The proxy URL of `path` under the artifact root `root` (`mlflow-artifacts:/1/<run>/artifacts`).
    fn artifact_url(&self, root: &str, path: &str) -> Result<Url> {
        let mut url = self.url("api/2.0/mlflow-artifacts/artifacts")?;
        let rel = proxy_path(root)?;
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|_| WharfError::backend(ADAPTER, "the MLflow URI cannot take a path", None))?;
            segments.extend(rel.split('/').chain(path.split('/')).filter(|s| !s.is_empty()));
        }
        Ok(url)
    }

    /// Uploads `bytes` as `path` under the artifact root `root` (overwriting).
    pub fn upload_artifact(&self, root: &str, path: &str, bytes: Vec<u8>) -> Result<()> {
        let url = self.artifact_url(root, path)?;
        // A retry needs the body again; cloning is cheap next to the upload itself.
        self.send("mlflow-artifacts/upload", Idempotence::Safe, || self.http.put(url.clone()).body(bytes.clone()))?;
        Ok(())
    }

    /// Downloads `path` under the artifact root `root`.
    pub fn download_artifact(&self, root: &str, path: &str) -> Result<Vec<u8>> {
        let url = self.artifact_url(root, path)?;
        let operation = "mlflow-artifacts/download";
        let resp = self.send(operation, Idempotence::Safe, || self.http.get(url.clone()))?;
        let bytes = resp
            .bytes()
            .map_err(|source| WharfError::from(MlflowError::Transport { operation: operation.to_string(), source }))?;
        Ok(bytes.to_vec())
    }

    /// The entries of directory `path` under the artifact root `root` (paths relative to it).
    pub fn list_artifacts(&self, root: &str, path: &str) -> Result<Vec<FileInfo>> {
        #[derive(Deserialize)]
        struct R {
            #[serde(default)]
            files: Vec<FileInfo>,
        }
        let rel = proxy_path(root)?;
        let full = [rel.as_str(), path.trim_matches('/')].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>();
        let full = full.join("/");
        let url = self.url("api/2.0/mlflow-artifacts/artifacts")?;
        let operation = "mlflow-artifacts/list";
        let resp = self.send(operation, Idempotence::Safe, || self.http.get(url.clone()).query(&[("path", &full)]))?;
        let r: R = Self::decode(operation, resp)?;
        Ok(r.files)
    }

    // ------------------------------------------------------------ registry

    /// Creates a registered model (`RESOURCE_ALREADY_EXISTS` is a Backend error; see
    /// [`ensure_registered_model`](Self::ensure_registered_model)).
    pub fn create_registered_model(&self, name: &str) -> Result<RegisteredModelEntry> {
        #[derive(Deserialize)]
        struct R {
            registered_model: RegisteredModelEntry,
        }
        let r: R = self.create("registered-models/create", &json!({ "name": name }))?;
        Ok(r.registered_model)
    }

    /// Creates the registered model `name` unless it exists.
    pub fn ensure_registered_model(&self, name: &str) -> Result<()> {
        match self.create_registered_model(name) {
            Ok(_) => Ok(()),
            Err(e) if has_code(&e, "RESOURCE_ALREADY_EXISTS") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The registered model `name`, with its aliases.
    pub fn get_registered_model(&self, name: &str) -> Result<RegisteredModelEntry> {
        #[derive(Deserialize)]
        struct R {
            registered_model: RegisteredModelEntry,
        }
        let r: R = self.get("registered-models/get", &[("name", name)])?;
        Ok(r.registered_model)
    }

    /// Every registered model (all pages).
    pub fn search_registered_models(&self) -> Result<Vec<RegisteredModelEntry>> {
        #[derive(Deserialize)]
        struct R {
            #[serde(default)]
            registered_models: Vec<RegisteredModelEntry>,
            #[serde(default)]
            next_page_token: Option<String>,
        }
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("max_results", "1000")];
            if let Some(t) = &token {
                query.push(("page_token", t));
            }
            let r: R = self.get("registered-models/search", &query)?;
            out.extend(r.registered_models);
            match r.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }

    /// Deletes a registered model with all its versions.
    pub fn delete_registered_model(&self, name: &str) -> Result<()> {
        let _: serde_json::Value =
            self.call(Method::DELETE, "registered-models/delete", Idempotence::Safe, &json!({ "name": name }))?;
        Ok(())
    }

    /// Creates the next version of `name` from the files at `source`, produced by `run_id`.
    pub fn create_model_version(
        &self,
        name: &str,
        source: &str,
        run_id: &str,
        tags: &[KeyValue],
    ) -> Result<ModelVersionEntry> {
        #[derive(Deserialize)]
        struct R {
            model_version: ModelVersionEntry,
        }
        let body = json!({ "name": name, "source": source, "run_id": run_id, "tags": tags });
        let r: R = self.create("model-versions/create", &body)?;
        Ok(r.model_version)
    }

    /// Version `version` of `name` (with its aliases).
    pub fn get_model_version(&self, name: &str, version: &str) -> Result<ModelVersionEntry> {
        #[derive(Deserialize)]
        struct R {
            model_version: ModelVersionEntry,
        }
        let r: R = self.get("model-versions/get", &[("name", name), ("version", version)])?;
        Ok(r.model_version)
    }

    /// Deletes version `version` of `name` (MLflow drops its aliases and never reuses the number).
    pub fn delete_model_version(&self, name: &str, version: &str) -> Result<()> {
        let body = json!({ "name": name, "version": version });
        let _: serde_json::Value = self.call(Method::DELETE, "model-versions/delete", Idempotence::Safe, &body)?;
        Ok(())
    }

    /// Where version `version` of `name` can be downloaded from (the source, verbatim).
    pub fn get_download_uri(&self, name: &str, version: &str) -> Result<String> {
        #[derive(Deserialize)]
        struct R {
            artifact_uri: String,
        }
        let r: R = self.get("model-versions/get-download-uri", &[("name", name), ("version", version)])?;
        Ok(r.artifact_uri)
    }

    /// Every live version of `name` (no aliases in the entries). `name` must be a valid Wharf
    /// model name, which keeps it safe inside MLflow's filter syntax.
    pub fn search_model_versions(&self, name: &str) -> Result<Vec<ModelVersionEntry>> {
        wharf_core::ports::registry::validate_name(name)?;
        #[derive(Deserialize)]
        struct R {
            #[serde(default)]
            model_versions: Vec<ModelVersionEntry>,
            #[serde(default)]
            next_page_token: Option<String>,
        }
        let filter = format!("name='{name}'");
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("filter", filter.as_str()), ("max_results", "10000")];
            if let Some(t) = &token {
                query.push(("page_token", t));
            }
            let r: R = self.get("model-versions/search", &query)?;
            out.extend(r.model_versions);
            match r.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }

    /// Points `alias` of `name` at `version`.
    pub fn set_alias(&self, name: &str, alias: &str, version: &str) -> Result<()> {
        let body = json!({ "name": name, "alias": alias, "version": version });
        let _: serde_json::Value = self.post("registered-models/alias", &body)?;
        Ok(())
    }

    /// Removes `alias` of `name`. MLflow answers 200 for an alias that does not exist; it
    /// wants the parameters as a JSON body, not a query string.
    pub fn delete_alias(&self, name: &str, alias: &str) -> Result<()> {
        let body = json!({ "name": name, "alias": alias });
        let _: serde_json::Value = self.call(Method::DELETE, "registered-models/alias", Idempotence::Safe, &body)?;
        Ok(())
    }

    /// The version `alias` of `name` points at. An unknown alias is NotFound (MLflow answers
    /// it with a 400 INVALID_PARAMETER_VALUE).
    pub fn get_model_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersionEntry> {
        #[derive(Deserialize)]
        struct R {
            model_version: ModelVersionEntry,
        }
        match self.get::<R>("registered-models/alias", &[("name", name), ("alias", alias)]) {
            Ok(r) => Ok(r.model_version),
            Err(WharfError::InvalidInput { message, .. }) if message.contains("not found") => {
                Err(WharfError::not_found(format!("alias '{alias}' of model '{name}'")))
            }
            Err(e) => Err(e),
        }
    }
}

/// The proxy-relative path of an artifact root: `mlflow-artifacts:/1/<run>/artifacts` (or
/// `mlflow-artifacts://host/1/…`) → `1/<run>/artifacts`. Other schemes (an experiment with a
/// local or S3 `artifact_location`) cannot go through the server and are refused clearly.
pub fn proxy_path(root: &str) -> Result<String> {
    let rest = root.strip_prefix("mlflow-artifacts:").ok_or_else(|| {
        WharfError::Unsupported(format!(
            "artifact location '{root}' is not served by the MLflow server (start it with --serve-artifacts, \
             the default, and use experiments whose artifact_location is mlflow-artifacts:)"
        ))
    })?;
    let rest = match rest.strip_prefix("//") {
        Some(with_host) => with_host.split_once('/').map(|(_, p)| p).unwrap_or(""),
        None => rest,
    };
    let rel = rest.trim_matches('/');
    if rel.split('/').any(|s| s == ".." || s == ".") {
        return Err(WharfError::invalid("artifact_uri", format!("'{root}' is not a plain path")));
    }
    Ok(rel.to_string())
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

fn check_active(exp: Experiment) -> Result<Experiment> {
    if exp.lifecycle_stage == "deleted" {
        Err(WharfError::config(
            "mlflow.experiment",
            format!(
                "experiment '{}' is deleted in MLflow; restore it or pick another name (MLflow keeps the name reserved)",
                exp.name
            ),
        ))
    } else {
        Ok(exp)
    }
}

fn error_from_response(operation: &str, resp: Response) -> MlflowError {
    #[derive(Deserialize)]
    struct Envelope {
        error_code: String,
        #[serde(default)]
        message: String,
    }
    let status = resp.status().as_u16();
    let text = resp.text().unwrap_or_default();
    match serde_json::from_str::<Envelope>(&text) {
        Ok(env) => MlflowError::Api {
            operation: operation.to_string(),
            status,
            code: env.error_code,
            // The ALREADY_EXISTS message for experiments embeds raw SQL; keep messages short.
            message: truncate(&env.message, 500),
        },
        Err(_) => MlflowError::Http { operation: operation.to_string(), status, body: truncate(&text, 200) },
    }
}

fn truncate(text: &str, max: usize) -> String {
    let text = text.trim();
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_values_round_trip_including_non_finite() {
        for v in [1.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let m = Metric { key: "k".into(), value: v, timestamp: 1, step: 2 };
            let text = serde_json::to_string(&m).unwrap();
            let back: Metric = serde_json::from_str(&text).unwrap();
            assert!(back.value == v || (v.is_nan() && back.value.is_nan()), "{text}");
        }
        let m: Metric = serde_json::from_str(r#"{"key":"k","value":"NaN","timestamp":1}"#).unwrap();
        assert!(m.value.is_nan());
        assert_eq!(m.step, 0, "a missing step is 0");
    }

    #[test]
    fn proxy_paths() {
        assert_eq!(proxy_path("mlflow-artifacts:/1/abc/artifacts").unwrap(), "1/abc/artifacts");
        assert_eq!(proxy_path("mlflow-artifacts://host:5000/1/abc/artifacts").unwrap(), "1/abc/artifacts");
        assert!(matches!(proxy_path("s3://bucket/x"), Err(WharfError::Unsupported(_))));
        assert!(proxy_path("mlflow-artifacts:/1/../etc").is_err());
    }

    #[test]
    fn auth_is_never_printed() {
        let a = Auth::Basic { username: "u".into(), password: "secret".into() };
        assert!(!format!("{a:?}").contains("secret"));
        assert!(!format!("{:?}", Auth::Bearer("tok".into())).contains("tok"));
    }

    #[test]
    fn lists_may_be_absent() {
        let run: Run = serde_json::from_str(r#"{"info":{"run_id":"r"}}"#).unwrap();
        assert!(run.data.metrics.is_empty() && run.data.tags.is_empty());
    }
}
