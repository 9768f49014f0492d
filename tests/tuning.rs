//! Tuning and the promotion gate end to end on the defaults: child runs, the leaderboard
//! artifact, the registered winner, and an alias that moves only on measured improvement.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use wharf::prelude::*;
use wharf::promote::{promote, Gate};
use wharf::select::{Folds, ParamSpace, Search, SearchOptions};
use wharf::tune::TuneJob;
use wharf::{FileLineage, FileTracker, RunStatus};

fn ctx_in(dir: &std::path::Path) -> Wharf {
    let mut config = WharfConfig::default();
    config.registry.dir = dir.join("registry");
    config.tracking.dir = dir.join("runs");
    config.lineage.path = dir.join("lineage.jsonl");
    Wharf::from_config(config).expect("build")
}

fn shuffled_labels(data: &Dataset, seed: u64) -> Dataset {
    let mut out = data.clone();
    let (name, column) = data.target.clone().unwrap();
    let mut order: Vec<usize> = (0..column.len()).collect();
    order.shuffle(&mut rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed));
    out.target = Some((name, column.take(&order)));
    out
}

#[test]
fn tune_tracks_every_trial_as_a_child_run_and_registers_the_refit_winner() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx_in(dir.path());
    let space = ParamSpace::from_toml("l2 = [0.01, 1.0, 10000.0]").unwrap();
    let job = TuneJob {
        data: datasets::breast_cancer(),
        trainer: Trainer::logistic_regression(),
        space,
        options: SearchOptions {
            strategy: Search::Grid,
            folds: Folds::stratified(3),
            metric: "roc_auc".into(),
            seed: 1,
        },
        name: "cancer".into(),
        holdout: 0.25,
        seed: 42,
        aliases: vec![],
        promote: None,
    };
    let heard = std::sync::atomic::AtomicUsize::new(0);
    let outcome = job
        .run(&ctx, &|_| {
            heard.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        })
        .unwrap();
    assert_eq!(heard.into_inner(), 3);
    assert_eq!(outcome.version, Version(1));
    assert_eq!(outcome.rows, (427, 142));
    assert_eq!(outcome.model.metadata().params["l2"], outcome.report.best().params["l2"], "the winner is refit");
    assert_eq!(outcome.model.metadata().data_fingerprint.len(), 64);
    assert_eq!(wharf::jobs::id_columns(&outcome.model), ["id"], "registered like a trained model, ids remembered");
    assert!(outcome.holdout["roc_auc"] > 0.9 && outcome.default_holdout["roc_auc"] > 0.9);

    let tracker = FileTracker::new(dir.path().join("runs"));
    let parent = tracker.get_run(&outcome.run_id).unwrap();
    assert_eq!(parent.status, RunStatus::Finished);
    assert!(
        parent.artifacts.contains(&"leaderboard.json".to_string()) && parent.artifacts.contains(&"cancer".to_string())
    );
    assert_eq!(parent.params["best.l2"], outcome.report.best().params["l2"]);
    let board: Vec<serde_json::Value> = serde_json::from_slice(
        &std::fs::read(dir.path().join("runs").join(&outcome.run_id).join("artifacts/leaderboard.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(board.len(), 3);
    assert_eq!(board[0]["rank"], 1);
    assert_eq!(board[0]["params"]["l2"], outcome.report.best().params["l2"].as_str());
    let means: Vec<f64> = board.iter().map(|e| e["mean"].as_f64().unwrap()).collect();
    assert!(means.windows(2).all(|w| w[0] >= w[1]), "{means:?}");

    let children: Vec<_> = tracker
        .list_runs()
        .unwrap()
        .into_iter()
        .filter(|r| r.tags.get(wharf::ports::tracker::PARENT_RUN_TAG) == Some(&outcome.run_id))
        .collect();
    assert_eq!(children.len(), 3, "one child run per trial");
    let mut l2s: Vec<&str> = children.iter().map(|c| c.params["l2"].as_str()).collect();
    l2s.sort();
    assert_eq!(l2s, ["0.01", "1", "10000"]);
    for child in &children {
        assert_eq!(child.status, RunStatus::Finished);
        let folds = child.metrics.iter().filter(|m| m.key == "cv_roc_auc").count();
        assert_eq!(folds, 3, "one point per fold");
        assert!(child.metrics.iter().any(|m| m.key == "cv_mean_roc_auc"));
        assert!(child.metrics.iter().any(|m| m.key == "cv_std_roc_auc"));
    }
    let events = FileLineage::new(dir.path().join("lineage.jsonl")).read_all().unwrap();
    assert!(events.iter().any(|e| e.name == "tune-cancer" && e.outputs == ["registry:cancer/1"]));
}

#[test]
fn a_failed_trial_is_a_failed_child_run() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx_in(dir.path());
    let job = TuneJob {
        data: datasets::breast_cancer(),
        trainer: Trainer::logistic_regression(),
        space: ParamSpace::from_toml("l2 = [-1.0, 1.0]").unwrap(),
        options: SearchOptions {
            strategy: Search::Grid,
            folds: Folds::stratified(3),
            metric: "roc_auc".into(),
            seed: 1,
        },
        name: "cancer".into(),
        holdout: 0.0,
        seed: 42,
        aliases: vec![],
        promote: None,
    };
    let outcome = job.run(&ctx, &|_| {}).unwrap();
    assert_eq!(outcome.report.best().params["l2"], "1");
    let failed: Vec<_> = FileTracker::new(dir.path().join("runs"))
        .list_runs()
        .unwrap()
        .into_iter()
        .filter(|r| r.status == RunStatus::Failed)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].params["l2"], "-1");
    assert!(!failed[0].tags["error"].is_empty(), "the failed run says why");
}

