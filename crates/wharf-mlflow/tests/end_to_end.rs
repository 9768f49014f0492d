//! The same training code switched to MLflow by configuration alone, and the failure policy.

mod common;

use wharf::prelude::*;
use wharf::{RunStatus, WharfConfig};

/// A configuration that sends tracking and the registry to MLflow at `uri`.
fn mlflow_config(uri: &str, dir: &std::path::Path) -> WharfConfig {
    let toml = format!(
        r#"
        [tracking]
        backend = "mlflow"
        [tracking.mlflow]
        uri = "{uri}"
        experiment = "{}"
        spool_dir = "{}"
        [registry]
        backend = "mlflow"
        [lineage]
        path = "{}"
        "#,
        common::unique("wharf-e2e"),
        dir.join("spool").display(),
        dir.join("lineage.jsonl").display(),
    );
    WharfConfig::from_toml_str(&toml).expect("config")
}

fn tracking(config: &WharfConfig) -> wharf_mlflow::MlflowConfig {
    wharf_mlflow::MlflowConfig::tracking(config).expect("tracking.mlflow")
}

#[test]
fn train_job_tracks_and_registers_in_mlflow_then_serves_the_version() {
    let Some(uri) = common::mlflow_uri() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ctx = Wharf::from_config(mlflow_config(&uri, dir.path())).expect("context");
    assert_eq!(ctx.tracker().name(), "mlflow");
    assert_eq!(ctx.registry().name(), "mlflow");
    let name = common::unique("wharf-e2e-cancer");
    let mut job = TrainJob::new(datasets::breast_cancer(), Trainer::logistic_regression(), name.clone());
    job.aliases = vec!["champion".into()];
    let outcome = job.run(&ctx, |_| {}).expect("job");
    assert_eq!(outcome.version, Version(1));

    let run = ctx.tracker().get_run(&outcome.run_id).expect("run");
    assert_eq!(run.status, RunStatus::Finished);
    assert_eq!(run.params["algorithm"], "logistic");
    assert!(run.metrics.iter().any(|m| m.key == "holdout_accuracy"));
    // The model and its card (MLflow lists artifacts in its own order).
    let mut artifacts = run.artifacts.clone();
    artifacts.sort();
    let mut expected = vec![name.clone(), "card.html".to_string()];
    expected.sort();
    assert_eq!(artifacts, expected);
    assert_eq!(run.tags["wharf.model_version"], "1");
    // The registry keeps the same card beside the version's model files.
    let card = String::from_utf8(ctx.registry().card(&name, &outcome.version).expect("card")).expect("utf-8");
    assert!(card.contains("data-plot=\"roc\""), "the card holds the holdout's ROC curve");
    assert!(!run.tags.contains_key("wharf.card_not_stored"), "{:?}", run.tags);

    let loaded = ctx.registry().load(&name, "champion").expect("load");
    ctx.model_server().load(loaded).expect("serve");
    let records = Records::Rows(outcome.model.metadata().sample_input.clone());
    let served = ctx.model_server().predict_proba(&records).expect("predict");
    assert_eq!(served.values, outcome.model.predict_proba(&records).unwrap().values, "bit-identical predictions");
    assert!(!ctx.container().report().to_string().is_empty());
}

