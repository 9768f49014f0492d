//! Spools written before the tracker used the core's decorator: one file-tracker directory per
//! run inside `spool_dir`. `wharf runs sync` turns each ended one into spooled calls (with its
//! original times) and removes the directory, so an upgrade loses no run.

use std::collections::BTreeMap;
use std::path::Path;

use wharf_core::fsutil::append_line;
use wharf_core::spool::tracker::{models_dir, LOCAL_RUN_PREFIX};
use wharf_core::spool::TrackerCall;
use wharf_core::{FileTracker, Result, RunRecord, RunStatus, WharfError};

/// Tag on an old spooled run naming the MLflow run it continued.
const RESUME_TAG: &str = "wharf.mlflow.run_id";
/// Tag on an old spooled run naming its experiment (runs now replay into the configured one).
const EXPERIMENT_TAG: &str = "wharf.mlflow.experiment";

/// The old-format runs in `spool_dir`.
pub(crate) fn runs(spool_dir: &Path) -> Result<Vec<RunRecord>> {
    let mut runs = FileTracker::new(spool_dir).list_runs()?;
    for run in &mut runs {
        run.tags.retain(|k, _| k != RESUME_TAG && k != EXPERIMENT_TAG);
    }
    Ok(runs)
}

/// Appends every ended old-format run of `spool_dir` to the spool file `spool` as calls, then
/// removes its directory. A run converted twice (a crash between the two) replays once: its
/// local id is derived from its old id, and replays find runs by it.
pub(crate) fn import(spool_dir: &Path, spool: &Path) -> Result<usize> {
    let mut imported = 0;
    for run in FileTracker::new(spool_dir).list_runs()? {
        if run.status == RunStatus::Running {
            continue;
        }
        for call in calls(&run, spool_dir, spool)? {
            let line = serde_json::to_string(&call)
                .map_err(|e| WharfError::backend("spool", format!("cannot encode a call for the spool: {e}"), None))?;
            append_line(spool, &line)?;
        }
        let dir = spool_dir.join(&run.info.id);
        std::fs::remove_dir_all(&dir).map_err(|e| WharfError::io(&dir, e))?;
        imported += 1;
    }
    Ok(imported)
}

fn calls(run: &RunRecord, spool_dir: &Path, spool: &Path) -> Result<Vec<TrackerCall>> {
    let mut tags = run.tags.clone();
    let resumed = tags.remove(RESUME_TAG);
    tags.remove(EXPERIMENT_TAG);
    let mut calls = Vec::new();
    let run_id = match resumed {
        // The run started in MLflow: its calls name it, as the decorator's do.
        Some(mlflow_id) => {
            if !tags.is_empty() {
                calls.push(TrackerCall::SetTags { run_id: mlflow_id.clone(), tags });
            }
            mlflow_id
        }
        None => {
            let local = format!("{LOCAL_RUN_PREFIX}{}", run.info.id);
            calls.push(TrackerCall::BeginRun {
                run_id: local.clone(),
                name: Some(run.info.name.clone()),
                tags,
                start_time: run.start_time,
                spooled: true,
            });
            local
        }
    };
    if !run.params.is_empty() {
        calls.push(TrackerCall::LogParams { run_id: run_id.clone(), params: run.params.clone() });
    }
    for point in &run.metrics {
        calls.push(TrackerCall::LogMetrics {
            run_id: run_id.clone(),
            metrics: BTreeMap::from([(point.key.clone(), point.value)]),
            step: Some(point.step),
            timestamp: point.timestamp,
        });
    }
    for artifact in &run.artifacts {
        let from = spool_dir.join(&run.info.id).join("artifacts").join(format!("{artifact}.wharf"));
        let dir = models_dir(spool);
        std::fs::create_dir_all(&dir).map_err(|e| WharfError::io(&dir, e))?;
        let to = std::path::absolute(dir.join(format!("{}-{artifact}.wharf", run.info.id)))
            .map_err(|e| WharfError::io(&dir, e))?;
        std::fs::copy(&from, &to).map_err(|e| WharfError::io(&from, e))?;
        calls.push(TrackerCall::LogModel { run_id: run_id.clone(), artifact: artifact.clone(), path: to });
    }
    calls.push(TrackerCall::EndRun { run_id, status: run.status, end_time: run.end_time.unwrap_or(run.start_time) });
    Ok(calls)
}
