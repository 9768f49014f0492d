//! Training quality, class orientation, and save/load fidelity for every estimator.

use wharf_core::{Model, Predictions, Records, Task, WharfError};
use wharf_ml::{datasets, evaluate, Algorithm, MaxFeatures, Trainer};

fn holdout(trainer: Trainer, data: wharf_ml::Dataset) -> (Model, wharf_ml::Metrics, wharf_ml::Dataset) {
    let (train, test) = data.split(0.25, 7).expect("split");
    let model = trainer.fit(&train).expect("fit");
    let metrics = evaluate(&model, &test).expect("evaluate");
    (model, metrics, test)
}

#[test]
fn logistic_regression_separates_breast_cancer() {
    let (model, m, _) = holdout(Trainer::logistic_regression(), datasets::breast_cancer());
    assert_eq!(model.classes(), ["benign", "malignant"]);
    assert!(m["accuracy"] >= 0.9, "holdout accuracy {}", m["accuracy"]);
    assert!(m["roc_auc"] >= 0.95, "holdout AUC {}", m["roc_auc"]);
}

#[test]
fn random_forest_separates_breast_cancer() {
    let (_, m, _) = holdout(Trainer::random_forest().trees(50), datasets::breast_cancer());
    assert!(m["accuracy"] >= 0.9, "holdout accuracy {}", m["accuracy"]);
}

#[test]
fn decision_tree_learns_breast_cancer() {
    let (_, m, _) = holdout(Trainer::decision_tree().max_depth(Some(5)), datasets::breast_cancer());
    assert!(m["accuracy"] >= 0.85, "holdout accuracy {}", m["accuracy"]);
}

#[test]
fn linear_regression_explains_diabetes() {
    let (model, m, _) = holdout(Trainer::linear_regression(), datasets::diabetes());
    assert_eq!(model.task(), Task::Regression);
    assert!(m["r2"] > 0.4, "holdout R² {}", m["r2"]);
    assert!(m["rmse"] > 0.0 && m["mae"] > 0.0);
}

#[test]
fn multinomial_logistic_on_iris() {
    let (model, m, _) = holdout(Trainer::logistic_regression(), datasets::iris());
    assert_eq!(model.classes(), ["setosa", "versicolor", "virginica"]);
    assert!(m["accuracy"] >= 0.85, "iris accuracy {}", m["accuracy"]);
}

#[test]
fn kmeans_finds_iris_groups() {
    let model = Trainer::kmeans(3).fit(&datasets::iris()).expect("fit");
    let p = model.predict(&Records::Columns(datasets::iris().features)).expect("predict");
    let Predictions::Clusters(c) = p else { panic!("clusters expected") };
    let mut seen = c.clone();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen, vec![0, 1, 2], "three clusters used");
    assert!(matches!(
        model.predict_proba(&Records::Columns(datasets::iris().features)),
        Err(WharfError::Unsupported(_))
    ));
}

#[test]
fn lead_scoring_trains_with_categoricals() {
    let (model, m, _) = holdout(Trainer::logistic_regression(), datasets::lead_scoring());
    assert!(model.signature().features.iter().any(|f| !f.is_numeric()), "categorical features present");
    assert!(m["accuracy"] > 0.7, "lead accuracy {}", m["accuracy"]);
}

/// The probability columns are labelled: column j is P(classes[j]) whatever linfa calls
/// "positive" internally. Check it against the data: the rows most likely `malignant` must
/// really be malignant.
#[test]
fn binary_probabilities_are_labelled_correctly() {
    let data = datasets::breast_cancer();
    let model = Trainer::logistic_regression().fit(&data).expect("fit");
    let proba = model.predict_proba(&Records::Columns(data.features.clone())).expect("proba");
    let (_, target) = data.target.as_ref().expect("target");
    let mut agree = 0;
    for i in 0..data.n_rows() {
        let p_malignant = proba.get(i, "malignant").expect("column");
        let truth = target.text_at(i) == "malignant";
        if (p_malignant > 0.5) == truth {
            agree += 1;
        }
        assert!((proba.get(i, "benign").expect("column") + p_malignant - 1.0).abs() < 1e-12);
    }
    assert!(agree as f64 / data.n_rows() as f64 > 0.9);
}

