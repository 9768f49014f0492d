//! The run: every model over every record (in parallel), then the summaries, then one
//! transactional write of the batch.

use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde_json::Value;
use wharf_core::{json_type, Row, WharfError};

use crate::checked::{panic_message, score_checked, to_result};
use crate::fields::InputSource;
use crate::ident::{DepRef, Status};
use crate::results::{ModelResult, Record, RecordResult, Results, RunError};
use crate::spec::ModelSpec;
use crate::store::ResultStore;
use crate::summary::{SummaryInput, SummarySpec};

/// Runs `models` and then `summaries` over `records` and, when a store is given, stores the
/// batch in one transaction. Draft models and summaries are skipped; use [`Runner`] to
/// include them or to set the number of threads.
///
/// Returns one [`RecordResult`] per record, in input order. A record's bad input or a
/// model's failure is an error entry in that record's results; the call fails only when
/// the specs are inconsistent (two models with the same name and version) or the store
/// cannot write the batch, in which case nothing of the batch is stored.
pub fn run_all(
    records: &[Record],
    models: &[ModelSpec],
    summaries: &[SummarySpec],
    store: Option<&dyn ResultStore>,
) -> Result<Vec<RecordResult>, WharfError> {
    Runner::new(models.to_vec(), summaries.to_vec())?.run(records, store)
}

/// A configured run: the models and summaries, whether drafts run, and how many threads.
/// Build it once and call [`run`](Self::run) per batch.
#[derive(Debug, Clone)]
pub struct Runner {
    models: Vec<ModelSpec>,
    summaries: Vec<SummarySpec>,
    include_drafts: bool,
    threads: usize,
}

impl Runner {
    /// Checks that every model and summary has a non-empty name and version and that no
    /// `name@version` is given twice (its results would overwrite each other).
    pub fn new(models: Vec<ModelSpec>, summaries: Vec<SummarySpec>) -> Result<Runner, WharfError> {
        let mut seen = HashSet::new();
        let keys = models.iter().map(|m| ("model", m.key())).chain(summaries.iter().map(|s| ("summary", s.key())));
        for (what, key) in keys {
            if key.name.is_empty() || key.version.is_empty() {
                return Err(WharfError::invalid(what, format!("'{key}' needs a non-empty name and version")));
            }
            if !seen.insert(key.clone()) {
                return Err(WharfError::invalid(
                    what,
                    format!("{key} is given twice; each name@version identifies one result"),
                ));
            }
        }
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        Ok(Runner { models, summaries, include_drafts: false, threads })
    }

    /// Runs draft models and summaries too (they are skipped by default).
    pub fn include_drafts(mut self, include: bool) -> Self {
        self.include_drafts = include;
        self
    }

    /// The number of threads scoring runs on (default: the available cores; at least 1).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    fn runs(&self, status: Status) -> bool {
        self.include_drafts || status == Status::Active
    }

    /// The models that run.
    pub fn models(&self) -> impl Iterator<Item = &ModelSpec> {
        self.models.iter().filter(|m| self.runs(m.status))
    }

    /// The summaries that run, in order.
    pub fn summaries(&self) -> impl Iterator<Item = &SummarySpec> {
        self.summaries.iter().filter(|s| self.runs(s.status))
    }

    /// The drafts that are skipped, as `name@version`.
    pub fn skipped(&self) -> Vec<DepRef> {
        let models = self.models.iter().filter(|m| !self.runs(m.status)).map(ModelSpec::key);
        models.chain(self.summaries.iter().filter(|s| !self.runs(s.status)).map(SummarySpec::key)).collect()
    }

    /// Runs one batch: every model over every record (work is shared among the threads by
    /// model and slice of records), then the summaries per record in declaration order,
    /// then — when `store` is given — one [`ResultStore::put_batch`] of the whole batch.
    pub fn run(&self, records: &[Record], store: Option<&dyn ResultStore>) -> Result<Vec<RecordResult>, WharfError> {
        let models: Vec<&ModelSpec> = self.models().collect();
        let mut per_model: Vec<_> = self.score_all(&models, records).into_iter().map(Vec::into_iter).collect();
        let timestamp = now_micros();
        let skipped = self.skipped();
        let summaries: Vec<&SummarySpec> = self.summaries().collect();
        let mut out = Vec::with_capacity(records.len());
        for record in records {
            let mut results = Results::new();
            for (spec, column) in models.iter().zip(per_model.iter_mut()) {
                if let Some(result) = column.next() {
                    results.insert(&spec.name, &spec.version, result);
                }
            }
            for summary in &summaries {
                let result = run_summary(summary, &results, &skipped);
                results.insert(&summary.name, &summary.version, result);
            }
            out.push(RecordResult { id: record.id.clone(), results, timestamp });
        }
        if let Some(store) = store {
            store.put_batch(&out)?;
        }
        Ok(out)
    }

    /// `[model][record]` results. Units of work are (model, chunk of records), pulled by
    /// the worker threads from a shared counter, so one slow model does not hold up the
    /// others and a large batch spreads over every thread.
    fn score_all(&self, models: &[&ModelSpec], records: &[Record]) -> Vec<Vec<ModelResult>> {
        if models.is_empty() || records.is_empty() {
            return vec![Vec::new(); models.len()];
        }
        // About four units per thread, so the threads finish together; not below 32 records,
        // so a model that scores a batch at once still gets a batch.
        let chunks_per_model = (4 * self.threads).div_ceil(models.len()).max(1);
        let chunk_len = records.len().div_ceil(chunks_per_model).max(32);
        let chunks: Vec<&[Record]> = records.chunks(chunk_len).collect();
        let units: Vec<(usize, usize)> =
            (0..models.len()).flat_map(|m| (0..chunks.len()).map(move |c| (m, c))).collect();
        let done: Mutex<Vec<Option<Vec<ModelResult>>>> = Mutex::new(vec![None; units.len()]);
        let next = AtomicUsize::new(0);
        let work = || loop {
            let u = next.fetch_add(1, Ordering::Relaxed);
            let Some(&(m, c)) = units.get(u) else { break };
            let results = score_chunk(models[m], chunks[c]);
            if let Ok(mut done) = done.lock() {
                done[u] = Some(results);
            }
        };
        let workers = self.threads.min(units.len());
        if workers <= 1 {
            work();
        } else {
            std::thread::scope(|scope| {
                for _ in 0..workers {
                    scope.spawn(work);
                }
            });
        }
        let mut done = done.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut per_model = vec![Vec::with_capacity(records.len()); models.len()];
        for (u, &(m, c)) in units.iter().enumerate() {
            let results = done[u].take().unwrap_or_else(|| {
                let error = RunError::failed("the scoring thread stopped before finishing");
                vec![ModelResult::error(models[m].status, error); chunks[c].len()]
            });
            per_model[m].extend(results);
        }
        per_model
    }
}

