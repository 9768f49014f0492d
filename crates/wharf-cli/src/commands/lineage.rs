//! `wharf lineage replay`: OpenLineage events spooled while the receiver was unreachable
//! are sent to it; those it still does not take stay in the spool for the next replay.

use crate::args::LineageCommand;
use crate::output::Output;

/// Runs `wharf lineage …`.
pub fn run(command: LineageCommand, out: &Output) -> anyhow::Result<()> {
    match command {
        LineageCommand::Replay => replay(out),
    }
}

#[cfg(feature = "openlineage")]
fn replay(out: &Output) -> anyhow::Result<()> {
    use serde_json::json;

    let config = wharf::WharfConfig::load()?;
    let ol = wharf::openlineage::OpenLineageConfig::from_wharf(&config)?;
    let emitter = wharf::openlineage::OpenLineageEmitter::from_config(&ol)?;
    let report = emitter.replay()?;
    if out.json {
        out.json(&json!({
            "spool_path": ol.spool_path.display().to_string(),
            "sent": report.sent,
            "remaining": report.remaining,
        }))?;
    } else {
        out.info(format!(
            "{} event(s) sent, {} left in the spool ({})",
            report.sent,
            report.remaining,
            ol.spool_path.display()
        ))?;
    }
    if report.remaining > 0 {
        anyhow::bail!(
            "{} spooled event(s) could not be sent; they stay in {}",
            report.remaining,
            ol.spool_path.display()
        );
    }
    Ok(())
}

#[cfg(not(feature = "openlineage"))]
fn replay(_out: &Output) -> anyhow::Result<()> {
    Err(wharf::WharfError::AdapterUnavailable { adapter: "openlineage".into(), feature: "openlineage".into() }.into())
}
