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
//! This tracker has none of its own: an unreachable or failing server (no answer, 429 or 5xx
//! after retries) is a [`Backend`](WharfError::Backend) error. Failover is the core's
//! spool-and-replay decorator, the same one lineage uses: [`crate::spool`] puts this tracker
//! behind it (what configuration builds), and `wharf runs sync` replays the spool. When a
//! flush fails because the server is unavailable, the buffered data stays here until the
//! decorator takes it ([`MlflowTracker::take_unsent`]), so nothing buffered is lost.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::config::MlflowConfig;
use chrono::{DateTime, TimeZone, Utc};
use wharf_core::ports::tracker::{
    check_params_unchanged, MetricPoint, RunInfo, RunQuery, RunRecord, RunStatus, TrackerPort,
};
use wharf_core::spool::TrackerCall;
use wharf_core::{DatasetInput, Model, Result, WharfError};

use crate::client::{
    DatasetEntry, DatasetInputEntry, KeyValue, Metric, MlflowClient, MlflowRunStatus, Run, MAX_BATCH_METRICS,
    MAX_BATCH_PARAMS, MAX_BATCH_TAGS,
};
use crate::error::{is_unavailable, ADAPTER};
use crate::mlmodel;

/// MLflow's tag naming a run's parent; the UI nests child runs under it.
pub const PARENT_RUN_ID_TAG: &str = "mlflow.parentRunId";
/// Tag on a replayed MLflow run naming the local run id it was spooled under, so a replay
/// interrupted half-way and run again does not create the run twice.
pub const REPLAYED_FROM_TAG: &str = wharf_core::spool::tracker::SPOOL_RUN_ID_TAG;

/// MLflow's longest param value; longer ones are silently truncated by the server.
const MAX_PARAM_VALUE: usize = 6000;
/// MLflow's longest tag value.
const MAX_TAG_VALUE: usize = 8000;
/// MLflow's longest param, metric or tag key.
const MAX_KEY: usize = 250;

#[derive(Debug)]
struct RunState {
    /// The run's artifact URI.
    artifact_root: String,
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
    fn clear(&mut self) {
        self.pending_metrics.clear();
        self.pending_params.clear();
        self.pending_tags.clear();
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
    requests: std::sync::atomic::AtomicUsize,
}

impl MlflowTracker {
    /// A tracker logging to `experiment` through `client`. Nothing is sent until the first run.
    /// An unreachable server is an error; [`crate::spool::spooled_tracker`] adds the spool.
    pub fn new(client: MlflowClient, experiment: impl Into<String>) -> Self {
        MlflowTracker {
            client,
            experiment: experiment.into(),
            experiment_id: Mutex::new(None),
            runs: Mutex::new(HashMap::new()),
            requests: Default::default(),
        }
    }