/// The time now, cut to microseconds so a stored and read-back timestamp compare equal.
fn now_micros() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// The model's input in `data`: its own slice `data[name][version]`, or all of `data`.
fn input_of<'a>(spec: &ModelSpec, data: &'a Row) -> Result<&'a Row, RunError> {
    match spec.input {
        InputSource::Shared => Ok(data),
        InputSource::Slice => {
            let path = format!("data.{}.{}", spec.name, spec.version);
            match data.get(&spec.name).and_then(|v| v.get(&spec.version)) {
                Some(Value::Object(row)) => Ok(row),
                Some(other) => Err(RunError::new(
                    crate::ErrorKind::MissingInput,
                    Some(path.clone()),
                    format!("the input at {path} is {}, expected an object", json_type(other)),
                )),
                None => Err(RunError::missing_input(path)),
            }
        }
    }
}

/// One model over a slice of records: inputs found and checked, the valid ones scored
/// together.
fn score_chunk(spec: &ModelSpec, records: &[Record]) -> Vec<ModelResult> {
    let mut out: Vec<Option<ModelResult>> = vec![None; records.len()];
    let mut valid = Vec::new();
    let mut inputs = Vec::new();
    for (i, record) in records.iter().enumerate() {
        match input_of(spec, &record.data).and_then(|row| spec.validate(row).map(|()| row)) {
            Ok(row) => {
                valid.push(i);
                inputs.push(row);
            }
            Err(e) => out[i] = Some(ModelResult::error(spec.status, e)),
        }
    }
    for (i, result) in valid.into_iter().zip(score_checked(spec.model.as_ref(), spec.status, &inputs)) {
        out[i] = Some(result);
    }
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| ModelResult::error(spec.status, RunError::invalid_output("no result"))))
        .collect()
}

/// Checks a summary's dependencies against the record's results, then calls it.
fn run_summary(summary: &SummarySpec, results: &Results, skipped: &[DepRef]) -> ModelResult {
    for dep in &summary.depends_on {
        match results.get(&dep.name, &dep.version) {
            None => {
                let why =
                    if skipped.contains(dep) { " (it is a draft, skipped: include drafts to run it)" } else { "" };
                return ModelResult::error(summary.status, RunError::dependency_missing(dep, why));
            }
            Some(result) => {
                if let Some(cause) = result.error_ref() {
                    return ModelResult::error(summary.status, RunError::dependency_failed(dep, cause));
                }
            }
        }
    }
    let input = SummaryInput { results, depends_on: &summary.depends_on };
    match panic::catch_unwind(AssertUnwindSafe(|| (summary.function)(&input))) {
        Ok(output) => to_result(summary.status, output),
        Err(payload) => ModelResult::error(summary.status, RunError::failed(panic_message(payload))),
    }
}
