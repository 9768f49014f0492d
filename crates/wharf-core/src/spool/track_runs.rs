//! [`TrackRuns`]: any [`TrackerPort`] as a [`ReplayTracker`], so
//! `SpoolLayer::new(path, strict).layer(TrackRuns::new(tracker))` is that tracker with
//! failover.
//!
//! It replays through the port's own methods, which take no times: a replayed run starts,
//! logs and ends when the replay runs, not when the job did (an adapter that can set times,
//! like MLflow's, implements [`ReplayTracker`] itself). The port cannot search runs either, so
//! a begin sent again by a replay that was interrupted creates a second run; and which run a
//! local id became is known to the process that replayed its begin, so calls naming a local id
//! must go through a decorator of that process (the spool rewrites the calls it keeps, so this
//! only matters for two processes sharing one spool). A tracker that batches must not be
//! wrapped here: its buffered calls would look delivered.

use crate::ports::tracker::{RunInfo, TrackerPort};
use crate::{Result, WharfError};

use super::tracker::{send_spooled_artifact, send_spooled_model, ReplayTracker, RunIds, TrackerCall};
use super::Replay;

/// A [`TrackerPort`] replaying [`TrackerCall`]s; unavailable means a
/// [`WharfError::Backend`] error (as for [`EmitLineage`](super::EmitLineage)).
#[derive(Debug)]
pub struct TrackRuns<T> {
    tracker: T,
    ids: RunIds,
}

impl<T: TrackerPort> TrackRuns<T> {
    /// `tracker`, replaying.
    pub fn new(tracker: T) -> Self {
        TrackRuns { tracker, ids: RunIds::default() }
    }

    /// The wrapped tracker.
    pub fn get_ref(&self) -> &T {
        &self.tracker
    }
}

impl<T: TrackerPort> Replay for TrackRuns<T> {
    type Call = TrackerCall;

    fn send(&self, call: &TrackerCall) -> Result<()> {
        match call {
            TrackerCall::BeginRun { run_id, name, tags, .. } => {
                let info = match self.ids.get(run_id) {
                    Some(info) => info,
                    None => {
                        let info = self.tracker.begin_run(name.as_deref())?;
                        // Remembered before the tags go, so a failed tag call does not begin
                        // the run twice when the begin is sent again.
                        self.ids.insert(run_id, info.clone());
                        info
                    }
                };
                if tags.is_empty() {
                    Ok(())
                } else {
                    self.tracker.set_tags(&info.id, tags)
                }
            }
            TrackerCall::LogParams { run_id, params } => self.tracker.log_params(&self.ids.resolve(run_id), params),
            TrackerCall::LogMetrics { run_id, metrics, step, .. } => {
                self.tracker.log_metrics(&self.ids.resolve(run_id), metrics, *step)
            }
            TrackerCall::SetTags { run_id, tags } => self.tracker.set_tags(&self.ids.resolve(run_id), tags),
            TrackerCall::LogModel { run_id, artifact, path } => {
                let id = self.ids.resolve(run_id);
                send_spooled_model(path, |model| self.tracker.log_model(&id, model, artifact))
            }
            TrackerCall::LogArtifact { run_id, name, path } => {
                let id = self.ids.resolve(run_id);
                send_spooled_artifact(path, |file| self.tracker.log_artifact(&id, file, name))
            }
            TrackerCall::LogInput { run_id, input } => self.tracker.log_input(&self.ids.resolve(run_id), input),
            TrackerCall::EndRun { run_id, status, .. } => self.tracker.end_run(&self.ids.resolve(run_id), *status),
        }
    }

    fn is_unavailable(&self, err: &WharfError) -> bool {
        matches!(err, WharfError::Backend { .. })
    }

    fn to_keep(&self, call: &TrackerCall) -> Option<TrackerCall> {
        self.ids.keep(call)
    }
}

impl<T: TrackerPort> ReplayTracker for TrackRuns<T> {
    fn tracker(&self) -> &dyn TrackerPort {
        &self.tracker
    }

    fn begun(&self, local_id: &str) -> Option<RunInfo> {
        self.ids.get(local_id)
    }
}