struct Setup {
    _dir: tempfile::TempDir,
    ctx: Wharf,
    train: Dataset,
    test: Dataset,
    runs: std::path::PathBuf,
    lineage: std::path::PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx_in(dir.path());
    let (train, test) = datasets::breast_cancer().split(0.3, 7).unwrap();
    let runs = dir.path().join("runs");
    let lineage = dir.path().join("lineage.jsonl");
    Setup { _dir: dir, ctx, train, test, runs, lineage }
}

fn champion_of(s: &Setup) -> Version {
    s.ctx.registry().version_info("cancer", &Selector::Alias("champion".into())).unwrap().version
}

#[test]
fn a_model_trained_on_shuffled_labels_is_refused() {
    let s = setup();
    let good = Trainer::logistic_regression().fit(&s.train).unwrap();
    let v1 = s.ctx.registry().register(&good, "cancer").unwrap();
    s.ctx.registry().set_alias("cancer", "champion", &v1).unwrap();
    let noise = Trainer::logistic_regression().fit(&shuffled_labels(&s.train, 3)).unwrap();
    let v2 = s.ctx.registry().register(&noise, "cancer").unwrap();

    let gate = Gate { metric: Some("roc_auc".into()), ..Gate::default() };
    let d = promote(&s.ctx, "cancer", &Selector::Version(v2), &s.test, &gate).unwrap();
    assert!(!d.promoted, "{}", d.reason);
    let c = d.comparison.as_ref().unwrap();
    assert!(c.improvement < 0.0 && c.high < 0.0, "noise is clearly worse: {c:?}");
    assert_eq!(c.rows, s.test.n_rows());
    assert_eq!(champion_of(&s), v1, "the alias did not move");
    assert!(d.reason.contains("is not above the margin 0"), "{}", d.reason);

    // Recorded: a run with the evidence, and a lineage event.
    let run = FileTracker::new(&s.runs).get_run(&d.run_id).unwrap();
    assert_eq!(run.tags["wharf.decision"], "refused");
    assert_eq!(run.params["candidate_version"], "2");
    assert_eq!(run.params["champion_version"], "1");
    assert!(run.metrics.iter().any(|m| m.key == "ci_low" && m.value == c.low));
    assert!(run.artifacts.contains(&"decision.json".to_string()));
    let events = FileLineage::new(&s.lineage).read_all().unwrap();
    let event = events.iter().find(|e| e.name == "promote-cancer").unwrap();
    assert_eq!(event.metadata["decision"], "refused");
    assert!(event.outputs.is_empty());
}