    /// A tracker from `[tracking.mlflow]`, without the spool (`strict` and `spool_dir` are the
    /// decorator's: see [`crate::spool::spooled_tracker`]). A missing `uri` is a
    /// configuration error naming `tracking.mlflow.uri`.
    pub fn from_config(config: &MlflowConfig) -> Result<Self> {
        let uri = config.uri.as_deref().filter(|u| !u.trim().is_empty()).ok_or_else(|| {
            WharfError::config("tracking.mlflow.uri", "the MLflow tracker needs the tracking server's URI")
        })?;
        let client = MlflowClient::new(uri, Duration::from_millis(config.timeout_ms.max(1)))
            .map_err(|e| rename_config_key(e, "tracking.mlflow.uri"))?;
        Ok(MlflowTracker::new(client, config.experiment.clone()))
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

    /// Starts a live run, with the `mlflow.*` source tags MLflow's client would set (a
    /// replayed run, [`begin_at`](Self::begin_at), was started by another process).
    fn begin_with_tags(&self, name: Option<&str>, tags: Vec<KeyValue>) -> Result<RunInfo> {
        self.begin_at(name, crate::source::with_source(tags), Utc::now().timestamp_millis())
    }

    /// Creates a run that started at `start_ms` (a replayed run keeps its original start).
    pub(crate) fn begin_at(&self, name: Option<&str>, tags: Vec<KeyValue>, start_ms: i64) -> Result<RunInfo> {
        for t in &tags {
            check_tag(&t.key, &t.value)?;
        }
        let exp = self.experiment_id()?;
        let run = self.client.create_run(&exp, name, start_ms, &tags).map_err(|e| match e {
            WharfError::NotFound { .. } => {
                // The experiment was deleted behind our back: look it up again next time.
                *lock(&self.experiment_id) = None;
                e
            }
            e => e,
        })?;
        Ok(self.adopt(run))
    }

    /// Starts tracking `run` here, whatever its status (a replay may send calls to a run an
    /// earlier, interrupted replay already ended).
    pub(crate) fn adopt(&self, run: Run) -> RunInfo {
        let info = RunInfo { id: run.info.run_id.clone(), name: run.info.run_name.clone() };
        let state = RunState {
            artifact_root: run.info.artifact_uri,
            params: run.data.params.into_iter().map(|kv| (kv.key, kv.value)).collect(),
            pending_params: Vec::new(),
            pending_tags: Vec::new(),
            pending_metrics: Vec::new(),
        };
        lock(&self.runs).insert(info.id.clone(), Arc::new(Mutex::new(state)));
        info
    }

    /// The run of this tracker's experiment tagged with `tag = value`, if any.
    pub(crate) fn find_tagged(&self, tag: &str, value: &str) -> Result<Option<Run>> {
        let exp = self.experiment_id()?;
        let filter = format!("tags.\"{tag}\" = '{value}'");
        Ok(self.client.search_runs(&[&exp], &filter)?.into_iter().next())
    }

    /// The state of `run_id`: a run this tracker started or adopted, or one found in MLflow
    /// (RUNNING, unless `ended_too`: a replay may send calls to a run it already ended).
    fn state(&self, run_id: &str, ended_too: bool) -> Result<Arc<Mutex<RunState>>> {
        if let Some(state) = lock(&self.runs).get(run_id) {
            return Ok(state.clone());
        }
        if run_id.is_empty() || !run_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(WharfError::invalid("run_id", format!("'{run_id}' is not a run id")));
        }
        let run = self.client.get_run(run_id)?;
        if run.info.status != "RUNNING" && !ended_too {
            return Err(WharfError::invalid("run_id", format!("run '{run_id}' has ended ({})", run.info.status)));
        }
        let state = RunState {
            artifact_root: run.info.artifact_uri.clone(),
            params: run.data.params.iter().map(|kv| (kv.key.clone(), kv.value.clone())).collect(),
            pending_params: Vec::new(),
            pending_tags: Vec::new(),
            pending_metrics: Vec::new(),
        };
        let state = Arc::new(Mutex::new(state));
        Ok(lock(&self.runs).entry(run_id.to_string()).or_insert(state).clone())
    }

    /// Sends everything buffered for a run. When the server is unavailable the buffer is
    /// kept (for a later flush, or for [`take_unsent`](Self::take_unsent)); other errors drop
    /// the failed batch (it would fail again) and are returned.
    fn flush(&self, run_id: &str, state: &mut RunState) -> Result<()> {
        if !state.has_pending() {
            return Ok(());
        }
        match self.client.log_batch(run_id, &state.pending_metrics, &state.pending_params, &state.pending_tags) {
            Ok(n) => {
                self.requests.fetch_add(n, Ordering::Relaxed);
                state.clear();
                Ok(())
            }
            Err(err) if is_unavailable(&err) => Err(err),
            Err(err) => {
                state.clear();
                Err(err)
            }
        }
    }

    fn states(&self) -> Vec<(String, Arc<Mutex<RunState>>)> {
        lock(&self.runs).iter().map(|(id, s)| (id.clone(), s.clone())).collect()
    }

    /// Sends what every run has buffered; the first error, after trying them all.
    pub fn flush_all(&self) -> Result<()> {
        let mut first = Ok(());
        for (id, state) in self.states() {
            let flushed = self.flush(&id, &mut lock(&state));
            if first.is_ok() {
                first = flushed;
            }
        }
        first
    }

