//! The main job end to end on the defaults: tracked, registered, served, with lineage.

use wharf::prelude::*;
use wharf::{FileLineage, FileTracker, RunStatus};

fn ctx_in(dir: &std::path::Path) -> Wharf {
    let mut config = WharfConfig::default();
    config.registry.dir = dir.join("registry");
    config.tracking.dir = dir.join("runs");
    config.lineage.path = dir.join("lineage.jsonl");
    Wharf::from_config(config).expect("build")
}

#[test]
fn train_track_register_serve_and_emit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = ctx_in(dir.path());
    let mut job = TrainJob::new(datasets::breast_cancer(), Trainer::logistic_regression(), "cancer");
    job.aliases = vec!["champion".into()];
    let mut stages = Vec::new();
    let outcome = job.run(&ctx, |s| stages.push(s.to_string())).expect("job");
    assert_eq!(stages, ["splitting", "training", "evaluating", "tracking", "registering", "reporting"]);
    assert_eq!(outcome.version, Version(1));
    assert!(outcome.metrics["accuracy"] >= 0.9);
    assert_eq!(outcome.rows.0 + outcome.rows.1, 569);

    // Tracked: params, holdout metrics, model artifact, FINISHED.
    let run = FileTracker::new(dir.path().join("runs")).get_run(&outcome.run_id).expect("run");
    assert_eq!(run.status, RunStatus::Finished);
    assert_eq!(run.params["algorithm"], "logistic");
    assert!(run.metrics.iter().any(|m| m.key == "holdout_accuracy"));
    assert_eq!(run.artifacts, ["cancer", "card.html"]);
    assert_eq!(run.tags["wharf.model_version"], "1");

    // Registered with its metrics; the alias serves it.
    let info = ctx.registry().version_info("cancer", &Selector::Alias("champion".into())).expect("info");
    assert_eq!(info.version, Version(1));
    assert_eq!(info.metrics["accuracy"], outcome.metrics["accuracy"]);
    ctx.model_server().load(ctx.registry().load("cancer", "champion").expect("load")).expect("serve");
    let p = ctx.model_server().predict_proba(&Records::Rows(outcome.model.metadata().sample_input.clone())).expect("p");
    assert_eq!(p.classes, ["benign", "malignant"]);

    // Lineage: START then COMPLETE with the registry output, tied by one run id.
    let events = FileLineage::new(dir.path().join("lineage.jsonl")).read_all().expect("lineage");
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].event_type, wharf::LineageEventType::Start);
    assert_eq!(events[1].event_type, wharf::LineageEventType::Complete);
    assert_eq!(events[0].run_id, events[1].run_id);
    assert_eq!(events[1].outputs, ["registry:cancer/1"]);
    assert_eq!(events[1].metadata["version"], 1);

    // A second job gets version 2.
    let again = job.run(&ctx, |_| {}).expect("again");
    assert_eq!(again.version, Version(2));
}

#[test]
fn a_failing_job_fails_its_run_and_emits_fail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = ctx_in(dir.path());
    // Linear regression on a text target fails after the run started.
    let job = TrainJob::new(datasets::lead_scoring(), Trainer::linear_regression(), "bad");
    assert!(job.run(&ctx, |_| {}).is_err());
    let runs = FileTracker::new(dir.path().join("runs")).list_runs().expect("runs");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Failed, "the guard ended the run as FAILED");
    let events = FileLineage::new(dir.path().join("lineage.jsonl")).read_all().expect("lineage");
    assert_eq!(events.last().map(|e| e.event_type), Some(wharf::LineageEventType::Fail));
    assert!(ctx.registry().list().expect("list").is_empty(), "nothing registered");
}

/// The training data's id columns are remembered on the model (a tag, so the artifact format
/// does not change) and in the tracked parameters, so scoring can carry them through.
#[test]
fn the_id_columns_are_remembered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = ctx_in(dir.path());
    let outcome =
        TrainJob::new(datasets::lead_scoring(), Trainer::logistic_regression(), "lead").run(&ctx, |_| {}).expect("job");
    assert_eq!(wharf::jobs::id_columns(&outcome.model), ["lead_id"]);
    let loaded = ctx.registry().load("lead", "latest").expect("load");
    assert_eq!(wharf::jobs::id_columns(&loaded), ["lead_id"], "the registered artifact remembers them too");
    let run = FileTracker::new(dir.path().join("runs")).get_run(&outcome.run_id).expect("run");
    assert_eq!(run.params["id_columns"], "lead_id");

    // Data without ids leaves no tag.
    let outcome =
        TrainJob::new(datasets::diabetes(), Trainer::linear_regression(), "diabetes").run(&ctx, |_| {}).expect("job");
    assert!(wharf::jobs::id_columns(&outcome.model).is_empty());
    assert!(!outcome.model.metadata().tags.contains_key(wharf::jobs::ID_COLUMNS_TAG));
}

#[test]
fn the_model_card_goes_to_the_run_and_the_registry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = ctx_in(dir.path());
    let job = TrainJob::new(datasets::breast_cancer(), Trainer::gradient_boosting().trees(8), "card");
    let outcome = job.run(&ctx, |_| {}).expect("job");
    let stored = ctx.registry().card("card", &outcome.version).expect("the registry keeps the card");
    let html = String::from_utf8(stored).expect("utf-8");
    // Holdout curves, the booster's gain and its learning curve from the run's history.
    for plot in ["roc", "pr", "calibration", "confusion", "threshold", "permutation-importance", "gain-importance"] {
        assert!(html.contains(&format!("data-plot=\"{plot}\"")), "plot {plot}");
    }
    assert!(html.contains("data-plot=\"learning-curve\""), "the booster logged train_loss per round");
    let info = ctx.registry().version_info("card", &Selector::Version(outcome.version)).expect("info");
    assert!(html.contains(&info.sha256), "the card names the stored artifact's checksum");
    // The same card is the run's artifact.
    let runs = dir.path().join("runs");
    let run = FileTracker::new(&runs).get_run(&outcome.run_id).expect("run");
    assert!(run.artifacts.contains(&"card.html".to_string()), "{:?}", run.artifacts);
    assert_eq!(run.status, RunStatus::Finished);

    // Turned off: no card anywhere.
    let mut quiet = TrainJob::new(datasets::breast_cancer(), Trainer::logistic_regression(), "card");
    quiet.report = false;
    let outcome = quiet.run(&ctx, |_| {}).expect("job");
    assert!(matches!(ctx.registry().card("card", &outcome.version), Err(WharfError::NotFound { .. })));
    let run = FileTracker::new(&runs).get_run(&outcome.run_id).expect("run");
    assert_eq!(run.artifacts, ["card"]);
}