#[test]
fn the_same_model_twice_is_refused() {
    let s = setup();
    let model = Trainer::logistic_regression().fit(&s.train).unwrap();
    let v1 = s.ctx.registry().register(&model, "cancer").unwrap();
    s.ctx.registry().set_alias("cancer", "champion", &v1).unwrap();
    let v2 = s.ctx.registry().register(&model, "cancer").unwrap();
    let d = promote(&s.ctx, "cancer", &Selector::Version(v2), &s.test, &Gate::default()).unwrap();
    assert!(!d.promoted, "a tie never promotes: {}", d.reason);
    let c = d.comparison.unwrap();
    assert_eq!((c.improvement, c.low, c.high), (0.0, 0.0, 0.0));
    assert_eq!(c.metric, "roc_auc", "the default for two classes");
    assert_eq!(champion_of(&s), v1);
}

#[test]
fn a_genuinely_better_model_is_promoted_and_the_decision_is_deterministic() {
    let s = setup();
    let stump = Trainer::decision_tree().max_depth(Some(1)).fit(&s.train).unwrap();
    let v1 = s.ctx.registry().register(&stump, "cancer").unwrap();
    s.ctx.registry().set_alias("cancer", "champion", &v1).unwrap();
    let better = Trainer::logistic_regression().fit(&s.train).unwrap();
    let v2 = s.ctx.registry().register(&better, "cancer").unwrap();

    // An unreachable margin refuses, and leaves the alias alone.
    let strict = Gate { margin: 0.5, ..Gate::default() };
    let refused = promote(&s.ctx, "cancer", &Selector::Version(v2), &s.test, &strict).unwrap();
    assert!(!refused.promoted);
    assert_eq!(champion_of(&s), v1);

    let d = promote(&s.ctx, "cancer", &Selector::Version(v2), &s.test, &Gate::default()).unwrap();
    let c = d.comparison.clone().unwrap();
    assert!(d.promoted, "{}", d.reason);
    assert!(c.low > 0.0 && c.candidate > c.champion, "{c:?}");
    assert_eq!(c, refused.comparison.unwrap(), "the same seed gives the same interval");
    assert_eq!(champion_of(&s), v2, "the alias moved");
    let run = FileTracker::new(&s.runs).get_run(&d.run_id).unwrap();
    assert_eq!(run.tags["wharf.decision"], "promoted");
    let events = FileLineage::new(&s.lineage).read_all().unwrap();
    assert!(events
        .iter()
        .any(|e| e.metadata.get("decision") == Some(&"promoted".into()) && e.outputs == ["registry:cancer@champion"]));

    // A loss is compared the right way round: lower log loss is better.
    let by_loss = Gate { metric: Some("log_loss".into()), over: "stump".into(), ..Gate::default() };
    s.ctx.registry().set_alias("cancer", "stump", &v1).unwrap();
    let d = promote(&s.ctx, "cancer", &Selector::Version(v2), &s.test, &by_loss).unwrap();
    let c = d.comparison.unwrap();
    assert!(c.candidate < c.champion && c.improvement > 0.0 && d.promoted, "{c:?}");
}

#[test]
fn train_with_promote_if_better_gates_the_alias() {
    let s = setup();
    let whole = datasets::breast_cancer();
    let mut first = TrainJob::new(whole.clone(), Trainer::logistic_regression(), "cancer");
    first.promote = Some(Gate::default());
    let out = first.run(&s.ctx, |_| {}).unwrap();
    let d = out.decision.unwrap();
    assert!(d.promoted && d.champion.is_none(), "nothing to beat: {}", d.reason);
    assert_eq!(champion_of(&s), Version(1));

    let mut noisy = TrainJob::new(shuffled_labels(&whole, 5), Trainer::logistic_regression(), "cancer");
    noisy.promote = Some(Gate::default());
    let out = noisy.run(&s.ctx, |_| {}).unwrap();
    assert_eq!(out.version, Version(2));
    assert!(!out.decision.unwrap().promoted);
    assert_eq!(champion_of(&s), Version(1), "a worse model is registered but not promoted");

    let mut no_holdout = TrainJob::new(whole, Trainer::logistic_regression(), "cancer");
    no_holdout.holdout = 0.0;
    no_holdout.promote = Some(Gate::default());
    let err = no_holdout.run(&s.ctx, |_| {}).unwrap_err();
    assert!(err.to_string().contains("needs held-out rows"), "{err}");
}

