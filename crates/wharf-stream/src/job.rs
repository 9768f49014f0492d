//! The streaming job: read records, prepare them, score them in micro-batches, write the
//! results, checkpoint, and report to lineage.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use wharf_core::scoring::{locate, prob_column, Reject};
use wharf_core::{
    json_type, LineageEvent, LineageEventType, LineagePort, ModelFacts, NoOpLineage, OnError, Records, Result, Row,
    SchemaField, WharfError,
};

use crate::checkpoint::{Checkpoint, CheckpointStore, Counts, MemoryCheckpoint};
use crate::model_source::{ModelSource, ScoringModel};
use crate::sink::StreamSink;
use crate::source::{Delivery, Polled, StreamSource};
use crate::window::{WindowSpec, Windowed, WindowedMeans};

/// How a streaming job runs.
#[derive(Debug, Clone)]
pub struct StreamOptions {
    /// The job's name in lineage (by default `stream-<model>`).
    pub job_name: Option<String>,
    /// A micro-batch is written once it has this many records…
    pub batch_size: usize,
    /// …or once its first record has waited this long, whichever comes first.
    pub max_latency: Duration,
    /// Stop after this long without new records (a followed file); `None` waits forever.
    pub idle_timeout: Option<Duration>,
    /// Input fields copied to each output record, in front of the prediction.
    pub ids: Vec<String>,
    /// Fields that must be present and non-null, besides the model's features and the
    /// window's fields (a record missing one is dropped and counted rather than scored on a
    /// guess, as rows with nulls are usually dropped from training data).
    pub require: Vec<String>,
    /// Windowed features computed before scoring.
    pub window: Option<WindowSpec>,
    /// What to do with a record that cannot be scored (not a JSON object, a mistyped field,
    /// a categorical level the model never saw): stop with an error naming the record
    /// ([`OnError::Fail`], the default of every Wharf job), or count it, keep its reason in
    /// the report and go on ([`OnError::Skip`], what `wharf stream` does unless told
    /// `--fail-on-error`, so one bad record does not stop a long-running stream).
    pub on_error: OnError,
    /// Also write the windowed features (`<field>_avg`) into each output record, after the
    /// id fields: to check them, or to keep them for later training.
    pub emit_features: bool,
    /// Where a sample of the scored records is logged with their features and answers (the
    /// prediction log `wharf serve` writes too), each by its key; `None`: nowhere.
    pub prediction_log: Option<std::sync::Arc<wharf_core::predlog::PredictionLogWriter>>,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            job_name: None,
            batch_size: 500,
            max_latency: Duration::from_millis(1000),
            idle_timeout: None,
            ids: Vec::new(),
            require: Vec::new(),
            window: None,
            on_error: OnError::default(),
            emit_features: false,
            prediction_log: None,
        }
    }
}

/// Why a job stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The source ended.
    End,
    /// No records came for the idle timeout.
    Idle,
    /// The stop flag was raised (Ctrl-C, SIGTERM).
    Stopped,
}

impl StopReason {
    fn as_str(self) -> &'static str {
        match self {
            StopReason::End => "end",
            StopReason::Idle => "idle",
            StopReason::Stopped => "stopped",
        }
    }
}

/// How many of a job's rejected records keep their message in the report.
pub const MAX_REPORTED_REJECTS: usize = 20;

/// What a job did, over the whole stream (a resumed job includes what earlier runs did).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamReport {
    /// Totals.
    pub counts: Counts,
    /// The input position this run resumed from, when it resumed.
    pub resumed_from: Option<u64>,
    /// The committed input position at the end.
    pub input_offset: u64,
    /// The committed output length at the end.
    pub output_len: u64,
    /// Why the job stopped.
    pub stop: StopReason,
    /// The model versions that scored records in this run.
    pub model_versions: Vec<u64>,
    /// The first rejected records of this run: `<key>: <reason>`.
    pub rejects: Vec<String>,
    /// The lineage run id.
    pub run_id: String,
}

/// The output columns besides the id fields; an id field of the same name is refused.
const RESERVED: [&str; 4] = ["prediction", "model", "model_version", "key"];

