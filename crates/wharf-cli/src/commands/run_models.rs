//! `wharf run-models`: many registered models and built-in summaries over JSON-lines
//! records, each record's results stored in a result store (SQLite, PostgreSQL).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use serde_json::{json, Value};
use wharf::{json_type, Wharf, WharfError};
use wharf_runner::{open_store, DepRef, Record, Runner, RunnerConfig, Status, Tally};

use crate::args::RunModelsArgs;
use crate::output::{self, Output};

/// Runs `wharf run-models`.
pub fn run(args: RunModelsArgs, out: &Output) -> anyhow::Result<()> {
    let config = RunnerConfig::load(&args.config)?;
    // The whole file is read and checked before anything runs, so a malformed line stops
    // the command with nothing stored rather than half-way through.
    let records = read_records(&args.input, &args.id_field)?;

    let ctx = Wharf::load()?;
    // Each model on a server of its own from the configured factory (`serving.backend`).
    let (models, summaries) = config.build_with(ctx.registry().as_ref(), ctx.model_servers())?;
    let statuses: BTreeMap<DepRef, Status> =
        models.iter().map(|m| (m.key(), m.status)).chain(summaries.iter().map(|s| (s.key(), s.status))).collect();
    let runner = Runner::new(models, summaries)?.include_drafts(args.include_drafts);
    let skipped = runner.skipped();
    if runner.models().next().is_none() && runner.summaries().next().is_none() {
        return Err(anyhow!(
            "every model and summary in {} is a draft: pass --include-drafts, or set status = \"active\"",
            args.config.display()
        ));
    }
    if !skipped.is_empty() && !out.quiet {
        let names: Vec<String> = skipped.iter().map(ToString::to_string).collect();
        output::warning(&format!("skipping drafts {} (use --include-drafts to run them)", names.join(", ")));
    }
    let store = open_store(&args.store)?;
    let shown_store = redact(&args.store);

    let bar = progress_bar(records.len() as u64, out.quiet || out.json);
    let mut tally = Tally::default();
    for chunk in records.chunks(args.batch_size) {
        let results = runner.run(chunk, Some(store.as_ref())).with_context(|| {
            format!(
                "{} of {} records were stored in {shown_store} before this batch failed",
                tally.records,
                records.len()
            )
        })?;
        tally.add(&results);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();

    let rows: Vec<(String, &'static str, usize, usize)> = tally
        .per_model
        .iter()
        .map(|(key, (values, errors))| {
            let status = statuses.get(key).map_or("?", |s| s.as_str());
            (key.to_string(), status, *values, *errors)
        })
        .collect();
    let with_errors = tally.records - tally.records_ok;
    if out.json {
        return out.json(&json!({
            "records": tally.records,
            "ok": tally.records_ok,
            "with_errors": with_errors,
            "store": shown_store,
            "models": rows.iter().map(|(model, status, values, errors)| json!({
                "model": model, "status": status, "values": values, "errors": errors,
            })).collect::<Vec<Value>>(),
            "skipped": skipped.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }));
    }
    let mut table = output::table(["model", "status", "values", "errors"]);
    for (model, status, values, errors) in &rows {
        table.add_row(vec![model.clone(), status.to_string(), values.to_string(), errors.to_string()]);
    }
    out.table(&table)?;
    out.info(format!(
        "Stored {} records ({} ok, {with_errors} with errors) in {shown_store}",
        tally.records, tally.records_ok
    ))
}

/// Reads every line: an object with an id and a `data` object. Blank lines are skipped.
fn read_records(path: &std::path::Path, id_field: &str) -> anyhow::Result<Vec<Record>> {
    let text = std::fs::read_to_string(path).map_err(|e| WharfError::io(path, e))?;
    let name = path.display();
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line).map_err(|e| {
            let full = e.to_string();
            let message = full.rsplit_once(" at line ").map(|(m, _)| m.to_string()).unwrap_or(full);
            anyhow!("{name} line {}, column {}: invalid JSON: {message}", i + 1, e.column())
        })?;
        if !value.is_object() {
            return Err(anyhow!("{name} line {}: expected a JSON object, found {}", i + 1, json_type(&value)));
        }
        let record = Record::from_json(value, id_field, "data").map_err(|e| anyhow!("{name} line {}: {e}", i + 1))?;
        records.push(record);
    }
    if records.is_empty() {
        return Err(anyhow!("{name} holds no records"));
    }
    Ok(records)
}

/// A bar on stderr; drawn only on a terminal, and not at all with `--quiet` or `--json`.
fn progress_bar(total: u64, hidden: bool) -> ProgressBar {
    let target = if hidden { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {human_pos}/{human_len} records  {rate}  eta {eta}") {
        let rate = |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.0}/s", state.per_sec());
        };
        bar.set_style(style.progress_chars("=> ").with_key("rate", rate));
    }
    if !bar.is_hidden() {
        bar.enable_steady_tick(Duration::from_millis(200));
    }
    bar
}

/// The store URL without its credentials (userinfo, `password=` in the query), for
/// messages and output: the project's one redaction rule.
fn redact(url: &str) -> String {
    wharf::redact::url(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_are_shown_without_passwords() {
        // The whole userinfo goes: a token may sit in the user slot alone.
        assert_eq!(redact("postgres://me:secret@db:5432/x"), "postgres://***@db:5432/x");
        assert_eq!(redact("postgres://me@db/x"), "postgres://***@db/x");
        assert_eq!(redact("postgres://db/x?user=me&password=secret"), "postgres://db/x?user=me&password=***");
        assert_eq!(redact("sqlite://results.db"), "sqlite://results.db");
    }
}
