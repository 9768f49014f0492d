//! `TrackerPort`: experiment tracking (runs, params, metrics, models).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Model, Result, WharfError};

/// The tag naming a child run's parent (MLflow's own name for it, so MLflow nests the runs
/// and every other tracker keeps the same link).
pub const PARENT_RUN_TAG: &str = "mlflow.parentRunId";

/// How a run ended (or that it has not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[non_exhaustive]
pub enum RunStatus {
    /// Started, not ended.
    Running,
    /// Ended successfully.
    Finished,
    /// Ended by an error, or dropped without being finished.
    Failed,
    /// Stopped on purpose before it finished.
    Killed,
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
            RunStatus::Killed => "KILLED",
        })
    }
}

/// Identity of a started run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The tracker's id for the run (`noop` for the no-op tracker).
    pub id: String,
    /// The run's name (the name asked for, or a fallback).
    pub name: String,
}

/// One logged metric value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    /// Metric name.
    pub key: String,
    /// Value (NaN and infinities are allowed, as in MLflow).
    pub value: f64,
    /// Step (0 when none was given).
    pub step: u64,
    /// When it was logged.
    pub timestamp: DateTime<Utc>,
}

/// Everything a tracker recorded about a run, as read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Id and name.
    pub info: RunInfo,
    /// Current status.
    pub status: RunStatus,
    /// Start time.
    pub start_time: DateTime<Utc>,
    /// End time, once ended.
    pub end_time: Option<DateTime<Utc>>,
    /// Parameters.
    pub params: BTreeMap<String, String>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Every metric point, in logging order.
    pub metrics: Vec<MetricPoint>,
    /// Names of logged artifacts: models ([`TrackerPort::log_model`]) and files
    /// ([`TrackerPort::log_artifact`]).
    pub artifacts: Vec<String>,
    /// Datasets the run read ([`TrackerPort::log_input`]), in logging order.
    #[serde(default)]
    pub inputs: Vec<DatasetInput>,
}

/// A dataset a run read: MLflow's "dataset input", which its UI lists with the run. The
/// digest is what ties a model to the exact data it saw: Wharf's dataset fingerprint, which
/// changes whenever a value does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DatasetInput {
    /// A short name (the file's name).
    pub name: String,
    /// The content's digest.
    pub digest: String,
    /// Where it was read from (a path or URI).
    pub source: String,
    /// What the run used it for (`training`, `evaluation`).
    pub context: String,
    /// Rows it held.
    pub rows: u64,
}

impl DatasetInput {
    /// A dataset read from `source` for `context`.
    pub fn new(
        name: impl Into<String>,
        digest: impl Into<String>,
        source: impl Into<String>,
        context: impl Into<String>,
        rows: u64,
    ) -> Self {
        DatasetInput { name: name.into(), digest: digest.into(), source: source.into(), context: context.into(), rows }
    }
}

/// Which runs [`TrackerPort::search_runs`] returns: every condition set must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunQuery {
    /// Only runs whose name contains this, ignoring case.
    pub name_contains: Option<String>,
    /// Only runs with this status.
    pub status: Option<RunStatus>,
    /// At most this many runs (the newest); `None` for all.
    pub limit: Option<usize>,
}

impl RunQuery {
    /// Every run.
    pub fn all() -> Self {
        RunQuery::default()
    }
    /// Only runs whose name contains `text`, ignoring case.
    pub fn name_contains(mut self, text: impl Into<String>) -> Self {
        self.name_contains = Some(text.into());
        self
    }
    /// Only runs with `status`.
    pub fn status(mut self, status: RunStatus) -> Self {
        self.status = Some(status);
        self
    }
    /// At most `limit` runs, the newest.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }
    /// Orders `runs` newest start first (ties by id, so a listing is stable) and keeps the
    /// limit: the order every tracker lists in.
    pub fn newest_first(&self, runs: &mut Vec<RunRecord>) {
        runs.sort_by(|a, b| b.start_time.cmp(&a.start_time).then_with(|| b.info.id.cmp(&a.info.id)));
        if let Some(limit) = self.limit {
            runs.truncate(limit);
        }
    }
    /// Whether `run` meets the name and status conditions (the limit is [`newest_first`](Self::newest_first)'s).
    pub fn matches(&self, run: &RunRecord) -> bool {
        self.status.is_none_or(|s| s == run.status)
            && self
                .name_contains
                .as_deref()
                .is_none_or(|text| run.info.name.to_lowercase().contains(&text.to_lowercase()))
    }
}

