//! Running a SQL script with Wharf's functions, and showing its result: what `wharf sql` does.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::json::writer::{JsonArray, WriterBuilder};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::{exec_datafusion_err, plan_err, Result};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::DFParser;
use wharf_core::RegistryPort;

use crate::{register_udfs, WharfUdfs};

/// A session with Wharf's functions registered and file paths usable as tables
/// (`FROM 'leads.parquet'`, `FROM 'leads.csv'`).
///
/// Parquet is written with Snappy rather than DataFusion's default zstd: Snappy is what
/// `wharf score` (and pandas, pyarrow, Spark) read and write by default, so a file scored
/// here can go on to the rest of Wharf. `SET datafusion.execution.parquet.compression = ...`
/// chooses another codec.
pub fn session(registry: Arc<dyn RegistryPort>) -> (SessionContext, WharfUdfs) {
    session_with(WharfUdfs::new(registry))
}

/// [`session`] with the functions given (their registry and model servers).
pub fn session_with(udfs: WharfUdfs) -> (SessionContext, WharfUdfs) {
    let mut config = SessionConfig::new();
    config.options_mut().execution.parquet.compression = Some("snappy".to_string());
    let ctx = SessionContext::new_with_config(config).enable_url_table();
    let udfs = register_udfs(&ctx, udfs);
    (ctx, udfs)
}

/// Runs each statement of `script` (separated by `;`) in order and returns the result of the
/// last one. Earlier statements can create what later ones use (`CREATE EXTERNAL TABLE`,
/// `SET`); a `COPY ... TO` returns its row count.
pub async fn run_script(ctx: &SessionContext, script: &str) -> Result<Vec<RecordBatch>> {
    let statements = DFParser::parse_sql(script)?;
    if statements.is_empty() {
        return plan_err!("no SQL statement given");
    }
    let mut last = Vec::new();
    for statement in statements {
        let plan = ctx.state().statement_to_plan(statement).await?;
        last = ctx.execute_logical_plan(plan).await?.collect().await?;
    }
    Ok(last)
}

/// [`run_script`] in a fresh [`session`], on a runtime of its own: for synchronous callers
/// such as the CLI.
pub fn run_script_blocking(registry: Arc<dyn RegistryPort>, script: &str) -> Result<Vec<RecordBatch>> {
    run_script_blocking_with(WharfUdfs::new(registry), script)
}

/// [`run_script_blocking`] with the functions given (their registry and model servers).
pub fn run_script_blocking_with(udfs: WharfUdfs, script: &str) -> Result<Vec<RecordBatch>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| exec_datafusion_err!("cannot start the query runtime: {e}"))?;
    let (ctx, _udfs) = session_with(udfs);
    runtime.block_on(run_script(&ctx, script))
}

/// The batches as a header and rows of display text (nulls as empty cells), for a table.
pub fn to_text(batches: &[RecordBatch]) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let Some(first) = batches.first() else {
        return Ok((Vec::new(), Vec::new()));
    };
    let header = first.schema().fields().iter().map(|f| f.name().clone()).collect();
    let options = FormatOptions::default();
    let mut rows = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        for i in 0..batch.num_rows() {
            rows.push(formatters.iter().map(|f| f.value(i).to_string()).collect());
        }
    }
    Ok((header, rows))
}

/// The batches as a JSON array of row objects: numbers as numbers, structs (such as
/// `wharf_predict_proba`'s) as nested objects, nulls as `null`.
pub fn to_json(batches: &[RecordBatch]) -> Result<serde_json::Value> {
    let mut writer = WriterBuilder::new().with_explicit_nulls(true).build::<_, JsonArray>(Vec::new());
    for batch in batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    let bytes = writer.into_inner();
    if bytes.is_empty() {
        return Ok(serde_json::Value::Array(Vec::new()));
    }
    serde_json::from_slice(&bytes).map_err(|e| exec_datafusion_err!("cannot read the result as JSON: {e}"))
}