    /// Takes out everything buffered and not yet sent, as the calls that would send it (each
    /// metric point keeps its time and step), so the spool can keep it.
    pub fn take_unsent(&self) -> Vec<TrackerCall> {
        let mut calls = Vec::new();
        for (id, state) in self.states() {
            let mut state = lock(&state);
            if !state.pending_params.is_empty() {
                let params: BTreeMap<String, String> =
                    state.pending_params.drain(..).map(|kv| (kv.key, kv.value)).collect();
                // Not logged any more as far as this tracker knows, so the replayed call is
                // sent rather than taken for a repeat.
                for k in params.keys() {
                    state.params.remove(k);
                }
                calls.push(TrackerCall::LogParams { run_id: id.clone(), params });
            }
            if !state.pending_tags.is_empty() {
                let tags = state.pending_tags.drain(..).map(|kv| (kv.key, kv.value)).collect();
                calls.push(TrackerCall::SetTags { run_id: id.clone(), tags });
            }
            // Consecutive points of one time and step travel together.
            let mut group: Option<(i64, i64, BTreeMap<String, f64>)> = None;
            for m in state.pending_metrics.drain(..) {
                match &mut group {
                    Some((ts, step, metrics))
                        if *ts == m.timestamp && *step == m.step && !metrics.contains_key(&m.key) =>
                    {
                        metrics.insert(m.key, m.value);
                    }
                    _ => {
                        if let Some(done) = group.take() {
                            calls.push(metrics_call(&id, done));
                        }
                        group = Some((m.timestamp, m.step, BTreeMap::from([(m.key, m.value)])));
                    }
                }
            }
            if let Some(done) = group {
                calls.push(metrics_call(&id, done));
            }
        }
        calls
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
                // Models are directories (`<name>/MLmodel`); files from `log_artifact` sit at
                // the root.
                .map(|f| f.path)
                .collect()
        } else {
            Vec::new()
        };
        Ok(record_from(run, metrics, artifacts))
    }
}

impl MlflowTracker {
    pub(crate) fn log_params_to(&self, run_id: &str, params: &BTreeMap<String, String>, ended_too: bool) -> Result<()> {
        let state = self.state(run_id, ended_too)?;
        let mut state = lock(&state);
        for (k, v) in params {
            check_key(k, "params")?;
            if v.chars().count() > MAX_PARAM_VALUE {
                return Err(WharfError::invalid(
                    format!("params.{k}"),
                    format!("longer than MLflow's {MAX_PARAM_VALUE} characters"),
                ));
            }
        }
        check_params_unchanged(&state.params, params)?;
        // A full buffer goes before this call joins it, so a failed flush leaves this call
        // out of the buffer: the caller (or the spool) still has it.
        if state.full() {
            self.flush(run_id, &mut state)?;
        }
        for (k, v) in params {
            if state.params.insert(k.clone(), v.clone()).is_none() {
                state.pending_params.push(KeyValue::new(k.clone(), v.clone()));
            }
        }
        Ok(())
    }

    /// Logs `metrics` as logged at `timestamp_ms` (a replay passes the original time).
    pub(crate) fn log_metrics_at(
        &self,
        run_id: &str,
        metrics: &BTreeMap<String, f64>,
        step: Option<u64>,
        timestamp_ms: i64,
        ended_too: bool,
    ) -> Result<()> {
        for k in metrics.keys() {
            check_key(k, "metrics")?;
        }
        let step = i64::try_from(step.unwrap_or(0))
            .map_err(|_| WharfError::invalid("step", "larger than MLflow's 64-bit signed steps"))?;
        let state = self.state(run_id, ended_too)?;
        let mut state = lock(&state);
        if state.full() {
            self.flush(run_id, &mut state)?;
        }
        for (k, v) in metrics {
            state.pending_metrics.push(Metric { key: k.clone(), value: *v, timestamp: timestamp_ms, step });
        }
        Ok(())
    }