/// Records training runs.
///
/// # Contract
///
/// - [`begin_run`](Self::begin_run) returns a run id unique within the tracker (the no-op
///   tracker answers `noop`); the run's name is the one given, or a fallback when `None`.
/// - Logging to a run that does not exist or has ended is an error (the no-op tracker, which
///   keeps nothing, accepts everything).
/// - A param, once logged, keeps its value: logging the same key with a different value is
///   [`InvalidInput`](crate::WharfError::InvalidInput) (MLflow's rule); the same value again
///   is accepted.
/// - Metrics keep every point with its step, in order.
/// - [`end_run`](Self::end_run) with [`RunStatus::Running`] is invalid input.
/// - Trackers that keep data answer [`get_run`](Self::get_run); others answer
///   [`Unsupported`](crate::WharfError::Unsupported).
/// - Trackers that keep data answer [`search_runs`](Self::search_runs) with the runs the
///   query matches, newest start first, each as [`get_run`](Self::get_run) would read it; a
///   run that cannot be read is left out rather than failing the listing.
///
/// Use [`start_run`](TrackerExt::start_run) rather than `begin_run`: it returns a
/// [`RunHandle`] that ends the run as FAILED if it is dropped unfinished.
pub trait TrackerPort: Send + Sync {
    /// A short name for reports (`noop`, `file`, `mlflow`).
    fn name(&self) -> &str;
    /// Starts a run and returns its identity.
    fn begin_run(&self, name: Option<&str>) -> Result<RunInfo>;
    /// Starts a run nested under `parent_run_id` (a search's trial under the search): the
    /// child carries the [`PARENT_RUN_TAG`] tag naming its parent, which is how MLflow nests
    /// runs and how any reader finds a run's children. Trackers that can set the tag at
    /// creation do; the default begins the run and then tags it.
    fn begin_child_run(&self, parent_run_id: &str, name: Option<&str>) -> Result<RunInfo> {
        let info = self.begin_run(name)?;
        self.set_tags(&info.id, &BTreeMap::from([(PARENT_RUN_TAG.to_string(), parent_run_id.to_string())]))?;
        Ok(info)
    }
    /// Logs parameters.
    fn log_params(&self, run_id: &str, params: &BTreeMap<String, String>) -> Result<()>;
    /// Logs metric values at `step`.
    fn log_metrics(&self, run_id: &str, metrics: &BTreeMap<String, f64>, step: Option<u64>) -> Result<()>;
    /// Sets tags (a tag may be overwritten).
    fn set_tags(&self, run_id: &str, tags: &BTreeMap<String, String>) -> Result<()>;
    /// Stores a model under the run as artifact `artifact`.
    fn log_model(&self, run_id: &str, model: &Model, artifact: &str) -> Result<()>;
    /// Stores the file at `path` under the run as artifact `name` (a leaderboard, a report,
    /// a plot): evidence that belongs with the run but is not a model. `name` follows the
    /// model-name rule (`A-Z a-z 0-9 . _ -`, so it can never step outside the run); storing
    /// a name again replaces the file. Trackers that keep nothing accept it; a tracker that
    /// cannot store files answers [`Unsupported`](crate::WharfError::Unsupported).
    fn log_artifact(&self, run_id: &str, path: &Path, name: &str) -> Result<()> {
        let _ = (run_id, path, name);
        Err(WharfError::Unsupported(format!("tracker '{}' stores no artifact files", self.name())))
    }
    /// Records that the run read `input` (the training data, an evaluation set). A tracker
    /// that cannot keep it answers [`Unsupported`](crate::WharfError::Unsupported); ones that
    /// keep nothing accept it.
    fn log_input(&self, run_id: &str, input: &DatasetInput) -> Result<()> {
        let _ = (run_id, input);
        Err(WharfError::Unsupported(format!("tracker '{}' keeps no dataset inputs", self.name())))
    }
    /// Ends the run.
    fn end_run(&self, run_id: &str, status: RunStatus) -> Result<()>;
    /// Reads a run back.
    fn get_run(&self, run_id: &str) -> Result<RunRecord> {
        let _ = run_id;
        Err(WharfError::Unsupported(format!("tracker '{}' keeps no runs to read back", self.name())))
    }
    /// The runs `query` matches, newest start first, with their metric histories: what a
    /// browser of runs (`wharf ui`) lists. Trackers that keep nothing to read back answer
    /// [`Unsupported`](crate::WharfError::Unsupported).
    fn search_runs(&self, query: &RunQuery) -> Result<Vec<RunRecord>> {
        let _ = query;
        Err(WharfError::Unsupported(format!("tracker '{}' keeps no runs to list", self.name())))
    }
    /// False when logging is thrown away, so callers can skip building payloads.
    fn enabled(&self) -> bool {
        true
    }
}

