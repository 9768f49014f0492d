//! Predictions from a model BentoML already serves, through Wharf's `ModelServerPort`.
//!
//! Start a BentoML service whose `predict` / `predict_proba` APIs take `{"input_data":
//! [[sepal_length, sepal_width, petal_length, petal_width], ...]}` (the test service in
//! `crates/wharf-bentoml/tests/fixtures` is one), set `WHARF_SERVING__BENTOML__URL`, then run
//! `cargo run -p wharf --example bentoml_proxy --features bentoml`.

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
    // The same as `[serving] backend = "bentoml"` plus `[serving.bentoml] url = …` in wharf.toml.
    let mut config = WharfConfig::load()?;
    if wharf::bentoml::BentoMlConfig::from_wharf(&config)?.url.is_none() {
        println!("no BentoML service configured: set WHARF_SERVING__BENTOML__URL (e.g. http://127.0.0.1:3000)");
        return Ok(());
    }
    config.serving.backend = "bentoml".into();
    let ctx = Wharf::from_config(config)?;
    println!("{}", ctx.report());

    // The model supplies the signature and class labels; BentoML computes the predictions.
    let model = Trainer::logistic_regression().fit(&datasets::iris())?;
    let records = Records::Rows(model.metadata().sample_input.clone());
    let server = ctx.model_server();
    server.load(model)?;
    println!("ready: {}", server.ready());
    let predictions = server.predict(&records)?;
    let proba = server.predict_proba(&records)?;
    for i in 0..records.len() {
        let p: Vec<String> = proba.values.row(i).iter().map(|x| format!("{x:.3}")).collect();
        println!("record {i}: {} ({})", predictions.display(i), p.join(", "));
    }
    Ok(())
}
