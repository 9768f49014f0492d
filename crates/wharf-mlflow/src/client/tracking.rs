//! Experiments and runs: create, read, update, log and search.

use serde::Deserialize;
use serde_json::json;
use wharf_core::{Result, WharfError};

use super::dto::{DatasetInputEntry, Experiment, KeyValue, Metric, MlflowRunStatus, Run, RunMeta};
use super::transport::has_code;
use super::{MlflowClient, MAX_BATCH_BYTES, MAX_BATCH_ENTITIES, MAX_BATCH_METRICS, MAX_BATCH_PARAMS, MAX_BATCH_TAGS};

impl MlflowClient {
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

    /// Records datasets the run read (`runs/log-inputs`).
    pub fn log_inputs(&self, run_id: &str, datasets: &[DatasetInputEntry]) -> Result<()> {
        let _: serde_json::Value = self.post("runs/log-inputs", &json!({ "run_id": run_id, "datasets": datasets }))?;
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