/// A started run. Dropping it without [`finish`](Self::finish) or [`fail`](Self::fail) ends
/// the run as FAILED, so an early `?` or a panic never leaves a run RUNNING forever.
#[must_use = "a run handle dropped at once ends the run as FAILED"]
pub struct RunHandle<'a> {
    tracker: &'a dyn TrackerPort,
    info: RunInfo,
    ended: bool,
}

impl std::fmt::Debug for RunHandle<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunHandle")
            .field("tracker", &self.tracker.name())
            .field("info", &self.info)
            .field("ended", &self.ended)
            .finish()
    }
}

impl<'a> RunHandle<'a> {
    /// Starts a run on `tracker`.
    pub fn start(tracker: &'a dyn TrackerPort, name: Option<&str>) -> Result<RunHandle<'a>> {
        let info = tracker.begin_run(name)?;
        Ok(RunHandle { tracker, info, ended: false })
    }

    /// The run id.
    pub fn id(&self) -> &str {
        &self.info.id
    }
    /// The run name.
    pub fn name(&self) -> &str {
        &self.info.name
    }
    /// Id and name.
    pub fn info(&self) -> &RunInfo {
        &self.info
    }

    /// Logs parameters from any `(key, value)` pairs.
    pub fn log_params<K: Into<String>, V: ToString>(&self, params: impl IntoIterator<Item = (K, V)>) -> Result<()> {
        let map = params.into_iter().map(|(k, v)| (k.into(), v.to_string())).collect();
        self.tracker.log_params(&self.info.id, &map)
    }
    /// Logs one parameter.
    pub fn log_param(&self, key: &str, value: impl ToString) -> Result<()> {
        self.log_params([(key, value.to_string())])
    }
    /// Logs metrics without a step.
    pub fn log_metrics<K: Into<String>>(&self, metrics: impl IntoIterator<Item = (K, f64)>) -> Result<()> {
        let map = metrics.into_iter().map(|(k, v)| (k.into(), v)).collect();
        self.tracker.log_metrics(&self.info.id, &map, None)
    }
    /// Logs one metric at `step`.
    pub fn log_metric(&self, key: &str, value: f64, step: Option<u64>) -> Result<()> {
        let map = BTreeMap::from([(key.to_string(), value)]);
        self.tracker.log_metrics(&self.info.id, &map, step)
    }
    /// Sets one tag.
    pub fn set_tag(&self, key: &str, value: impl ToString) -> Result<()> {
        let map = BTreeMap::from([(key.to_string(), value.to_string())]);
        self.tracker.set_tags(&self.info.id, &map)
    }
    /// Stores a model as artifact `artifact`.
    pub fn log_model(&self, model: &Model, artifact: &str) -> Result<()> {
        self.tracker.log_model(&self.info.id, model, artifact)
    }

    /// Stores the file at `path` as artifact `name`.
    pub fn log_artifact(&self, path: &Path, name: &str) -> Result<()> {
        self.tracker.log_artifact(&self.info.id, path, name)
    }

    /// Records that the run read `input`.
    pub fn log_input(&self, input: &DatasetInput) -> Result<()> {
        self.tracker.log_input(&self.info.id, input)
    }

    /// Ends the run as FINISHED.
    pub fn finish(mut self) -> Result<()> {
        self.ended = true;
        self.tracker.end_run(&self.info.id, RunStatus::Finished)
    }
    /// Ends the run as FAILED, recording `reason` as the `error` tag first.
    pub fn fail(mut self, reason: &str) -> Result<()> {
        self.ended = true;
        let _ = self.set_tag("error", reason);
        self.tracker.end_run(&self.info.id, RunStatus::Failed)
    }
    /// Ends the run with `status`.
    pub fn end(mut self, status: RunStatus) -> Result<()> {
        self.ended = true;
        self.tracker.end_run(&self.info.id, status)
    }
}

impl Drop for RunHandle<'_> {
    fn drop(&mut self) {
        if !self.ended {
            if let Err(e) = self.tracker.end_run(&self.info.id, RunStatus::Failed) {
                tracing::warn!(run = %self.info.id, error = %e, "could not end a dropped run as FAILED");
            }
        }
    }
}