#[test]
fn an_unreachable_server_spools_the_run_and_sync_sends_it_later() {
    let Some(uri) = common::mlflow_uri() else { return };
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut config = mlflow_config(&format!("http://127.0.0.1:{port}"), dir.path());
    config.registry.backend = "file".into();
    config.registry.dir = dir.path().join("registry");
    let ctx = Wharf::from_config(config.clone()).expect("context");
    let name = common::unique("wharf-spooled");
    let job = TrainJob::new(datasets::iris(), Trainer::decision_tree(), name.clone());
    let outcome = job.run(&ctx, |_| {}).expect("the job succeeds although MLflow is down");

    let spooled = wharf_mlflow::spool::spooled_runs(&tracking(&config).spool_dir).unwrap();
    assert_eq!(spooled.len(), 1);
    assert_eq!(spooled[0].info.id, outcome.run_id);
    assert_eq!(spooled[0].status, RunStatus::Finished);
    assert_eq!(spooled[0].artifacts, [name.as_str(), "card.html"]);

    // strict = true turns the same outage into an error.
    let mut strict = config.clone();
    let mut strict_table = tracking(&strict);
    strict_table.strict = true;
    strict.set_adapter(wharf_mlflow::config::TRACKING_KEY, &strict_table).unwrap();
    let strict_ctx = Wharf::from_config(strict).unwrap();
    assert!(matches!(strict_ctx.tracker().begin_run(Some("x")), Err(WharfError::Backend { .. })));

    // Sync to the real server and read the run back there.
    let mut live = tracking(&config);
    live.uri = Some(uri.clone());
    let report = wharf_mlflow::replay_config(&live).expect("replay");
    assert_eq!(report.replayed.len(), 1, "{report:?}");
    assert!(report.failed.is_empty());
    let mlflow_id = &report.replayed[0].1;
    let got = common::raw_get(&uri, "runs/get", &[("run_id", mlflow_id)]);
    assert_eq!(got["run"]["info"]["status"], "FINISHED");
    assert_eq!(got["run"]["info"]["run_name"], format!("train-{name}"));
    let params = got["run"]["data"]["params"].as_array().unwrap();
    assert!(params.iter().any(|p| p["key"] == "algorithm" && p["value"] == "tree"), "{got}");
    let root = got["run"]["info"]["artifact_uri"].as_str().unwrap();
    let bytes = common::raw_artifact(&uri, root, &format!("{name}/model.wharf"));
    assert_eq!(wharf::artifact::decode(&bytes).unwrap(), outcome.model);
    assert!(wharf_mlflow::spool::spooled_runs(&tracking(&config).spool_dir).unwrap().is_empty());

    // Replaying again finds nothing left to send.
    assert!(wharf_mlflow::replay_config(&live).unwrap().replayed.is_empty());
}

#[test]
fn tune_job_nests_its_trials_and_stores_the_leaderboard_in_mlflow() {
    use wharf::select::{Folds, ParamSpace, Search, SearchOptions};
    use wharf::tune::TuneJob;

    let Some(uri) = common::mlflow_uri() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ctx = Wharf::from_config(mlflow_config(&uri, dir.path())).expect("context");
    let name = common::unique("wharf-e2e-tune");
    let job = TuneJob {
        data: datasets::breast_cancer(),
        trainer: Trainer::logistic_regression(),
        space: ParamSpace::from_toml("l2 = [0.1, 10.0]").unwrap(),
        options: SearchOptions {
            strategy: Search::Grid,
            folds: Folds::stratified(3),
            metric: "roc_auc".into(),
            seed: 1,
        },
        name: name.clone(),
        holdout: 0.2,
        seed: 42,
        aliases: vec![],
        promote: None,
    };
    let outcome = job.run(&ctx, &|_| {}).expect("tune");
    assert_eq!(outcome.version, Version(1));

    let parent = ctx.tracker().get_run(&outcome.run_id).expect("parent run");
    assert_eq!(parent.status, RunStatus::Finished);
    assert!(parent.artifacts.contains(&"leaderboard.json".to_string()), "{:?}", parent.artifacts);
    let raw = common::raw_get(&uri, "runs/get", &[("run_id", &outcome.run_id)]);
    let root = raw["run"]["info"]["artifact_uri"].as_str().unwrap().to_string();
    let board: serde_json::Value =
        serde_json::from_slice(&common::raw_artifact(&uri, &root, "leaderboard.json")).unwrap();
    assert_eq!(board.as_array().unwrap().len(), 2);
    assert_eq!(board[0]["params"]["l2"], outcome.report.best().params["l2"].as_str());

    let experiment = raw["run"]["info"]["experiment_id"].as_str().unwrap().to_string();
    let filter = format!("tags.`mlflow.parentRunId` = '{}'", outcome.run_id);
    let children = common::client(&uri).search_runs(&[experiment.as_str()], &filter).expect("search");
    assert_eq!(children.len(), 2, "one nested child run per trial");
    for child in &children {
        assert_eq!(child.info.status, "FINISHED");
        assert!(child.data.params.iter().any(|p| p.key == "l2"));
        assert!(child.data.metrics.iter().any(|m| m.key == "cv_mean_roc_auc"));
    }
}
