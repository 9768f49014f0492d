//! `wharf score` (alias `wharf predict`): batch-score a CSV, JSON-lines or Parquet file with
//! a registered model.
//!
//! The work is `wharf_batch::score_file`; this resolves the model, loads it on a server from
//! the container's model-server factory (so `serving.backend` decides where it scores),
//! wires the container's lineage and a progress bar, and reports.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use wharf::{jobs, ModelRef, RegistryExt, Selector, Wharf};
use wharf_batch::{registered_facts, score_file, OnError, Progress, ScoreOptions, DEFAULT_CHUNK_ROWS};

use crate::args::ScoreJobArgs;
use crate::output::{Output, Spinner};

/// `wharf score`
#[derive(Debug, Args)]
#[command(after_help = "Each output row has the id columns (the model's own, then --id), `prediction`, one \
    `prob_<class>` column per class (classifiers), then `model` and `model_version`. `wharf predict` is \
    another name for this command.\n\n\
    Examples:\n  \
    wharf score --model lead@champion --input leads.parquet --output scored.parquet\n  \
    wharf score -m lead -i new.csv -o scored.jsonl --id industry --on-error skip --reject bad-rows.jsonl\n  \
    wharf predict -m lead -i new.csv -o scored.csv")]
pub struct ScoreArgs {
    /// The model, the input, the output and the id columns.
    #[command(flatten)]
    pub job: ScoreJobArgs,

    /// A row that cannot be scored stops the job, naming its row and column (fail), or is
    /// written to the reject file with the reason (skip).
    #[arg(long, value_name = "POLICY", default_value = "fail", value_parser = ["fail", "skip"])]
    pub on_error: String,

    /// The reject file for --on-error skip, as JSON lines [default: OUTPUT.rejects.jsonl].
    #[arg(long, value_name = "FILE")]
    pub reject: Option<PathBuf>,

    /// Rows read, scored and written per chunk; memory holds a few chunks at a time.
    #[arg(long, value_name = "ROWS", default_value_t = DEFAULT_CHUNK_ROWS, value_parser = parse_rows)]
    pub chunk_rows: usize,

    /// Scoring threads [default: one per core].
    #[arg(long, value_name = "N", default_value_t = 0, hide_default_value = true)]
    pub threads: usize,

    /// Also write the scored rows to a prediction log in this directory, as `wharf serve
    /// --log-sample` does (features, prediction, probabilities; the job's name as request id
    /// and the file's row number as row), for `wharf drift --log`.
    #[arg(long, value_name = "DIR")]
    pub log: Option<PathBuf>,

    /// With --log: the fraction of rows logged.
    #[arg(long, value_name = "FRACTION", default_value_t = 1.0, requires = "log")]
    pub log_sample: f64,
}

fn parse_rows(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("'{text}' is not a positive number of rows")),
    }
}

/// Runs `wharf score` (and `wharf predict`, its alias).
pub fn run(args: ScoreArgs, out: &Output) -> anyhow::Result<()> {
    let on_error: OnError = args.on_error.parse()?;
    if args.reject.is_some() && on_error != OnError::Skip {
        bail!("--reject is only used with --on-error skip");
    }
    let ctx = Wharf::load()?;
    let spinner = Spinner::new(out.quiet);
    spinner.stage(format!("loading {}", args.job.model));
    // Resolve the selector once, so the version reported is the version scored even if an
    // alias moves meanwhile.
    let info = ctx.registry().version_info(&args.job.model.name, &args.job.model.selector)?;
    let model = ctx
        .registry()
        .load_ref(&ModelRef { name: args.job.model.name.clone(), selector: Selector::Version(info.version) })?;
    // The model's own id columns ride along whenever the file has them, so a score can be
    // joined back to its record without repeating `--id`.
    let model_ids = if args.job.no_model_ids { Vec::new() } else { jobs::id_columns(&model) };
    let server = ctx.model_servers().serve(model)?;
    drop(spinner);
    let facts = registered_facts(&info);
    let mut options = ScoreOptions::new(&args.job.input, &args.job.output)
        .optional_ids(model_ids)
        .ids(args.job.ids.iter().cloned())
        .on_error(on_error)
        .chunk_rows(args.chunk_rows)
        .threads(args.threads);
    if let Some(reject) = &args.reject {
        options = options.reject_path(reject);
    }
    if let Some(dir) = &args.log {
        let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let job = format!("score:{}:{}", args.job.input.display(), started.as_secs());
        let writer = wharf::predlog::PredictionLogWriter::open(dir, args.log_sample, &info.name, info.version.0, &job)?;
        options = options.prediction_log(std::sync::Arc::new(writer));
    }

    let bar = RowsBar::new(out.quiet);
    let summary = score_file(server.as_ref(), &facts, &options, ctx.lineage().as_ref(), &mut |p| bar.update(p))?;
    drop(bar);

    let seconds = summary.elapsed.as_secs_f64();
    let rate = if seconds > 0.0 { summary.rows_read as f64 / seconds } else { 0.0 };
    let reject_file = summary.reject_file.as_ref().map(|p| p.display().to_string());
    if out.json {
        return out.json(&json!({
            "model": info.name,
            "version": info.version.0,
            "rows": summary.rows_scored,
            "rows_read": summary.rows_read,
            "rows_rejected": summary.rows_rejected,
            "input": args.job.input.display().to_string(),
            "output": args.job.output.display().to_string(),
            "format": summary.output_format.name(),
            "reject_file": reject_file,
            "columns": summary.columns,
            "seconds": seconds,
            "rows_per_second": rate.round(),
        }));
    }
    out.info(format!(
        "Scored {} rows with {}@{} -> {} ({:.0} rows/s)",
        summary.rows_scored,
        info.name,
        info.version,
        args.job.output.display(),
        rate
    ))?;
    if let Some(file) = reject_file {
        out.info(format!("Rejected {} rows -> {file}", summary.rows_rejected))?;
    }
    Ok(())
}

/// The progress bar on stderr: input consumed, rows scored and rows/s. Drawn only when
/// stderr is a terminal and not `--quiet`, so pipes and logs stay clean.
struct RowsBar {
    bar: ProgressBar,
    started: Instant,
}

impl RowsBar {
    fn new(quiet: bool) -> Self {
        let visible = !quiet && std::io::stderr().is_terminal();
        let target = if visible { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        let bar = ProgressBar::with_draw_target(Some(0), target);
        if let Ok(style) = ProgressStyle::with_template("{bar:30} {percent:>3}% {msg} ({elapsed}, eta {eta})") {
            bar.set_style(style);
        }
        if visible {
            bar.enable_steady_tick(Duration::from_millis(200));
        }
        RowsBar { bar, started: Instant::now() }
    }

    fn update(&self, p: &Progress) {
        self.bar.set_length(p.total_bytes.max(p.bytes_read));
        self.bar.set_position(p.bytes_read);
        let seconds = self.started.elapsed().as_secs_f64();
        let rate = if seconds > 0.0 { p.rows_read as f64 / seconds } else { 0.0 };
        let rejected = if p.rows_rejected > 0 { format!(", {} rejected", p.rows_rejected) } else { String::new() };
        self.bar.set_message(format!("{} rows{rejected}, {rate:.0} rows/s", p.rows_scored));
    }
}

impl Drop for RowsBar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