/// Conveniences for every [`TrackerPort`].
pub trait TrackerExt: TrackerPort {
    /// Starts a run and returns its guard.
    fn start_run(&self, name: Option<&str>) -> Result<RunHandle<'_>>;
}

impl<T: TrackerPort + Sized> TrackerExt for T {
    fn start_run(&self, name: Option<&str>) -> Result<RunHandle<'_>> {
        RunHandle::start(self, name)
    }
}

impl dyn TrackerPort + '_ {
    /// Starts a run and returns its guard (for `&dyn TrackerPort`).
    pub fn start_run(&self, name: Option<&str>) -> Result<RunHandle<'_>> {
        RunHandle::start(self, name)
    }
}

macro_rules! forward_tracker {
    ($($wrapper:ident),*) => {$(
        impl<T: TrackerPort + ?Sized> TrackerPort for $wrapper<T> {
            fn name(&self) -> &str { (**self).name() }
            fn begin_run(&self, name: Option<&str>) -> Result<RunInfo> { (**self).begin_run(name) }
            fn begin_child_run(&self, parent_run_id: &str, name: Option<&str>) -> Result<RunInfo> { (**self).begin_child_run(parent_run_id, name) }
            fn log_params(&self, run_id: &str, params: &BTreeMap<String, String>) -> Result<()> { (**self).log_params(run_id, params) }
            fn log_metrics(&self, run_id: &str, metrics: &BTreeMap<String, f64>, step: Option<u64>) -> Result<()> { (**self).log_metrics(run_id, metrics, step) }
            fn set_tags(&self, run_id: &str, tags: &BTreeMap<String, String>) -> Result<()> { (**self).set_tags(run_id, tags) }
            fn log_model(&self, run_id: &str, model: &Model, artifact: &str) -> Result<()> { (**self).log_model(run_id, model, artifact) }
            fn log_artifact(&self, run_id: &str, path: &Path, name: &str) -> Result<()> { (**self).log_artifact(run_id, path, name) }
            fn log_input(&self, run_id: &str, input: &DatasetInput) -> Result<()> { (**self).log_input(run_id, input) }
            fn end_run(&self, run_id: &str, status: RunStatus) -> Result<()> { (**self).end_run(run_id, status) }
            fn get_run(&self, run_id: &str) -> Result<RunRecord> { (**self).get_run(run_id) }
            fn search_runs(&self, query: &RunQuery) -> Result<Vec<RunRecord>> { (**self).search_runs(query) }
            fn enabled(&self) -> bool { (**self).enabled() }
        }
    )*};
}
forward_tracker!(Arc, Box);

/// Checks an artifact file name (the model-name rule), so no tracker can be made to write
/// outside a run.
pub fn validate_artifact_name(name: &str) -> Result<()> {
    crate::ports::registry::validate_name(name)
        .map_err(|_| WharfError::invalid("artifact", format!("'{name}' is not a valid artifact name")))
}

/// Refuses a param that would change a value `logged` already holds. A run's params are
/// write-once (the run is their record), so every tracker and the spool refuse a change the
/// same way, naming the param; logging the same value again is fine.
pub fn check_params_unchanged(logged: &BTreeMap<String, String>, params: &BTreeMap<String, String>) -> Result<()> {
    for (k, v) in params {
        if let Some(old) = logged.get(k).filter(|old| *old != v) {
            return Err(WharfError::invalid(
                format!("params.{k}"),
                format!("already logged as '{old}'; a param cannot change within a run"),
            ));
        }
    }
    Ok(())
}
