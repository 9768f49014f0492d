//! `MlflowTracker`: runs, params, metrics (with steps), tags and models in MLflow.
//!
//! # Batching
//!
//! Params, metrics and tags are buffered per run and sent with `runs/log-batch` in chunks
//! within MLflow's limits, so logging 10,000 metric points costs about ten requests, not
//! 10,000. The buffer is flushed when a chunk is full, before a model is logged, at
//! [`end_run`](TrackerPort::end_run) and before [`get_run`](TrackerPort::get_run) reads the run
//! back, so a read always sees everything logged so far. A param that would change value is
//! refused at once from the local copy (MLflow would only refuse it at the flush).
//!
//! # Failure policy
//!
//! With `strict = false` (the default), when the server cannot be reached or fails (no
//! answer, 429 or 5xx after retries), the tracker warns once and carries on in a
//! [`FileTracker`] directory, the *spool*: a run that could not start is started there; a run
//! whose flush fails moves there with what was not yet sent, tagged with its MLflow run id.
//! [`replay`](crate::replay) (`wharf runs sync`) sends the spool to MLflow later. With
//! `strict = true` those failures are errors. Client errors (bad input, unknown run) are
//! errors in both modes.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::config::MlflowConfig;
use chrono::{DateTime, TimeZone, Utc};
use wharf_core::ports::tracker::{MetricPoint, RunInfo, RunRecord, RunStatus, TrackerPort};
use wharf_core::{FileTracker, Model, Result, WharfError};

use crate::client::{
    KeyValue, Metric, MlflowClient, MlflowRunStatus, Run, MAX_BATCH_METRICS, MAX_BATCH_PARAMS, MAX_BATCH_TAGS,
};
use crate::error::{is_unavailable, ADAPTER};
use crate::mlmodel::{self, MLMODEL_FILE, MODEL_FILE};

/// MLflow's tag naming a run's parent; the UI nests child runs under it.
pub const PARENT_RUN_ID_TAG: &str = "mlflow.parentRunId";
/// Tag on a spooled run naming the MLflow run it continues (absent: a run MLflow never saw).
pub const SPOOL_RESUME_TAG: &str = "wharf.mlflow.run_id";
/// Tag on a spooled run naming the experiment it belongs to.
pub const SPOOL_EXPERIMENT_TAG: &str = "wharf.mlflow.experiment";
/// Tag on a replayed MLflow run naming the spool run it came from, so a replay interrupted
/// half-way and run again does not create the run twice.
pub const REPLAYED_FROM_TAG: &str = "wharf.spool_run_id";

/// MLflow's longest param value; longer ones are silently truncated by the server.
const MAX_PARAM_VALUE: usize = 6000;
/// MLflow's longest tag value.
const MAX_TAG_VALUE: usize = 8000;
/// MLflow's longest param, metric or tag key.
const MAX_KEY: usize = 250;

/// What the tracker does when MLflow is unreachable.
#[derive(Debug, Clone)]
pub enum FailurePolicy {
    /// Fail the call.
    Strict,
    /// Warn once and keep runs in this file-tracker directory for a later replay.
    Spool(PathBuf),
}

/// Where a run's data goes.
#[derive(Debug)]
enum Target {
    /// The MLflow run of the same id; `artifact_root` is its artifact URI.
    Remote { artifact_root: String },
    /// A run in the spool directory (its id differs when the run started in MLflow).
    Spool { spool_id: String },
}

#[derive(Debug)]
struct RunState {
    name: String,
    target: Target,
    /// Every param logged so far, to refuse a changed value at once.
    params: BTreeMap<String, String>,
    pending_params: Vec<KeyValue>,
    pending_tags: Vec<KeyValue>,
    pending_metrics: Vec<Metric>,
}

impl RunState {
    fn has_pending(&self) -> bool {
        !(self.pending_params.is_empty() && self.pending_tags.is_empty() && self.pending_metrics.is_empty())
    }
    fn full(&self) -> bool {
        self.pending_metrics.len() >= MAX_BATCH_METRICS
            || self.pending_params.len() >= MAX_BATCH_PARAMS
            || self.pending_tags.len() >= MAX_BATCH_TAGS
    }
}

/// Tracks runs in an MLflow experiment (created on first use, reused by name).
#[derive(Debug)]
pub struct MlflowTracker {
    client: MlflowClient,
    experiment: String,
    experiment_id: Mutex<Option<String>>,
    runs: Mutex<HashMap<String, Arc<Mutex<RunState>>>>,
    policy: FailurePolicy,
    warned: AtomicBool,
    requests: std::sync::atomic::AtomicUsize,
}

