//! `wharf runs sync`: runs the MLflow tracker spooled while the server was unreachable are
//! sent to it, then removed from the spool.

use crate::args::RunsCommand;
use crate::output::Output;

/// Runs `wharf runs …`.
pub fn run(command: RunsCommand, out: &Output) -> anyhow::Result<()> {
    match command {
        RunsCommand::Sync => sync(out),
    }
}

#[cfg(feature = "mlflow")]
fn sync(out: &Output) -> anyhow::Result<()> {
    use serde_json::json;

    let config = wharf::WharfConfig::load()?;
    let mlflow = wharf_mlflow::MlflowConfig::tracking(&config)?;
    let report = wharf_mlflow::replay_config(&mlflow)?;
    if out.json {
        out.json(&json!({
            "spool_dir": mlflow.spool_dir.display().to_string(),
            "replayed": report.replayed.iter().map(|(s, m)| json!({ "spool_run": s, "mlflow_run": m })).collect::<Vec<_>>(),
            "running": report.running,
            "failed": report.failed.iter().map(|(s, e)| json!({ "spool_run": s, "error": e })).collect::<Vec<_>>(),
        }))?;
    } else {
        for (spool, mlflow_id) in &report.replayed {
            out.line(format!("sent {spool} -> MLflow run {mlflow_id}"))?;
        }
        for id in &report.running {
            out.line(format!("left {id}: still RUNNING"))?;
        }
        out.info(format!(
            "{} run(s) sent, {} still running, {} failed (spool: {})",
            report.replayed.len(),
            report.running.len(),
            report.failed.len(),
            mlflow.spool_dir.display()
        ))?;
    }
    match report.failed.first() {
        Some((id, error)) => {
            anyhow::bail!("{} spooled run(s) could not be sent; first, {id}: {error}", report.failed.len())
        }
        None => Ok(()),
    }
}

#[cfg(not(feature = "mlflow"))]
fn sync(_out: &Output) -> anyhow::Result<()> {
    Err(wharf::WharfError::AdapterUnavailable { adapter: "mlflow".into(), feature: "mlflow".into() }.into())
}