#[test]
fn a_tuning_job_that_fails_emits_fail_and_fails_its_run() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx_in(dir.path());
    let job = TuneJob {
        data: datasets::breast_cancer(),
        trainer: Trainer::logistic_regression(),
        space: ParamSpace::from_toml("l2 = [0.1, 1.0]").unwrap(),
        options: SearchOptions { strategy: Search::Grid, folds: Folds::stratified(3), metric: "auc".into(), seed: 1 },
        name: "cancer".into(),
        holdout: 0.2,
        seed: 42,
        aliases: vec![],
        promote: None,
    };
    let err = job.run(&ctx, &|_| {}).unwrap_err();
    assert!(err.to_string().contains("unknown metric 'auc'"), "{err}");
    let events = FileLineage::new(dir.path().join("lineage.jsonl")).read_all().unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.event_type).collect();
    assert_eq!(kinds, [wharf::LineageEventType::Start, wharf::LineageEventType::Fail]);
    assert_eq!(events[0].run_id, events[1].run_id);
    let runs = FileTracker::new(dir.path().join("runs")).list_runs().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Failed, "the parent run is not left RUNNING");
    assert!(ctx.registry().list().unwrap().is_empty(), "nothing registered");
}

/// A tracker written before `log_artifact` existed: the port's default answers Unsupported.
struct NoFiles(FileTracker);

impl wharf::TrackerPort for NoFiles {
    fn name(&self) -> &str {
        "no-files"
    }
    fn begin_run(&self, name: Option<&str>) -> wharf::Result<wharf::RunInfo> {
        self.0.begin_run(name)
    }
    fn log_params(&self, id: &str, p: &std::collections::BTreeMap<String, String>) -> wharf::Result<()> {
        self.0.log_params(id, p)
    }
    fn log_metrics(
        &self,
        id: &str,
        m: &std::collections::BTreeMap<String, f64>,
        step: Option<u64>,
    ) -> wharf::Result<()> {
        self.0.log_metrics(id, m, step)
    }
    fn set_tags(&self, id: &str, t: &std::collections::BTreeMap<String, String>) -> wharf::Result<()> {
        self.0.set_tags(id, t)
    }
    fn log_model(&self, id: &str, model: &Model, artifact: &str) -> wharf::Result<()> {
        self.0.log_model(id, model, artifact)
    }
    fn end_run(&self, id: &str, status: RunStatus) -> wharf::Result<()> {
        self.0.end_run(id, status)
    }
}

#[test]
fn a_tracker_that_stores_no_files_still_records_the_decision() {
    let s = setup();
    let mut config = WharfConfig::default();
    config.registry.dir = s.runs.parent().unwrap().join("registry");
    config.lineage.path = s.lineage.clone();
    let ctx = Wharf::builder().tracker(NoFiles(FileTracker::new(&s.runs))).build(config).unwrap();
    let v1 = ctx.registry().register(&Trainer::logistic_regression().fit(&s.train).unwrap(), "cancer").unwrap();
    let d = promote(&ctx, "cancer", &Selector::Version(v1), &s.test, &Gate::default()).unwrap();
    assert!(d.promoted, "nothing to beat");
    let run = FileTracker::new(&s.runs).get_run(&d.run_id).unwrap();
    assert_eq!(run.tags["wharf.artifact_unsupported"], "decision.json");
    assert_eq!(run.tags["wharf.decision"], "promoted");
    assert_eq!(run.status, RunStatus::Finished);
}