impl MlflowTracker {
    /// A tracker logging to `experiment` through `client`. Nothing is sent until the first run.
    pub fn new(client: MlflowClient, experiment: impl Into<String>, policy: FailurePolicy) -> Self {
        MlflowTracker {
            client,
            experiment: experiment.into(),
            experiment_id: Mutex::new(None),
            runs: Mutex::new(HashMap::new()),
            policy,
            warned: AtomicBool::new(false),
            requests: Default::default(),
        }
    }

    /// A tracker from `[tracking.mlflow]`. A missing `uri` is a configuration error naming
    /// `tracking.mlflow.uri`.
    pub fn from_config(config: &MlflowConfig) -> Result<Self> {
        let uri = config.uri.as_deref().filter(|u| !u.trim().is_empty()).ok_or_else(|| {
            WharfError::config("tracking.mlflow.uri", "the MLflow tracker needs the tracking server's URI")
        })?;
        let client = MlflowClient::new(uri, Duration::from_millis(config.timeout_ms.max(1)))
            .map_err(|e| rename_config_key(e, "tracking.mlflow.uri"))?;
        let policy = if config.strict { FailurePolicy::Strict } else { FailurePolicy::Spool(config.spool_dir.clone()) };
        Ok(MlflowTracker::new(client, config.experiment.clone(), policy))
    }

    /// The client this tracker talks through.
    pub fn client(&self) -> &MlflowClient {
        &self.client
    }

    /// The experiment's name.
    pub fn experiment(&self) -> &str {
        &self.experiment
    }

    /// How many `runs/log-batch` requests this tracker has sent (for benchmarks and tests).
    pub fn batch_requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    /// The experiment's id, created on first use.
    pub fn experiment_id(&self) -> Result<String> {
        let mut cached = lock(&self.experiment_id);
        if let Some(id) = cached.as_ref() {
            return Ok(id.clone());
        }
        let id = self.client.get_or_create_experiment(&self.experiment)?.experiment_id;
        *cached = Some(id.clone());
        Ok(id)
    }

    /// Starts a run nested under `parent_run_id` (MLflow's `mlflow.parentRunId` tag), which
    /// the UI shows as a child of the parent.
    pub fn begin_child_run(&self, parent_run_id: &str, name: Option<&str>) -> Result<RunInfo> {
        self.begin_with_tags(name, vec![KeyValue::new(PARENT_RUN_ID_TAG, parent_run_id)])
    }

    fn begin_with_tags(&self, name: Option<&str>, tags: Vec<KeyValue>) -> Result<RunInfo> {
        for t in &tags {
            check_tag(&t.key, &t.value)?;
        }
        let started = self.experiment_id().and_then(|exp| {
            self.client.create_run(&exp, name, Utc::now().timestamp_millis(), &tags).map_err(|e| match e {
                WharfError::NotFound { .. } => {
                    // The experiment was deleted behind our back: look it up again next time.
                    *lock(&self.experiment_id) = None;
                    e
                }
                e => e,
            })
        });
        match started {
            Ok(run) => {
                let info = RunInfo { id: run.info.run_id.clone(), name: run.info.run_name.clone() };
                let state = RunState {
                    name: info.name.clone(),
                    target: Target::Remote { artifact_root: run.info.artifact_uri },
                    params: BTreeMap::new(),
                    pending_params: Vec::new(),
                    pending_tags: Vec::new(),
                    pending_metrics: Vec::new(),
                };
                lock(&self.runs).insert(info.id.clone(), Arc::new(Mutex::new(state)));
                Ok(info)
            }
            Err(err) => {
                let spool = self.spool_for(err)?;
                let info = spool.begin_run(name)?;
                let mut spool_tags: BTreeMap<String, String> = tags.into_iter().map(|kv| (kv.key, kv.value)).collect();
                spool_tags.insert(SPOOL_EXPERIMENT_TAG.into(), self.experiment.clone());
                spool.set_tags(&info.id, &spool_tags)?;
                let state = RunState {
                    name: info.name.clone(),
                    target: Target::Spool { spool_id: info.id.clone() },
                    params: BTreeMap::new(),
                    pending_params: Vec::new(),
                    pending_tags: Vec::new(),
                    pending_metrics: Vec::new(),
                };
                lock(&self.runs).insert(info.id.clone(), Arc::new(Mutex::new(state)));
                Ok(info)
            }
        }
    }

