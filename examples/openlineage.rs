//! Training with OpenLineage lineage: the job's START and COMPLETE events become
//! OpenLineage 2-0-2 RunEvents, with the model's input schema as a dataset facet and the
//! model (version, artifact SHA-256, metrics) as the `wharf_model` run facet.
//!
//! Run it with `cargo run --example openlineage --features openlineage`. Without a receiver
//! it prints the RunEvents (console transport); with `OPENLINEAGE_URL` set (Marquez, say:
//! `OPENLINEAGE_URL=http://127.0.0.1:5000`) it POSTs them to `{url}/api/v1/lineage`. An
//! unreachable receiver does not fail the job: events are spooled to
//! `./wharf-lineage-spool.jsonl` for `wharf lineage replay`.

use wharf::prelude::*;

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> wharf::Result<()> {
    // wharf.toml + OPENLINEAGE_* + WHARF_* as usual, then lineage switched to OpenLineage in
    // code (values set in code win over every other source).
    let mut config = WharfConfig::load()?;
    config.lineage.backend = "openlineage".into();
    let mut openlineage = wharf::openlineage::OpenLineageConfig::from_wharf(&config)?;
    if openlineage.url.is_none() {
        openlineage.transport = "console".into();
        config.set_adapter(wharf::openlineage::config::KEY, &openlineage)?;
    }
    let ctx = Wharf::from_config(config)?;
    println!("{}", ctx.report());

    let job = TrainJob::new(wharf::datasets::lead_scoring(), Trainer::logistic_regression(), "lead");
    let outcome = job.run(&ctx, |_| {})?;
    println!("registered lead version {} (accuracy {:.3})", outcome.version, outcome.metrics["accuracy"]);
    Ok(())
}
