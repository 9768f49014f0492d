//! Hyper-parameter search: grid, random and halving, failed trials, and the errors raised
//! before any trial trains.

use std::sync::atomic::{AtomicUsize, Ordering};

use wharf_ml::select::{search, Domain, Folds, Outcome, ParamSpace, Search, SearchOptions};
use wharf_ml::{datasets, Trainer};

fn list(values: &[&str]) -> Domain {
    Domain::Values(values.iter().map(|s| s.to_string()).collect())
}

fn options(strategy: Search, metric: &str) -> SearchOptions {
    SearchOptions { strategy, folds: Folds::stratified(3).seed(5), metric: metric.into(), seed: 9 }
}

#[test]
fn grid_tries_every_combination_and_ranks_them() {
    let data = datasets::breast_cancer();
    let mut space = ParamSpace::new();
    space.insert("l2", list(&["0.01", "1", "1000"]));
    let heard = AtomicUsize::new(0);
    let report = search(&Trainer::logistic_regression(), &data, &space, &options(Search::Grid, "roc_auc"), &|_| {
        heard.fetch_add(1, Ordering::Relaxed);
    })
    .unwrap();
    assert_eq!(report.trials.len(), 3);
    assert_eq!(heard.load(Ordering::Relaxed), 3, "every trial is reported as it ends");
    let scores: Vec<f64> = report.trials.iter().map(|t| t.score().unwrap()).collect();
    let top = scores.iter().cloned().fold(f64::MIN, f64::max);
    assert_eq!(report.best().score(), Some(top));
    let board: Vec<f64> = report.leaderboard().iter().map(|t| t.score().unwrap()).collect();
    assert!(board.windows(2).all(|w| w[0] >= w[1]), "leaderboard best first: {board:?}");
    // A crushing penalty must lose to a mild one.
    assert_ne!(report.best().params["l2"], "1000");
}

#[test]
fn a_loss_is_minimised() {
    let data = datasets::breast_cancer();
    let mut space = ParamSpace::new();
    space.insert("l2", list(&["0.1", "1000"]));
    let report =
        search(&Trainer::logistic_regression(), &data, &space, &options(Search::Grid, "log_loss"), &|_| {}).unwrap();
    let worst = report.trials.iter().map(|t| t.score().unwrap()).fold(f64::MIN, f64::max);
    assert!(report.best().score().unwrap() < worst, "the smallest log loss wins");
}

#[test]
fn random_search_is_deterministic_under_a_seed() {
    let data = datasets::iris();
    let mut space = ParamSpace::new();
    space.insert("max_depth", Domain::Int { low: 1, high: 6 });
    space.insert("min_samples_leaf", Domain::Int { low: 1, high: 10 });
    let opts = options(Search::Random { trials: 4 }, "accuracy");
    let a = search(&Trainer::decision_tree(), &data, &space, &opts, &|_| {}).unwrap();
    let b = search(&Trainer::decision_tree(), &data, &space, &opts, &|_| {}).unwrap();
    assert_eq!(a.trials.len(), 4);
    assert_eq!(a, b, "same seed, same candidates and scores");
    let other = SearchOptions { seed: 10, ..opts };
    let c = search(&Trainer::decision_tree(), &data, &space, &other, &|_| {}).unwrap();
    assert_ne!(
        a.trials.iter().map(|t| &t.params).collect::<Vec<_>>(),
        c.trials.iter().map(|t| &t.params).collect::<Vec<_>>()
    );
}

#[test]
fn halving_measures_fewer_candidates_on_more_rows_each_round() {
    let data = datasets::lead_scoring();
    let mut space = ParamSpace::new();
    space.insert("l2", Domain::Float { low: 0.001, high: 1000.0, log: true });
    let opts = SearchOptions {
        folds: Folds::stratified(3).seed(5),
        ..options(Search::Halving { trials: 9, factor: 3 }, "roc_auc")
    };
    let report = search(&Trainer::logistic_regression(), &data, &space, &opts, &|_| {}).unwrap();
    let rounds: Vec<(usize, usize, usize)> = (0..=2)
        .map(|r| {
            let t: Vec<_> = report.trials.iter().filter(|t| t.round == r).collect();
            (r, t.len(), t.first().map(|t| t.rows).unwrap_or(0))
        })
        .collect();
    assert_eq!(rounds.iter().map(|r| r.1).collect::<Vec<_>>(), [9, 3, 1], "{rounds:?}");
    assert!(rounds[0].2 < rounds[1].2 && rounds[1].2 < rounds[2].2, "growing subsets: {rounds:?}");
    assert_eq!(rounds[2].2, data.n_rows(), "the last round uses every row");
    assert_eq!(report.best().round, 2);
    // The survivors of round 0 are its best three.
    let mut r0: Vec<_> = report.trials.iter().filter(|t| t.round == 0).collect();
    r0.sort_by(|a, b| b.score().unwrap().total_cmp(&a.score().unwrap()));
    let top3: Vec<_> = r0[..3].iter().map(|t| &t.params).collect();
    assert!(report.trials.iter().filter(|t| t.round == 1).all(|t| top3.contains(&&t.params)));
}