    /// The spool to fall back to after `err`, or `err` itself when it is not an outage or the
    /// policy is strict. Warns once per tracker.
    fn spool_for(&self, err: WharfError) -> Result<FileTracker> {
        match &self.policy {
            FailurePolicy::Spool(dir) if is_unavailable(&err) => {
                if !self.warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        error = %err,
                        spool = %dir.display(),
                        "MLflow is unreachable; runs are spooled locally (send them later with `wharf runs sync`)"
                    );
                }
                Ok(FileTracker::new(dir))
            }
            _ => Err(err),
        }
    }

    /// The state of `run_id`: a run this tracker started, or one found RUNNING in MLflow.
    fn state(&self, run_id: &str) -> Result<Arc<Mutex<RunState>>> {
        if let Some(state) = lock(&self.runs).get(run_id) {
            return Ok(state.clone());
        }
        if run_id.is_empty() || !run_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(WharfError::invalid("run_id", format!("'{run_id}' is not a run id")));
        }
        let run = self.client.get_run(run_id)?;
        if run.info.status != "RUNNING" {
            return Err(WharfError::invalid("run_id", format!("run '{run_id}' has ended ({})", run.info.status)));
        }
        let state = RunState {
            name: run.info.run_name.clone(),
            target: Target::Remote { artifact_root: run.info.artifact_uri.clone() },
            params: run.data.params.iter().map(|kv| (kv.key.clone(), kv.value.clone())).collect(),
            pending_params: Vec::new(),
            pending_tags: Vec::new(),
            pending_metrics: Vec::new(),
        };
        let state = Arc::new(Mutex::new(state));
        Ok(lock(&self.runs).entry(run_id.to_string()).or_insert(state).clone())
    }

    /// Sends everything buffered for a remote run. On an outage in spool mode the run moves
    /// to the spool with the unsent data; other errors drop the failed batch (it would fail
    /// again) and are returned.
    fn flush(&self, run_id: &str, state: &mut RunState) -> Result<()> {
        let Target::Remote { .. } = &state.target else { return Ok(()) };
        if !state.has_pending() {
            return Ok(());
        }
        match self.client.log_batch(run_id, &state.pending_metrics, &state.pending_params, &state.pending_tags) {
            Ok(n) => {
                self.requests.fetch_add(n, Ordering::Relaxed);
                state.pending_metrics.clear();
                state.pending_params.clear();
                state.pending_tags.clear();
                Ok(())
            }
            Err(err) => match self.spool_for(err) {
                Ok(spool) => self.divert(run_id, state, &spool),
                Err(err) => {
                    state.pending_metrics.clear();
                    state.pending_params.clear();
                    state.pending_tags.clear();
                    Err(err)
                }
            },
        }
    }

    /// Moves a remote run to the spool, with everything not yet sent.
    fn divert(&self, run_id: &str, state: &mut RunState, spool: &FileTracker) -> Result<()> {
        let info = spool.begin_run(Some(&state.name))?;
        let mut tags: BTreeMap<String, String> = BTreeMap::from([
            (SPOOL_RESUME_TAG.to_string(), run_id.to_string()),
            (SPOOL_EXPERIMENT_TAG.to_string(), self.experiment.clone()),
        ]);
        tags.extend(state.pending_tags.drain(..).map(|kv| (kv.key, kv.value)));
        spool.set_tags(&info.id, &tags)?;
        let params: BTreeMap<String, String> = state.pending_params.drain(..).map(|kv| (kv.key, kv.value)).collect();
        spool.log_params(&info.id, &params)?;
        for m in state.pending_metrics.drain(..) {
            spool.log_metrics(
                &info.id,
                &BTreeMap::from([(m.key, m.value)]),
                Some(u64::try_from(m.step).unwrap_or(0)),
            )?;
        }
        state.target = Target::Spool { spool_id: info.id };
        Ok(())
    }

    fn spool(&self) -> Result<FileTracker> {
        match &self.policy {
            FailurePolicy::Spool(dir) => Ok(FileTracker::new(dir)),
            FailurePolicy::Strict => Err(WharfError::backend(ADAPTER, "run is spooled but the policy is strict", None)),
        }
    }

    /// Reads a run from MLflow: info, params, tags, every metric point, artifact names.
    fn read_remote(&self, run_id: &str) -> Result<RunRecord> {
        let run = self.client.get_run(run_id)?;
        let mut metrics = Vec::new();
        let mut keys: Vec<&str> = run.data.metrics.iter().map(|m| m.key.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        for key in keys {
            for m in self.client.metric_history(run_id, key)? {
                metrics.push(point(m));
            }
        }
        // Logging order across keys: MLflow keeps each key's points in time order.
        metrics.sort_by_key(|m| m.timestamp);
        let artifacts = if run.info.artifact_uri.starts_with("mlflow-artifacts:") {
            self.client
                .list_artifacts(&run.info.artifact_uri, "")?
                .into_iter()
                .filter(|f| f.is_dir)
                .map(|f| f.path)
                .collect()
        } else {
            Vec::new()
        };
        Ok(record_from(run, metrics, artifacts))
    }
}

