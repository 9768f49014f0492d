//! The quickstart's job, tracked and registered in MLflow: the training code is the same,
//! only the configuration differs.
//!
//! Start a server (`mlflow server --host 127.0.0.1 --port 5000`), then run
//! `cargo run --example mlflow_tracking --features mlflow`. The server's URI comes from
//! `MLFLOW_TRACKING_URI` (default `http://127.0.0.1:5000`). Open the MLflow UI to see the run,
//! its params, metrics with steps and model, and the registered model `lead` with its alias.

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
    // The same as `[tracking] backend = "mlflow"` … in wharf.toml.
    let uri = std::env::var("MLFLOW_TRACKING_URI").unwrap_or_else(|_| "http://127.0.0.1:5000".into());
    let mut config = WharfConfig::load()?;
    config.tracking.backend = "mlflow".into();
    // The adapter owns its table: read it typed, change it, put it back.
    let mut mlflow = wharf::mlflow::MlflowConfig::tracking(&config)?;
    mlflow.uri = Some(uri);
    mlflow.experiment = "wharf-example".into();
    // Fail loudly rather than spool: this example is about seeing the run in MLflow.
    mlflow.strict = true;
    config.set_adapter(wharf::mlflow::config::TRACKING_KEY, &mlflow)?;
    config.registry.backend = "mlflow".into();
    let ctx = Wharf::from_config(config)?;
    println!("{}", ctx.report());

    // A hand-made run with a metric curve: buffered and sent in a few log-batch requests.
    let run = ctx.tracker().start_run(Some("loss-curve"))?;
    run.log_param("schedule", "1/(1+step)")?;
    for step in 0..100u64 {
        run.log_metric("loss", 1.0 / (1.0 + step as f64), Some(step))?;
    }
    run.finish()?;

    // The main job: tracked in MLflow, registered as the next version of `lead`.
    let mut job = TrainJob::new(wharf::datasets::lead_scoring(), Trainer::logistic_regression(), "lead");
    job.aliases = vec!["champion".into()];
    let outcome = job.run(&ctx, |stage| println!("  … {stage}"))?;
    println!("MLflow run {} registered lead version {}", outcome.run_id, outcome.version);

    // Back from MLflow into a Wharf model server, by alias.
    let model = ctx.registry().load("lead", "champion")?;
    ctx.model_server().load(model)?;
    let records = Records::Rows(outcome.model.metadata().sample_input.clone());
    let proba = ctx.model_server().predict_proba(&records)?;
    println!("P({}) of the first sample: {:.3}", proba.classes[1], proba.values[[0, 1]]);
    Ok(())
}