#[test]
fn a_failed_trial_is_recorded_and_the_search_goes_on() {
    let data = datasets::breast_cancer();
    let mut space = ParamSpace::new();
    // linfa refuses a negative penalty when fitting: a real failure inside one trial.
    space.insert("l2", list(&["-1", "1"]));
    let report =
        search(&Trainer::logistic_regression(), &data, &space, &options(Search::Grid, "roc_auc"), &|_| {}).unwrap();
    let failed: Vec<_> = report.trials.iter().filter(|t| matches!(t.outcome, Outcome::Failed { .. })).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].params["l2"], "-1");
    assert_eq!(report.best().params["l2"], "1");
    assert_eq!(report.leaderboard().last().unwrap().params["l2"], "-1", "failed trials rank last");
}

#[test]
fn bad_searches_fail_before_any_training() {
    let data = datasets::breast_cancer();
    let trainer = Trainer::logistic_regression();
    let heard = AtomicUsize::new(0);
    let run = |space: &ParamSpace, opts: &SearchOptions| {
        search(&trainer, &data, space, opts, &|_| {
            heard.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap_err()
        .to_string()
    };
    let grid = options(Search::Grid, "roc_auc");
    let err = run(&ParamSpace::new(), &grid);
    assert!(err.contains("the space is empty") && err.contains("l2"), "{err}");
    let mut one = ParamSpace::new();
    one.insert("l2", list(&["1"]));
    assert!(run(&one, &grid).contains("single candidate"));
    let mut none = ParamSpace::new();
    none.insert("l2", list(&[]));
    assert!(run(&none, &grid).contains("no candidate values"));
    let mut wrong = ParamSpace::new();
    wrong.insert("n_trees", list(&["10", "20"]));
    let err = run(&wrong, &grid);
    assert!(err.contains("params.n_trees") && err.contains("not a parameter of logistic"), "{err}");
    let mut range = ParamSpace::new();
    range.insert("l2", Domain::Float { low: 0.1, high: 10.0, log: false });
    assert!(run(&range, &grid).contains("needs a list of values"));
    let mut ok = ParamSpace::new();
    ok.insert("l2", list(&["0.1", "1"]));
    assert!(run(&ok, &options(Search::Grid, "auc")).contains("unknown metric 'auc'"));
    let tiny = SearchOptions { folds: Folds::kfold(1000), ..grid.clone() };
    assert!(run(&ok, &tiny).contains("fewer than the 1000 folds"));
    assert_eq!(heard.load(Ordering::Relaxed), 0, "no trial ran");
}

#[test]
fn spaces_read_from_toml_and_the_declared_spaces_are_searchable() {
    let space = ParamSpace::from_toml(
        "max_depth = [4, 8, \"none\"]\nmin_samples_leaf = { low = 1, high = 20 }\nmax_features = [\"sqrt\", 0.5]\n",
    )
    .unwrap();
    assert_eq!(space.params()["max_depth"], list(&["4", "8", "none"]));
    assert_eq!(space.params()["min_samples_leaf"], Domain::Int { low: 1, high: 20 });
    assert_eq!(space.params()["max_features"], list(&["sqrt", "0.5"]));
    space.check(&Trainer::random_forest()).unwrap();
    let log = ParamSpace::from_toml("l2 = { low = 0.001, high = 10, log = true }").unwrap();
    assert_eq!(log.params()["l2"], Domain::Float { low: 0.001, high: 10.0, log: true });
    for bad in ["l2 = 3", "l2 = { low = 1 }", "l2 = { low = 1, high = 2, step = 1 }", "l2 = ["] {
        assert!(ParamSpace::from_toml(bad).is_err(), "{bad}");
    }
    for trainer in [Trainer::logistic_regression(), Trainer::random_forest(), Trainer::decision_tree()] {
        trainer.param_space().check(&trainer).unwrap();
        assert!(trainer.param_space().grid().unwrap().len() > 1);
    }
    assert!(Trainer::linear_regression().param_space().check(&Trainer::linear_regression()).is_err());
}