impl TrackerPort for MlflowTracker {
    fn name(&self) -> &str {
        ADAPTER
    }

    fn begin_run(&self, name: Option<&str>) -> Result<RunInfo> {
        self.begin_with_tags(name, Vec::new())
    }

    fn log_params(&self, run_id: &str, params: &BTreeMap<String, String>) -> Result<()> {
        let state = self.state(run_id)?;
        let mut state = lock(&state);
        for (k, v) in params {
            check_key(k, "params")?;
            if v.chars().count() > MAX_PARAM_VALUE {
                return Err(WharfError::invalid(
                    format!("params.{k}"),
                    format!("longer than MLflow's {MAX_PARAM_VALUE} characters"),
                ));
            }
            if let Some(old) = state.params.get(k) {
                if old != v {
                    return Err(WharfError::invalid(
                        format!("params.{k}"),
                        format!("already logged as '{old}'; a param cannot change within a run"),
                    ));
                }
            }
        }
        if let Target::Spool { spool_id } = &state.target {
            let spool_id = spool_id.clone();
            self.spool()?.log_params(&spool_id, params)?;
            state.params.extend(params.iter().map(|(k, v)| (k.clone(), v.clone())));
            return Ok(());
        }
        for (k, v) in params {
            if state.params.insert(k.clone(), v.clone()).is_none() {
                state.pending_params.push(KeyValue::new(k.clone(), v.clone()));
            }
        }
        if state.full() {
            self.flush(run_id, &mut state)?;
        }
        Ok(())
    }

    fn log_metrics(&self, run_id: &str, metrics: &BTreeMap<String, f64>, step: Option<u64>) -> Result<()> {
        for k in metrics.keys() {
            check_key(k, "metrics")?;
        }
        let step_value = i64::try_from(step.unwrap_or(0))
            .map_err(|_| WharfError::invalid("step", "larger than MLflow's 64-bit signed steps"))?;
        let state = self.state(run_id)?;
        let mut state = lock(&state);
        if let Target::Spool { spool_id } = &state.target {
            let spool_id = spool_id.clone();
            return self.spool()?.log_metrics(&spool_id, metrics, step);
        }
        let timestamp = Utc::now().timestamp_millis();
        for (k, v) in metrics {
            state.pending_metrics.push(Metric { key: k.clone(), value: *v, timestamp, step: step_value });
        }
        if state.full() {
            self.flush(run_id, &mut state)?;
        }
        Ok(())
    }