/// A streaming scoring job. Build it with [`StreamJob::new`], set what differs from the
/// defaults, then [`run`](Self::run) it.
///
/// Each output record is one JSON line: the id fields, `prediction`, one `prob_<class>` per
/// class for a classifier, `model` and `model_version` (which version scored it), and `key`
/// (the input record's idempotency key).
pub struct StreamJob {
    source: Box<dyn StreamSource>,
    sink: Box<dyn StreamSink>,
    checkpoints: Box<dyn CheckpointStore>,
    models: Box<dyn ModelSource>,
    lineage: Arc<dyn LineagePort>,
    options: StreamOptions,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for StreamJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamJob")
            .field("source", &self.source.name())
            .field("sink", &self.sink.name())
            .field("checkpoints", &self.checkpoints.name())
            .field("options", &self.options)
            .finish()
    }
}

/// The mutable part of a run.
struct Progress {
    counts: Counts,
    input_offset: u64,
    window: Option<WindowedMeans>,
    versions: BTreeSet<u64>,
    rejects: Vec<String>,
    resumed_from: Option<u64>,
}

impl StreamJob {
    /// A job reading `source`, writing `sink`, scoring on the servers `models` hands out;
    /// checkpoints in memory, no lineage, default options, until the source ends.
    pub fn new(
        source: impl StreamSource + 'static,
        sink: impl StreamSink + 'static,
        models: impl ModelSource + 'static,
    ) -> StreamJob {
        StreamJob {
            source: Box::new(source),
            sink: Box::new(sink),
            checkpoints: Box::new(MemoryCheckpoint::new()),
            models: Box::new(models),
            lineage: Arc::new(NoOpLineage::default()),
            options: StreamOptions::default(),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Where checkpoints go (a [`FileCheckpoint`](crate::FileCheckpoint) for restarts).
    pub fn checkpoints(mut self, store: impl CheckpointStore + 'static) -> Self {
        self.checkpoints = Box::new(store);
        self
    }

    /// Where START and COMPLETE (or FAIL) events go.
    pub fn lineage(mut self, lineage: Arc<dyn LineagePort>) -> Self {
        self.lineage = lineage;
        self
    }

    /// Batching, windows, id fields and the error policy.
    pub fn options(mut self, options: StreamOptions) -> Self {
        self.options = options;
        self
    }

    /// A flag that, once set, makes the job write what it has, checkpoint and return
    /// (see [`stop_on_signals`](crate::stop_on_signals)).
    pub fn stop_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.stop = flag;
        self
    }

    /// Runs until the source ends, the idle timeout passes or the stop flag is set.
    ///
    /// Emits a lineage START before reading and COMPLETE after the final checkpoint, or
    /// FAIL with the error.
    pub fn run(mut self) -> Result<StreamReport> {
        if self.options.batch_size == 0 {
            return Err(WharfError::invalid("batch_size", "must be at least 1"));
        }
        for id in &self.options.ids {
            if RESERVED.contains(&id.as_str()) || id.starts_with(&prob_column("")) {
                return Err(WharfError::invalid(format!("ids.{id}"), "clashes with an output column of the same name"));
            }
        }
        let window = self.options.window.clone().map(WindowedMeans::new).transpose()?;
        let first = self.models.current()?;
        let job = self.options.job_name.clone().unwrap_or_else(|| format!("stream-{}", first.name));
        let start = LineageEvent::new(job.clone())
            .event_type(LineageEventType::Start)
            .input(self.source.name())
            .input(model_dataset(&first))
            .model(facts(&first));
        let run_id = start.run_id.clone();
        self.lineage.emit(&start)?;

        let mut progress = Progress {
            counts: Counts::default(),
            input_offset: 0,
            window,
            versions: BTreeSet::new(),
            rejects: Vec::new(),
            resumed_from: None,
        };
        let result = self.stream(&mut progress);
        let end = LineageEvent::new(job)
            .run_id(run_id.clone())
            .input(self.source.name())
            .model(facts(&first))
            .meta("records_in", progress.counts.records_in)
            .meta("records_out", progress.counts.records_out)
            .meta("dropped_null", progress.counts.dropped_null)
            .meta("dropped_late", progress.counts.dropped_late)
            .meta("rejected", progress.counts.rejected)
            .meta("batches", progress.counts.batches)
            .meta("input_offset", progress.input_offset)
            .meta("model_versions", progress.versions.iter().copied().collect::<Vec<_>>());
        let end = progress.versions.iter().fold(end, |e, v| e.input(format!("registry:{}/{v}", first.name)));
        let end = match &result {
            Ok(stop) => end
                .output(self.sink.name())
                .schema(self.source.name(), SchemaField::from_signature(first.model.signature()))
                .meta("stop", stop.as_str())
                .meta("resumed_from", progress.resumed_from),
            Err(e) => end.event_type(LineageEventType::Fail).meta("error", e.to_string()),
        };
        self.lineage.emit(&end)?;
        let stop = result?;
        Ok(StreamReport {
            counts: progress.counts,
            resumed_from: progress.resumed_from,
            input_offset: progress.input_offset,
            output_len: self.sink.len(),
            stop,
            model_versions: progress.versions.into_iter().collect(),
            rejects: progress.rejects,
            run_id,
        })
    }

    /// Resumes from the checkpoint, then loops over micro-batches.
    fn stream(&mut self, progress: &mut Progress) -> Result<StopReason> {
        self.resume(progress)?;
        // The longest a poll may block, so a stop request is noticed promptly.
        const SLICE: Duration = Duration::from_millis(100);
        let mut pending: Vec<Delivery> = Vec::new();
        let mut deadline: Option<Instant> = None;
        let mut last_data = Instant::now();
        let stop = loop {
            if self.stop.load(Ordering::SeqCst) {
                break StopReason::Stopped;
            }
            let wait = deadline.map_or(SLICE, |d| d.saturating_duration_since(Instant::now()).min(SLICE));
            match self.source.poll(self.options.batch_size - pending.len(), wait)? {
                Polled::Records(records) => {
                    if pending.is_empty() {
                        deadline = Some(Instant::now() + self.options.max_latency);
                    }
                    pending.extend(records);
                    last_data = Instant::now();
                }
                Polled::Idle => {
                    if let Some(limit) = self.options.idle_timeout {
                        if pending.is_empty() && last_data.elapsed() >= limit {
                            break StopReason::Idle;
                        }
                    }
                }
                Polled::End => break StopReason::End,
            }
            if pending.len() >= self.options.batch_size || deadline.is_some_and(|d| Instant::now() >= d) {
                self.commit(std::mem::take(&mut pending), progress)?;
                deadline = None;
            }
        };
        if !pending.is_empty() {
            self.commit(pending, progress)?;
        }
        Ok(stop)
    }

    /// Restores the output, input position, counts and window state of the last
    /// checkpoint, or starts afresh and records that start.
    fn resume(&mut self, progress: &mut Progress) -> Result<()> {
        let (input, output) = (self.source.name(), self.sink.name());
        match self.checkpoints.load()? {
            Some(cp) => {
                if cp.input != input || cp.output != output {
                    return Err(WharfError::invalid(
                        self.checkpoints.name(),
                        format!(
                            "the checkpoint belongs to {} -> {}, not {input} -> {output}; use another checkpoint \
                             or remove it to start over",
                            cp.input, cp.output
                        ),
                    ));
                }
                match (&mut progress.window, cp.window) {
                    (Some(window), Some(state)) => window.restore(state)?,
                    (Some(_), None) if cp.input_offset > 0 => {
                        return Err(WharfError::invalid(
                            self.checkpoints.name(),
                            "the checkpoint was written by a job without a window; run it with the same window \
                             options",
                        ))
                    }
                    (Some(_), None) => {}
                    (None, Some(_)) => {
                        return Err(WharfError::invalid(
                            self.checkpoints.name(),
                            "the checkpoint holds window state but this job has no window; run it with the same \
                             window options",
                        ))
                    }
                    (None, None) => {}
                }
                self.sink.recover(cp.output_len)?;
                self.source.seek(cp.input_offset)?;
                progress.counts = cp.counts;
                progress.input_offset = cp.input_offset;
                progress.resumed_from = Some(cp.input_offset);
            }
            None => {
                // Anything already in the output belongs to no checkpoint. The start is
                // checkpointed before any result is written, so a crash before the first
                // batch also resumes cleanly.
                self.sink.recover(0)?;
                self.save(progress)?;
            }
        }
        Ok(())
    }

    fn save(&mut self, progress: &Progress) -> Result<()> {
        let mut cp = Checkpoint::start(self.source.name(), self.sink.name());
        cp.input_offset = progress.input_offset;
        cp.output_len = self.sink.len();
        cp.counts = progress.counts;
        cp.window = progress.window.as_ref().map(|w| w.state().clone());
        self.checkpoints.save(&cp)
    }

    /// Scores a micro-batch, writes it durably, acknowledges it, then checkpoints: in that
    /// order, so a checkpoint never claims output that is not on disk.
    fn commit(&mut self, batch: Vec<Delivery>, progress: &mut Progress) -> Result<()> {
        let Some(last) = batch.last() else { return Ok(()) };
        let end = last.end;
        let model = self.models.current()?;
        let bytes = self.process(&batch, &model, progress)?;
        // A broker sink paired with its source writes and acknowledges in one step; any
        // other sink writes, and the source acknowledges after.
        if !self.sink.write_acked(&bytes, &batch)? {
            self.source.commit(&batch)?;
        }
        progress.input_offset = end;
        progress.counts.batches += 1;
        progress.versions.insert(model.version);
        self.save(progress)
    }

    /// Prepares, scores and formats one micro-batch.
    fn process(&self, batch: &[Delivery], model: &ScoringModel, progress: &mut Progress) -> Result<Vec<u8>> {
        let signature = model.model.signature();
        let derived = progress.window.as_ref().map(|w| w.spec().output_names()).unwrap_or_default();
        let mut required: Vec<String> =
            signature.feature_names().filter(|f| !derived.iter().any(|d| d == f)).map(str::to_string).collect();
        if let Some(window) = &progress.window {
            required.extend(window.spec().required_fields());
        }
        required.extend(self.options.require.iter().cloned());
        // The columns in front of the prediction: the id fields, then the features if asked.
        let emitted = if self.options.emit_features { derived.clone() } else { Vec::new() };
        let columns: Vec<String> = self.options.ids.iter().chain(&emitted).cloned().collect();

        // The rows to score, and beside each its delivery and id values.
        let mut rows: Vec<Row> = Vec::with_capacity(batch.len());
        let mut prepared: Vec<(&Delivery, Vec<Value>)> = Vec::with_capacity(batch.len());
        for delivery in batch {
            progress.counts.records_in += 1;
            let mut row = match parse(&delivery.payload) {
                Ok(row) => row,
                Err(message) => {
                    self.reject(delivery, &message, progress)?;
                    continue;
                }
            };
            if required.iter().any(|f| row.get(f).is_none_or(Value::is_null)) {
                progress.counts.dropped_null += 1;
                continue;
            }
            if let Some(window) = &mut progress.window {
                match window.apply(&mut row) {
                    Ok(Windowed::Means(_)) => {}
                    Ok(Windowed::Late { .. }) => {
                        progress.counts.dropped_late += 1;
                        continue;
                    }
                    Err(e) => {
                        self.reject(delivery, &e.to_string(), progress)?;
                        continue;
                    }
                }
            }
            let ids = columns.iter().map(|f| row.get(f).cloned().unwrap_or(Value::Null)).collect();
            row.retain(|field, _| signature.position(field).is_some());
            rows.push(row);
            prepared.push((delivery, ids));
        }

        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let records = Records::Rows(rows);
        let started = std::time::Instant::now();
        let scored = match model.score(&records, self.options.on_error) {
            Ok(scored) => scored,
            // The record the model refused, named by its key rather than its place in the batch.
            Err(e) => match locate(&e).and_then(|(i, _)| prepared.get(i)) {
                Some((delivery, _)) => return Err(WharfError::invalid(delivery.key.clone(), reason(&e))),
                None => return Err(e),
            },
        };
        for reject in &scored.rejects {
            if let Some((delivery, _)) = prepared.get(reject.index) {
                self.reject(delivery, &rejected(reject), progress)?;
            }
        }
        if let Some(log) = &self.options.prediction_log {
            let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            let key = |i: usize| {
                let key = prepared.get(i).map(|(d, _)| d.key.clone()).unwrap_or_default();
                // The sample is drawn by the record's key, so a replayed record is sampled alike.
                let n =
                    key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
                (key, 0, n)
            };
            log.set_version(model.version);
            log.log(model.model.signature(), &records, &scored, us, &key)?;
        }
        let mut out = Vec::new();
        let columns_out = scored.columns();
        for (i, &index) in scored.kept.iter().enumerate() {
            let Some((delivery, ids)) = prepared.get(index) else { continue };
            let mut fields: Vec<(String, Value)> = columns.iter().cloned().zip(ids.iter().cloned()).collect();
            let probabilities = scored.probabilities_of(i).into_iter().flatten().map(|(_, p)| number(p));
            let values = std::iter::once(scored.prediction_json(i)).chain(probabilities);
            fields.extend(columns_out.iter().cloned().zip(values));
            write_record(&mut out, fields, model, &delivery.key)?;
            progress.counts.records_out += 1;
        }
        Ok(out)
    }

    fn reject(&self, delivery: &Delivery, message: &str, progress: &mut Progress) -> Result<()> {
        let text = format!("{}: {message}", delivery.key);
        if self.options.on_error == OnError::Fail {
            return Err(WharfError::invalid(delivery.key.clone(), message.to_string()));
        }
        progress.counts.rejected += 1;
        if progress.rejects.len() < MAX_REPORTED_REJECTS {
            progress.rejects.push(text);
        }
        Ok(())
    }
}

/// A refused record's reason, with the field it concerns when the model named one.
fn rejected(reject: &Reject) -> String {
    with_field(reject.column.as_deref(), reject.message())
}

/// The reason of the error that stopped a batch (under [`OnError::Fail`]), without its
/// batch-relative path (`records[3].device`), which means nothing to whoever reads the
/// job's error: the field stays, and the caller names the record by its key.
fn reason(e: &WharfError) -> String {
    let message = match e {
        WharfError::SchemaMismatch { message, .. } | WharfError::InvalidInput { message, .. } => message.clone(),
        other => other.to_string(),
    };
    with_field(locate(e).and_then(|(_, column)| column).as_deref(), message)
}

fn with_field(column: Option<&str>, message: String) -> String {
    match column {
        Some(column) => format!("{column}: {message}"),
        None => message,
    }
}

/// A probability as JSON (a non-finite one, which no server should answer, as `null`).
fn number(p: f64) -> Value {
    serde_json::Number::from_f64(p).map(Value::Number).unwrap_or(Value::Null)
}

fn parse(payload: &[u8]) -> std::result::Result<Row, String> {
    match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(row)) => Ok(row),
        Ok(other) => Err(format!("expected a JSON object, found {}", json_type(&other))),
        Err(e) => Err(format!("invalid JSON at column {}: {e}", e.column())),
    }
}

