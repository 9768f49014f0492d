//! `wharf sql`: run SQL over Parquet and CSV files with registered models as functions.
//!
//! The engine is DataFusion, through `wharf_datafusion`; this resolves the registry and the
//! model servers (`serving.backend`) from the current directory's configuration, runs the
//! statements and prints the last result.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use wharf::Wharf;
use wharf_datafusion::{sql, WharfUdfs};

use crate::output::{self, Output};

/// `wharf sql`
#[derive(Debug, Args)]
#[command(after_help = "Functions:\n  \
    wharf_predict('MODEL[@VERSION|@ALIAS]', feature, ...)        label, value or cluster\n  \
    wharf_predict_proba('MODEL[@VERSION|@ALIAS]', feature, ...)  struct of class probabilities\n\
    The features follow the model's signature order (see `wharf models show MODEL`).\n\n\
    Examples:\n  \
    wharf sql \"SELECT lead_id, wharf_predict('lead', source, industry, pages_viewed, minutes_on_site, \
    emails_opened, company_size, days_since_signup) AS label FROM 'new.csv'\"\n  \
    wharf sql \"COPY (SELECT lead_id, wharf_predict_proba('lead@champion', ...) AS p FROM 'leads.parquet') \
    TO 'scored.parquet' STORED AS PARQUET\"\n  \
    wharf sql --file score.sql --json")]
pub struct SqlArgs {
    /// SQL statements separated by `;`, run in order; the last one's result is printed. Files
    /// are tables by path (`FROM 'leads.parquet'`, `FROM 'leads.csv'`), or by name after
    /// `CREATE EXTERNAL TABLE`; `COPY (...) TO 'out.parquet'` writes a file.
    #[arg(value_name = "SQL", required_unless_present = "file", conflicts_with = "file")]
    pub sql: Option<String>,

    /// Read the statements from a file instead.
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: Option<PathBuf>,
}

/// Runs `wharf sql`.
pub fn run(args: SqlArgs, out: &Output) -> anyhow::Result<()> {
    let script = match (args.sql, &args.file) {
        (Some(sql), _) => sql,
        (None, Some(file)) => {
            std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?
        }
        (None, None) => anyhow::bail!("no SQL given"),
    };
    let ctx = Wharf::load()?;
    let udfs = WharfUdfs::with_model_servers(ctx.registry().clone(), ctx.model_servers().clone());
    let batches =
        sql::run_script_blocking_with(udfs, &script).map_err(|e| anyhow::anyhow!("{}", e.strip_backtrace()))?;
    if out.json {
        return out.json(&sql::to_json(&batches)?);
    }
    let (header, rows) = sql::to_text(&batches)?;
    if header.is_empty() {
        return Ok(());
    }
    let mut table = output::table(header);
    for row in rows {
        table.add_row(row);
    }
    out.table(&table)
}