    pub(crate) fn set_tags_on(&self, run_id: &str, tags: &BTreeMap<String, String>, ended_too: bool) -> Result<()> {
        for (k, v) in tags {
            check_tag(k, v)?;
        }
        let state = self.state(run_id, ended_too)?;
        let mut state = lock(&state);
        if state.full() {
            self.flush(run_id, &mut state)?;
        }
        state.pending_tags.extend(tags.iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone())));
        Ok(())
    }

    pub(crate) fn log_model_to(&self, run_id: &str, model: &Model, artifact: &str, ended_too: bool) -> Result<()> {
        mlmodel::validate_artifact_name(artifact)?;
        let state = self.state(run_id, ended_too)?;
        let root = lock(&state).artifact_root.clone();
        let mut logged = mlmodel::encode(model, artifact, run_id)?;
        for (file, bytes) in logged.take_files() {
            self.client.upload_artifact(&root, &format!("{artifact}/{file}"), bytes)?;
        }
        Ok(())
    }

    /// Records `input` as a dataset input of the run (MLflow's `runs/log-inputs`): a `local`
    /// dataset whose digest is Wharf's fingerprint, its rows in the profile, and its purpose
    /// in the input's `mlflow.data.context` tag, as MLflow's client logs one.
    pub(crate) fn log_input_to(&self, run_id: &str, input: &DatasetInput, ended_too: bool) -> Result<()> {
        self.state(run_id, ended_too)?;
        let entry = DatasetInputEntry {
            tags: vec![KeyValue::new(DATA_CONTEXT_TAG, &input.context)],
            dataset: DatasetEntry {
                name: input.name.clone(),
                // MLflow keeps at most 36 characters of a digest; 36 hex digits of a SHA-256
                // are still 144 bits.
                digest: input.digest.chars().take(MAX_DIGEST_CHARS).collect(),
                source_type: "local".into(),
                source: serde_json::json!({ "uri": input.source }).to_string(),
                profile: Some(serde_json::json!({ "num_rows": input.rows }).to_string()),
            },
        };
        self.client.log_inputs(run_id, &[entry])
    }

    /// Uploads the file at `path` as artifact `name` at the root of the run's artifacts.
    pub(crate) fn log_artifact_to(&self, run_id: &str, path: &Path, name: &str, ended_too: bool) -> Result<()> {
        wharf_core::ports::tracker::validate_artifact_name(name)?;
        let bytes = std::fs::read(path).map_err(|e| WharfError::io(path, e))?;
        let state = self.state(run_id, ended_too)?;
        let root = lock(&state).artifact_root.clone();
        self.client.upload_artifact(&root, name, bytes)
    }

    /// Ends a run as ended at `end_ms` (a replay passes the original time).
    pub(crate) fn end_at(&self, run_id: &str, status: RunStatus, end_ms: i64, ended_too: bool) -> Result<()> {
        let mlflow_status = match status {
            RunStatus::Running => return Err(WharfError::invalid("status", "a run cannot end as RUNNING")),
            RunStatus::Finished => MlflowRunStatus::Finished,
            RunStatus::Failed => MlflowRunStatus::Failed,
            RunStatus::Killed => MlflowRunStatus::Killed,
            other => return Err(WharfError::Unsupported(format!("ending an MLflow run as {other:?}"))),
        };
        let state = self.state(run_id, ended_too)?;
        let mut state = lock(&state);
        let flushed = self.flush(run_id, &mut state);
        if let Err(err) = &flushed {
            if is_unavailable(err) {
                // Nothing ends while data is still unsent; the buffer waits for a retry or
                // for the spool.
                return flushed;
            }
        }
        // Even when the last batch is refused, the run must not stay RUNNING: end it, then
        // report the refusal.
        self.client.update_run(run_id, mlflow_status, Some(end_ms))?;
        drop(state);
        lock(&self.runs).remove(run_id);
        flushed
    }
}

impl TrackerPort for MlflowTracker {
    fn name(&self) -> &str {
        ADAPTER
    }

    fn begin_run(&self, name: Option<&str>) -> Result<RunInfo> {
        self.begin_with_tags(name, Vec::new())
    }