/// Writes one output line with its columns in a fixed order (ids, prediction,
/// probabilities, model, version, key), so output is byte-for-byte reproducible.
fn write_record(out: &mut Vec<u8>, mut fields: Vec<(String, Value)>, model: &ScoringModel, key: &str) -> Result<()> {
    let encode = |e: serde_json::Error| WharfError::invalid(key, format!("cannot encode the result: {e}"));
    fields.push(("model".into(), model.name.clone().into()));
    fields.push(("model_version".into(), model.version.into()));
    fields.push(("key".into(), key.into()));
    out.push(b'{');
    for (i, (name, value)) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, &name).map_err(encode)?;
        out.push(b':');
        serde_json::to_writer(&mut *out, &value).map_err(encode)?;
    }
    out.extend_from_slice(b"}\n");
    Ok(())
}

fn model_dataset(model: &ScoringModel) -> String {
    format!("registry:{}/{}", model.name, model.version)
}

fn facts(model: &ScoringModel) -> ModelFacts {
    let meta = model.model.metadata();
    ModelFacts {
        name: model.name.clone(),
        version: Some(model.version),
        sha256: model.sha256.clone(),
        algorithm: Some(meta.algorithm.clone()),
        metrics: meta.metrics.clone(),
    }
}

/// A flag raised by Ctrl-C (SIGINT) or SIGTERM, for [`StreamJob::stop_flag`]: the job then
/// writes its pending micro-batch, checkpoints and returns. A second signal while the flag
/// is already up ends the process at once, for a job that does not stop.
pub fn stop_on_signals() -> Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        let io = |e| WharfError::io("signal handler", e);
        signal_hook::flag::register_conditional_shutdown(signal, 1, flag.clone()).map_err(io)?;
        signal_hook::flag::register(signal, flag.clone()).map_err(io)?;
    }
    Ok(flag)
}
