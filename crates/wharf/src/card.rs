//! Model cards of registered versions, read through the ports: the model and its entry from
//! the registry, the run that trained it (its metric history is the learning curve) from the
//! tracker. So a card is the same on the file defaults and on MLflow.

use wharf_core::{Result, RunHandle, Selector, Version, WharfError};
use wharf_ml::Dataset;
use wharf_report::{ModelReport, ReportOptions};

use crate::Wharf;

/// The artifact name a card is stored under in a tracked run (and the file name the file
/// registry keeps beside a version).
pub const CARD_ARTIFACT: &str = "card.html";

/// The card of version `selector` of `name`, evaluated on `holdout` when given.
///
/// A run the tracker cannot read back (the no-op tracker keeps none; a server may be down) or
/// a model without a `tracking_run` tag leaves a message where the learning curve would be.
pub fn registered_card(
    ctx: &Wharf,
    name: &str,
    selector: &Selector,
    holdout: Option<&Dataset>,
    options: ReportOptions,
) -> Result<ModelReport> {
    let info = ctx.registry().version_info(name, selector)?;
    let model = ctx.registry().load_selected(name, &Selector::Version(info.version))?;
    let mut builder = ModelReport::builder(&model).sha256(info.sha256.clone()).version(info).options(options);
    if let Some(data) = holdout {
        builder = builder.holdout(data);
    }
    builder = match model.metadata().tags.get("tracking_run") {
        None => builder.run_unavailable("the model names no tracking run (no tracking_run tag)"),
        // The history only adds a plot: a run that cannot be read is a message on the card.
        Some(run_id) => match ctx.tracker().get_run(run_id) {
            Ok(run) => builder.run(run),
            Err(WharfError::NotFound { .. }) => {
                builder.run_unavailable(format!("run {run_id} is not in the configured tracker"))
            }
            Err(e) => builder.run_unavailable(format!("run {run_id} could not be read: {e}")),
        },
    };
    builder.build()
}

/// Builds the new version's card, logs it to the still-open `run` as [`CARD_ARTIFACT`] and
/// stores it with the version. A tracker or registry that keeps no such files is noted on the
/// run (`wharf.card_not_logged`, `wharf.card_not_stored`) rather than failing the job.
pub(crate) fn publish(
    ctx: &Wharf,
    run: &RunHandle<'_>,
    name: &str,
    version: Version,
    holdout: Option<&Dataset>,
) -> Result<()> {
    let card = registered_card(ctx, name, &Selector::Version(version), holdout, ReportOptions::default())?;
    let html = card.render();
    let dir = std::env::temp_dir().join(format!("wharf-card-{}-{}", std::process::id(), run.id()));
    let path = dir.join(CARD_ARTIFACT);
    let logged = wharf_core::fsutil::write_atomic(&path, html.as_bytes())
        .and_then(|()| ctx.tracker().log_artifact(run.id(), &path, CARD_ARTIFACT));
    let _ = std::fs::remove_dir_all(&dir);
    match logged {
        Err(WharfError::Unsupported(why)) => run.set_tag("wharf.card_not_logged", why)?,
        other => other?,
    }
    match ctx.registry().store_card(name, &version, html.as_bytes()) {
        Err(WharfError::Unsupported(why)) => run.set_tag("wharf.card_not_stored", why),
        other => other,
    }
}
