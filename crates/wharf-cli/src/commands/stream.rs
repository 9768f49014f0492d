//! `wharf stream`: score JSON lines from stdin or a growing file in micro-batches, with
//! windowed features and a checkpoint for exactly-once output to a file.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use clap::Args;
use serde_json::json;
use wharf::{ModelRef, Wharf};
use wharf_stream::{
    connect, stop_on_signals, ConnectOptions, FileCheckpoint, MemoryCheckpoint, OnError, RegistryModel, StreamJob,
    StreamOptions, StreamReport, WindowSpec,
};

use crate::output::{self, Output};

/// `wharf stream`
#[derive(Debug, Args)]
#[command(after_help = "Each output line has the --id fields, `prediction`, `prob_<class>` per class (classifiers), \
                  `model`, `model_version` and `key` (the input record's source and byte offset).\n\nWith --output, \
                  a checkpoint (<output>.checkpoint.json) is committed after each batch is on disk: a restarted \
                  job cuts the output back to it and resumes the input there, so nothing is lost or written \
                  twice. Without a checkpoint the output file is started afresh. To stdout, a restart may repeat the records after the last checkpoint.\n\nExample:\n  \
                  wharf stream --model activity@champion --input events.jsonl --follow --output scores.jsonl \
                  --id User --window-key User,Device --event-time Arrival_Time --window-fields x,y,z --window 10m")]
pub struct StreamArgs {
    /// The model: NAME (latest), NAME@VERSION or NAME@ALIAS; an alias is looked up again at
    /// every micro-batch, so moving it switches the model between batches.
    #[arg(long, short = 'm', value_name = "NAME[@VERSION|@ALIAS]")]
    pub model: ModelRef,

    /// JSON lines to score: a file, or `-` for stdin.
    #[arg(long, short = 'i', value_name = "FILE|-", default_value = "-")]
    pub input: String,

    /// Consume a broker instead of --input, as one worker of a consumer group:
    /// redis://HOST:PORT/STREAM?group=G&consumer=C (feature `redis`),
    /// nats://HOST:PORT/STREAM?group=G&consumer=C (feature `nats`; the group is the JetStream
    /// durable consumer) or kafka://HOST:PORT/TOPIC?group=G&consumer=C (feature `kafka`).
    /// Start more workers with the same group and other consumer names, on any machine, to
    /// scale out.
    #[arg(long, value_name = "URL", conflicts_with_all = ["follow", "checkpoint"])]
    pub source: Option<String>,

    /// Write the results to a broker stream instead of --output: redis://HOST:PORT/STREAM,
    /// nats://HOST:PORT/STREAM or kafka://HOST:PORT/TOPIC, the same broker as --source. Redis
    /// on the same server writes each result and acknowledges its input atomically; NATS
    /// acknowledges after the results are stored, and drops a result stored twice
    /// (`Nats-Msg-Id`); Kafka commits offsets after the results are written (at least once,
    /// each result keyed by its input record).
    #[arg(long, value_name = "URL", requires = "source", conflicts_with_all = ["output", "checkpoint"])]
    pub sink: Option<String>,

    /// Keep reading the input file as it grows (until --idle-timeout, Ctrl-C or SIGTERM).
    #[arg(long)]
    pub follow: bool,

    /// Stop after this long without new records (e.g. 30s, 500ms, 5m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub idle_timeout: Option<Duration>,

    /// Where to append the results [default: stdout].
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// The checkpoint file [default: <output>.checkpoint.json; none for stdout].
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,

    /// Write a micro-batch once it has this many records…
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: u64,

    /// …or once its first record has waited this many milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub max_latency_ms: u64,

    /// Input field copied to each output record (repeatable).
    #[arg(long = "id", value_name = "FIELD")]
    pub ids: Vec<String>,

    /// A field that must be present and non-null, or the record is dropped and counted
    /// (repeatable; the model's features and the window's fields always are).
    #[arg(long = "require", value_name = "FIELD")]
    pub require: Vec<String>,

    /// Fields to average over the window; each adds `<field>_avg` before scoring.
    #[arg(long, value_name = "FIELDS", value_delimiter = ',')]
    pub window_fields: Vec<String>,

    /// Fields naming the entity a window belongs to (e.g. User,Device).
    #[arg(long, value_name = "FIELDS", value_delimiter = ',', requires = "window_fields")]
    pub window_key: Vec<String>,

    /// The event-time field: epoch milliseconds or RFC 3339.
    #[arg(long, value_name = "FIELD", requires = "window_fields")]
    pub event_time: Option<String>,

    /// Window length: each average covers [t - window, t].
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub window: Duration,

    /// How far behind the newest event time an event may be; older events are dropped and
    /// counted as late.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub lateness: Duration,

    /// Stop at the first record that cannot be scored, instead of counting and skipping it.
    #[arg(long)]
    pub fail_on_error: bool,

    /// Also write the windowed features (`<field>_avg`) into each output record.
    #[arg(long, requires = "window_fields")]
    pub emit_features: bool,

    /// Also write the scored records to a prediction log in this directory, as `wharf serve
    /// --log-sample` does (features, prediction, probabilities, each by its key), for `wharf
    /// drift --log`.
    #[arg(long, value_name = "DIR")]
    pub log: Option<PathBuf>,

    /// With --log: the fraction of records logged (drawn by key, so a replay logs the same).
    #[arg(long, value_name = "FRACTION", default_value_t = 1.0, requires = "log")]
    pub log_sample: f64,
}

/// Runs `wharf stream`: the flags become a source and sink URL for
/// [`wharf_stream::connect`], and the model is served by the container's model-server
/// factory, so `serving.backend` decides where records are scored.
pub fn run(args: StreamArgs, out: &Output) -> anyhow::Result<()> {
    let window = window_spec(&args)?;
    let (source_url, sink_url) = match &args.source {
        Some(source) => {
            if args.input != "-" {
                bail!("--source and --input both name an input; use one");
            }
            if source == "-" || source.starts_with("file:") {
                bail!("--source {source}: --source names a broker; use --input for a file or stdin");
            }
            if args.output.is_some() {
                bail!(
                    "--source (a broker) cannot write to --output: the broker's acknowledgement is the checkpoint, \
                     so a restart could not cut the file back; use --sink with the same broker, or stdout"
                );
            }
            (source.clone(), args.sink.clone())
        }
        None => {
            if args.follow && args.input == "-" {
                bail!("--follow needs an input file; stdin is read until it closes anyway");
            }
            if let (Some(output), false) = (&args.output, args.input == "-") {
                if same_file(&PathBuf::from(&args.input), output) {
                    bail!("the output {} would overwrite the input", output.display());
                }
            }
            let source = if args.input == "-" { "-".to_string() } else { format!("file:{}", args.input) };
            let sink = match &args.output {
                Some(path) => match path.to_str() {
                    Some(path) => Some(format!("file:{path}")),
                    None => bail!("--output {}: the path is not UTF-8", path.display()),
                },
                None => None,
            };
            (source, sink)
        }
    };
    let ctx = Wharf::load()?;
    let options = ConnectOptions::default().follow(args.follow).names("--source", "--sink");
    let connected = connect(&source_url, sink_url.as_deref(), &options)?;
    let to_stdout = sink_url.is_none();
    let models = RegistryModel::new(ctx.registry().clone(), args.model.clone(), ctx.model_servers().clone());
    let mut stream_options = stream_options(&args, window);
    if let Some(dir) = &args.log {
        // The version is set batch by batch, as the registry's alias may move meanwhile.
        let job = format!("stream:{}", args.model);
        let writer = wharf::predlog::PredictionLogWriter::open(dir, args.log_sample, &args.model.name, 0, &job)?;
        stream_options.prediction_log = Some(std::sync::Arc::new(writer));
    }
    let job = StreamJob::new(connected.source, connected.sink, models)
        .lineage(ctx.lineage().clone())
        .options(stream_options)
        .stop_flag(stop_on_signals()?);
    if let Some(stats) = connected.stats {
        // A broker: its acknowledgement is the checkpoint.
        let report = job.run()?;
        let brokered = BrokerCounts {
            reclaimed: stats.reclaimed(),
            dead_lettered: stats.dead_lettered(),
            duplicates: stats.duplicates(),
        };
        return summarize_broker(&report, &args, brokered, to_stdout, out);
    }
    let checkpoint_path = args
        .checkpoint
        .clone()
        .or_else(|| args.output.as_deref().map(|o| FileCheckpoint::beside(o).path().to_path_buf()));
    let job = match &checkpoint_path {
        Some(path) => job.checkpoints(FileCheckpoint::new(path)),
        None => job.checkpoints(MemoryCheckpoint::new()),
    };
    let report = job.run()?;
    summarize(&report, &args, checkpoint_path.as_ref(), to_stdout, out)
}

/// The job options every input shares. `wharf stream` skips a record it cannot score unless
/// told `--fail-on-error`: a long-running stream should not stop for one bad record, unlike
/// the library, whose default ([`OnError::default`]) is to stop.
fn stream_options(args: &StreamArgs, window: Option<WindowSpec>) -> StreamOptions {
    StreamOptions {
        job_name: None,
        batch_size: usize::try_from(args.batch_size).unwrap_or(usize::MAX),
        max_latency: Duration::from_millis(args.max_latency_ms),
        idle_timeout: args.idle_timeout,
        ids: args.ids.clone(),
        require: args.require.clone(),
        window,
        on_error: if args.fail_on_error { OnError::Fail } else { OnError::Skip },
        emit_features: args.emit_features,
        prediction_log: None,
    }
}

/// What the broker side did, besides scoring.
struct BrokerCounts {
    reclaimed: u64,
    dead_lettered: u64,
    duplicates: u64,
}

fn summarize_broker(
    report: &StreamReport,
    args: &StreamArgs,
    broker: BrokerCounts,
    to_stdout: bool,
    out: &Output,
) -> anyhow::Result<()> {
    if out.json && !to_stdout {
        let mut summary = summary_json(report, args);
        summary["reclaimed"] = json!(broker.reclaimed);
        summary["dead_lettered"] = json!(broker.dead_lettered);
        summary["duplicates"] = json!(broker.duplicates);
        return out.json(&summary);
    }
    summarize(report, args, None, to_stdout, out)?;
    let text = format!(
        "Broker: {} reclaimed from idle consumers, {} dead-lettered, {} duplicate results dropped",
        broker.reclaimed, broker.dead_lettered, broker.duplicates
    );
    if out.quiet {
        Ok(())
    } else if to_stdout {
        eprintln!("{text}");
        Ok(())
    } else {
        out.info(text)
    }
}

fn window_spec(args: &StreamArgs) -> anyhow::Result<Option<WindowSpec>> {
    if args.window_fields.is_empty() {
        return Ok(None);
    }
    let Some(time_field) = &args.event_time else {
        bail!("--window-fields needs --event-time, the field holding each record's event time");
    };
    let millis =
        |d: Duration, flag: &str| i64::try_from(d.as_millis()).map_err(|_| anyhow::anyhow!("{flag} is too long"));
    let spec = WindowSpec {
        keys: args.window_key.clone(),
        time_field: time_field.clone(),
        fields: args.window_fields.clone(),
        window_ms: millis(args.window, "--window")?,
        lateness_ms: millis(args.lateness, "--lateness")?,
        suffix: "_avg".into(),
    };
    spec.validate()?;
    Ok(Some(spec))
}

/// The `--json` summary fields every stream job has; file and broker jobs add their own.
fn summary_json(report: &StreamReport, args: &StreamArgs) -> serde_json::Value {
    let c = &report.counts;
    json!({
        "model": args.model.to_string(),
        "model_versions": report.model_versions,
        "records_in": c.records_in,
        "records_out": c.records_out,
        "dropped_null": c.dropped_null,
        "dropped_late": c.dropped_late,
        "rejected": c.rejected,
        "batches": c.batches,
        "stop": format!("{:?}", report.stop).to_lowercase(),
        "run_id": report.run_id,
    })
}

/// The summary goes to stderr when the results go to stdout, so it never mixes with them.
fn summarize(
    report: &StreamReport,
    args: &StreamArgs,
    checkpoint: Option<&PathBuf>,
    to_stdout: bool,
    out: &Output,
) -> anyhow::Result<()> {
    for reject in &report.rejects {
        output::warning(&format!("skipped {reject}"));
    }
    let c = &report.counts;
    if out.json && !to_stdout {
        let mut summary = summary_json(report, args);
        summary["input_offset"] = json!(report.input_offset);
        summary["resumed_from"] = json!(report.resumed_from);
        summary["checkpoint"] = json!(checkpoint.map(|p| p.display().to_string()));
        return out.json(&summary);
    }
    if out.quiet {
        return Ok(());
    }
    let versions: Vec<String> = report.model_versions.iter().map(|v| v.to_string()).collect();
    let resumed = report.resumed_from.map(|o| format!(", resumed at byte {o}")).unwrap_or_default();
    // Counts are for the whole stream, earlier runs of a resumed job included.
    let scored_by = if versions.is_empty() {
        args.model.to_string()
    } else {
        format!("{} v{}", args.model.name, versions.join(","))
    };
    let text = format!(
        "Streamed {} records -> {} results with {scored_by} in {} batches ({} dropped for nulls, {} late, {} rejected{resumed})",
        c.records_in,
        c.records_out,
        c.batches,
        c.dropped_null,
        c.dropped_late,
        c.rejected,
    );
    if to_stdout {
        eprintln!("{text}");
        Ok(())
    } else {
        out.info(text)
    }
}

fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// `500ms`, `30s`, `10m`, `2h`; a bare number is seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("'{s}' is not a duration like 500ms, 30s, 10m or 2h"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("unknown unit '{other}' in '{s}' (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("'{s}' is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_with_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }
}
