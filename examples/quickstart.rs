//! Wharf's main job on its embedded defaults — no server needed:
//! train on a bundled dataset, track the run to files, register the model, alias it,
//! serve predictions from the registry, and emit lineage.
//!
//! Run it with `cargo run --release --example quickstart`. It writes `./wharf-registry`,
//! `./wharf-runs` and `./wharf-lineage.jsonl` (the defaults; change them in `wharf.toml`).

use wharf::prelude::*;
use wharf::{format_number, RegistryExt};

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
    // 1. The container, from wharf.toml + WHARF_* (defaults when neither exists).
    let ctx = Wharf::from_config(WharfConfig::load()?)?;
    println!("Wharf {} — ports in use:\n{}", env!("CARGO_PKG_VERSION"), ctx.report());

    // 2. Train, evaluate on a holdout, track, register and emit lineage: one job.
    let data = wharf::datasets::lead_scoring();
    let mut job = TrainJob::new(data.clone(), Trainer::logistic_regression(), "lead");
    job.aliases = vec!["champion".into()];
    let outcome = job.run(&ctx, |stage| println!("  … {stage}"))?;
    println!(
        "\nRegistered lead version {} (alias champion), run {}, trained on {} rows, held out {}",
        outcome.version, outcome.run_id, outcome.rows.0, outcome.rows.1
    );
    for (metric, value) in &outcome.metrics {
        println!("  holdout {metric:<10} {value:.4}");
    }

    // 3. Serve: load the champion from the registry into the model server and score leads.
    let server = ctx.model_server();
    server.load(ctx.registry().load("lead", "champion")?)?;
    let served = server.model().ok_or(WharfError::NoModelLoaded)?;
    let records = Records::Rows((0..5).map(|i| data.features.row(i)).collect());
    let predictions = server.predict(&records)?;
    let proba = server.predict_proba(&records)?;

    println!("\nPredictions from lead@champion (version {}):", outcome.version);
    println!(
        "{:<8} {:<12} {:<14} {:>6} {:>10} {:>8} {:>8}",
        "lead", "source", "industry", "pages", "prediction", "P(no)", "P(yes)"
    );
    let ids = data.ids.column("lead_id").ok_or_else(|| WharfError::not_found("column lead_id"))?;
    let feature = |name: &str, i: usize| data.features.column(name).map(|c| c.text_at(i)).unwrap_or_default();
    for i in 0..records.len() {
        println!(
            "{:<8} {:<12} {:<14} {:>6} {:>10} {:>8.3} {:>8.3}",
            ids.text_at(i),
            feature("source", i),
            feature("industry", i),
            feature("pages_viewed", i),
            predictions.display(i),
            proba.get(i, "no").unwrap_or(f64::NAN),
            proba.get(i, "yes").unwrap_or(f64::NAN),
        );
    }
    println!("\nModel signature: {} features, classes {:?}", served.signature().features.len(), served.classes());

    // 4. Lineage of serving: which model version answered, for which input.
    ctx.lineage().emit(
        &LineageEvent::new("score-lead")
            .input(data.name.clone())
            .input(format!("registry:lead/{}", outcome.version))
            .meta("rows", records.len())
            .meta("first_prediction", format_number(proba.values[(0, 1)])),
    )?;
    let listed = ctx.registry().get("lead")?;
    println!(
        "Registry now holds lead versions {:?}; lineage written by the '{}' sink.",
        listed.versions.iter().map(|v| v.version.0).collect::<Vec<_>>(),
        ctx.lineage().name()
    );
    Ok(())
}