    fn set_tags(&self, run_id: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        for (k, v) in tags {
            check_tag(k, v)?;
        }
        let state = self.state(run_id)?;
        let mut state = lock(&state);
        if let Target::Spool { spool_id } = &state.target {
            let spool_id = spool_id.clone();
            return self.spool()?.set_tags(&spool_id, tags);
        }
        state.pending_tags.extend(tags.iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone())));
        if state.full() {
            self.flush(run_id, &mut state)?;
        }
        Ok(())
    }

    fn log_model(&self, run_id: &str, model: &Model, artifact: &str) -> Result<()> {
        mlmodel::validate_artifact_name(artifact)?;
        let state = self.state(run_id)?;
        let mut state = lock(&state);
        if let Target::Remote { artifact_root } = &state.target {
            let root = artifact_root.clone();
            let logged = mlmodel::encode(model, artifact, run_id)?;
            let uploaded =
                self.client.upload_artifact(&root, &format!("{artifact}/{MODEL_FILE}"), logged.artifact).and_then(
                    |_| self.client.upload_artifact(&root, &format!("{artifact}/{MLMODEL_FILE}"), logged.mlmodel),
                );
            match uploaded {
                Ok(()) => return Ok(()),
                Err(err) => {
                    let spool = self.spool_for(err)?;
                    self.divert(run_id, &mut state, &spool)?;
                }
            }
        }
        match &state.target {
            Target::Spool { spool_id } => self.spool()?.log_model(spool_id, model, artifact),
            Target::Remote { .. } => Ok(()),
        }
    }

    fn end_run(&self, run_id: &str, status: RunStatus) -> Result<()> {
        let mlflow_status = match status {
            RunStatus::Running => return Err(WharfError::invalid("status", "a run cannot end as RUNNING")),
            RunStatus::Finished => MlflowRunStatus::Finished,
            RunStatus::Failed => MlflowRunStatus::Failed,
            RunStatus::Killed => MlflowRunStatus::Killed,
            other => return Err(WharfError::Unsupported(format!("ending an MLflow run as {other:?}"))),
        };
        let state = self.state(run_id)?;
        let mut state = lock(&state);
        // Even when the last batch is refused, the run must not stay RUNNING: end it, then
        // report the refusal.
        let flushed = self.flush(run_id, &mut state);
        if let Target::Remote { .. } = &state.target {
            match self.client.update_run(run_id, mlflow_status, Some(Utc::now().timestamp_millis())) {
                Ok(_) => {}
                Err(err) => {
                    let spool = self.spool_for(err)?;
                    self.divert(run_id, &mut state, &spool)?;
                }
            }
        }
        if let Target::Spool { spool_id } = &state.target {
            self.spool()?.end_run(spool_id, status)?;
        }
        drop(state);
        lock(&self.runs).remove(run_id);
        flushed
    }

    fn get_run(&self, run_id: &str) -> Result<RunRecord> {
        let known = lock(&self.runs).get(run_id).cloned();
        if let Some(state) = known {
            let mut state = lock(&state);
            self.flush(run_id, &mut state)?;
            if let Target::Spool { spool_id } = &state.target {
                let mut record = self.spool()?.get_run(spool_id)?;
                record.info.id = run_id.to_string();
                return Ok(record);
            }
        }
        match self.read_remote(run_id) {
            Err(WharfError::NotFound { what }) => {
                // A run that never reached MLflow lives in the spool under its own id.
                match self.spool().and_then(|s| s.get_run(run_id)) {
                    Ok(record) => Ok(record),
                    Err(_) => Err(WharfError::NotFound { what }),
                }
            }
            other => other,
        }
    }
}

fn check_key(key: &str, what: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(WharfError::invalid(format!("{what}.{key}"), format!("keys must have 1-{MAX_KEY} characters")));
    }
    Ok(())
}

fn check_tag(key: &str, value: &str) -> Result<()> {
    check_key(key, "tags")?;
    if value.chars().count() > MAX_TAG_VALUE {
        return Err(WharfError::invalid(
            format!("tags.{key}"),
            format!("longer than MLflow's {MAX_TAG_VALUE} characters"),
        ));
    }
    Ok(())
}

fn point(m: Metric) -> MetricPoint {
    MetricPoint { key: m.key, value: m.value, step: u64::try_from(m.step).unwrap_or(0), timestamp: millis(m.timestamp) }
}

fn millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

pub(crate) fn parse_status(status: &str) -> RunStatus {
    match status {
        "FINISHED" => RunStatus::Finished,
        "FAILED" => RunStatus::Failed,
        "KILLED" => RunStatus::Killed,
        _ => RunStatus::Running,
    }
}

fn record_from(run: Run, metrics: Vec<MetricPoint>, artifacts: Vec<String>) -> RunRecord {
    RunRecord {
        info: RunInfo { id: run.info.run_id, name: run.info.run_name },
        status: parse_status(&run.info.status),
        start_time: millis(run.info.start_time),
        end_time: run.info.end_time.filter(|t| *t > 0).map(millis),
        params: run.data.params.into_iter().map(|kv| (kv.key, kv.value)).collect(),
        tags: run.data.tags.into_iter().map(|kv| (kv.key, kv.value)).collect(),
        metrics,
        artifacts,
    }
}

/// A mutex poisoned by a panicking thread still holds consistent data here (every update is
/// a plain push or insert), so recover it rather than propagate the panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Moves a URL error from the generic `mlflow.uri` key to the section it came from.
pub(crate) fn rename_config_key(err: WharfError, key: &str) -> WharfError {
    match err {
        WharfError::Config { message, .. } => WharfError::config(key, message),
        other => other,
    }
}