#[test]
fn save_load_is_bit_identical_for_every_estimator() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (Algorithm::Logistic, datasets::lead_scoring()),
        (Algorithm::Logistic, datasets::iris()),
        (Algorithm::Linear, datasets::diabetes()),
        (Algorithm::Tree, datasets::breast_cancer()),
        (Algorithm::RandomForest, datasets::lead_scoring()),
        (Algorithm::KMeans, datasets::iris()),
    ];
    for (i, (algorithm, data)) in cases.into_iter().enumerate() {
        let model = Trainer::new(algorithm).trees(20).fit(&data).expect("fit");
        let path = dir.path().join(format!("m{i}.wharf"));
        model.save(&path).expect("save");
        let loaded = Model::load(&path).expect("load");
        assert_eq!(loaded, model, "{algorithm:?}: loaded model equals saved");
        let records = Records::Columns(data.features.clone());
        assert_eq!(loaded.predict(&records).expect("p"), model.predict(&records).expect("p"));
        if model.task() == Task::Classification {
            let a = loaded.predict_proba(&records).expect("p").values;
            let b = model.predict_proba(&records).expect("p").values;
            assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()), "{algorithm:?}: bit-identical");
        }
    }
}

/// Two fits with one seed agree exactly, with three classes too, where tree fitting that
/// sums impurities in hash order used to flip near-tied splits from one fit to the next.
#[test]
fn training_is_deterministic_for_a_seed() {
    for data in [datasets::breast_cancer(), datasets::iris()] {
        let a = Trainer::random_forest().trees(10).seed(3).fit(&data).expect("fit");
        let records = Records::Columns(data.features.clone());
        let expected = a.predict_proba(&records).expect("a").values;
        for _ in 0..3 {
            let b = Trainer::random_forest().trees(10).seed(3).fit(&data).expect("fit");
            assert_eq!(b.predict_proba(&records).expect("b").values, expected, "{}", data.name);
            let tree = Trainer::decision_tree().fit(&data).expect("fit");
            let again = Trainer::decision_tree().fit(&data).expect("fit");
            assert_eq!(
                tree.predict_proba(&records).expect("t").values,
                again.predict_proba(&records).expect("t").values
            );
        }
    }
}

#[test]
fn wrong_targets_are_clear_errors() {
    let data = datasets::lead_scoring();
    // Linear regression on a text target.
    let err = Trainer::linear_regression().fit(&data).expect_err("text target");
    assert!(err.to_string().contains("numeric"), "{err}");
    // A classifier without a target.
    let mut no_target = data.clone();
    no_target.target = None;
    assert!(Trainer::logistic_regression().fit(&no_target).is_err());
}

/// A level that the split puts only in the holdout must not break evaluation: the split
/// carries the whole table's levels into the training part.
#[test]
fn rare_levels_survive_a_split() {
    let mut frame = wharf_core::Frame::new();
    let n = 40;
    let colour: Vec<Option<String>> =
        (0..n).map(|i| Some(if i == 7 { "violet".to_string() } else { ["red", "blue"][i % 2].to_string() })).collect();
    frame.push("colour", wharf_core::Column::Text(colour)).expect("colour");
    frame.push("x", wharf_core::Column::Numeric((0..n).map(|i| i as f64).collect())).expect("x");
    frame.push("y", wharf_core::Column::Text((0..n).map(|i| Some((i % 2).to_string())).collect())).expect("y");
    let data = wharf_ml::Dataset::from_frame(
        "colours",
        frame,
        &wharf_ml::CsvOptions { target: Some("y".into()), ..Default::default() },
    )
    .expect("dataset");
    for seed in 0..10 {
        let (train, test) = data.split(0.25, seed).expect("split");
        let model = Trainer::logistic_regression().fit(&train).expect("fit");
        evaluate(&model, &test).expect("evaluation must not fail on a level unseen in training");
    }
}

/// Trees are fitted on rayon's pool; each draws from its own seeded generator, so the pool's
/// size changes nothing.
#[test]
fn a_forest_does_not_depend_on_the_thread_count() {
    let data = datasets::lead_scoring();
    let records = Records::Columns(data.features.clone());
    let proba = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool");
        let model = pool.install(|| Trainer::random_forest().trees(12).seed(5).fit(&data).expect("fit"));
        model.predict_proba(&records).expect("proba").values
    };
    let one = proba(1);
    let two = proba(2);
    assert!(one.iter().zip(&two).all(|(a, b)| a.to_bits() == b.to_bits()));
}

#[test]
fn max_features_is_recorded_and_checked() {
    let data = datasets::breast_cancer();
    let model = Trainer::random_forest().trees(3).fit(&data).expect("fit");
    assert_eq!(model.metadata().params["max_features"], "sqrt");
    let all = Trainer::random_forest().trees(3).max_features(MaxFeatures::All).fit(&data).expect("fit");
    assert_eq!(all.metadata().params["max_features"], "all");
    let five = Trainer::random_forest().trees(3).max_features(5).fit(&data).expect("fit");
    assert_eq!(five.metadata().params["max_features"], "5");
    let bad = Trainer::random_forest().trees(3).max_features(MaxFeatures::Fraction(1.5)).fit(&data);
    assert!(matches!(bad, Err(WharfError::InvalidInput { ref path, .. }) if path == "max_features"), "{bad:?}");
}