    fn begin_child_run(&self, parent_run_id: &str, name: Option<&str>) -> Result<RunInfo> {
        MlflowTracker::begin_child_run(self, parent_run_id, name)
    }

    fn log_params(&self, run_id: &str, params: &BTreeMap<String, String>) -> Result<()> {
        self.log_params_to(run_id, params, false)
    }

    fn log_metrics(&self, run_id: &str, metrics: &BTreeMap<String, f64>, step: Option<u64>) -> Result<()> {
        self.log_metrics_at(run_id, metrics, step, Utc::now().timestamp_millis(), false)
    }

    fn set_tags(&self, run_id: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        self.set_tags_on(run_id, tags, false)
    }

    fn log_model(&self, run_id: &str, model: &Model, artifact: &str) -> Result<()> {
        self.log_model_to(run_id, model, artifact, false)
    }

    fn log_input(&self, run_id: &str, input: &DatasetInput) -> Result<()> {
        self.log_input_to(run_id, input, false)
    }

    fn log_artifact(&self, run_id: &str, path: &Path, name: &str) -> Result<()> {
        self.log_artifact_to(run_id, path, name, false)
    }

    fn end_run(&self, run_id: &str, status: RunStatus) -> Result<()> {
        self.end_at(run_id, status, Utc::now().timestamp_millis(), false)
    }

    /// The experiment's runs through `runs/search`, name and status matched here so the rule
    /// is the port's, newest start first; then each kept run read as
    /// [`get_run`](TrackerPort::get_run) reads it (metric histories included).
    fn search_runs(&self, query: &RunQuery) -> Result<Vec<RunRecord>> {
        let experiment = self.experiment_id()?;
        let mut heads: Vec<RunRecord> = self
            .client
            .search_runs(&[&experiment], "")?
            .into_iter()
            .map(|run| record_from(run, Vec::new(), Vec::new()))
            .filter(|head| query.matches(head))
            .collect();
        query.newest_first(&mut heads);
        let kept: Vec<String> = heads.into_iter().map(|h| h.info.id).collect();
        let mut records = Vec::with_capacity(kept.len());
        for id in kept {
            match self.get_run(&id) {
                Ok(record) => records.push(record),
                // Deleted between the search and the read.
                Err(WharfError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(records)
    }

    fn get_run(&self, run_id: &str) -> Result<RunRecord> {
        let known = lock(&self.runs).get(run_id).cloned();
        if let Some(state) = known {
            self.flush(run_id, &mut lock(&state))?;
        }
        self.read_remote(run_id)
    }
}

fn metrics_call(run_id: &str, (timestamp, step, metrics): (i64, i64, BTreeMap<String, f64>)) -> TrackerCall {
    TrackerCall::LogMetrics {
        run_id: run_id.to_string(),
        metrics,
        step: Some(u64::try_from(step).unwrap_or(0)),
        timestamp: millis(timestamp),
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
        inputs: run.inputs.dataset_inputs.into_iter().map(input_from).collect(),
    }
}

/// The longest dataset digest MLflow accepts.
const MAX_DIGEST_CHARS: usize = 36;

/// The tag of a dataset input saying what the run used it for.
const DATA_CONTEXT_TAG: &str = "mlflow.data.context";

/// A dataset input as the port describes it; fields MLflow holds in another shape (a
/// source other than `{"uri": …}`, no row count) come back as they are, or empty.
fn input_from(entry: DatasetInputEntry) -> DatasetInput {
    let json = |text: &Option<String>| text.as_deref().and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok());
    let source = json(&Some(entry.dataset.source.clone()))
        .and_then(|v| v.get("uri").and_then(|u| u.as_str()).map(str::to_string))
        .unwrap_or(entry.dataset.source);
    let rows = json(&entry.dataset.profile).and_then(|v| v.get("num_rows").and_then(|n| n.as_u64())).unwrap_or(0);
    let context = entry.tags.into_iter().find(|t| t.key == DATA_CONTEXT_TAG).map(|t| t.value).unwrap_or_default();
    DatasetInput::new(entry.dataset.name, entry.dataset.digest, source, context, rows)
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
