//! Cross-validation: folds, determinism, per-fold metrics, and the errors raised before any
//! training.

use std::collections::{BTreeMap, BTreeSet};

use wharf_core::{Column, Task, WharfError};
use wharf_ml::select::{cross_validate, Folds, Metric};
use wharf_ml::{datasets, evaluate, CsvOptions, Dataset, Trainer};

fn partition_ok(n: usize, splits: &[wharf_ml::select::Split]) {
    let mut tested = vec![0usize; n];
    for s in splits {
        let train: BTreeSet<_> = s.train.iter().collect();
        assert!(s.test.iter().all(|i| !train.contains(i)), "a row is never in both parts of a fold");
        assert_eq!(s.train.len() + s.test.len(), n, "every row is in one part of each fold");
        s.test.iter().for_each(|&i| tested[i] += 1);
    }
    assert!(tested.iter().all(|&c| c == 1), "every row is tested exactly once");
}

#[test]
fn kfold_tests_every_row_once_and_is_deterministic_under_a_seed() {
    let data = datasets::iris();
    let splits = Folds::kfold(4).seed(3).split(&data).unwrap();
    partition_ok(150, &splits);
    let sizes: Vec<usize> = splits.iter().map(|s| s.test.len()).collect();
    assert_eq!(sizes, [38, 38, 37, 37]);
    assert_eq!(splits, Folds::kfold(4).seed(3).split(&data).unwrap(), "same seed, same folds");
    assert_ne!(splits, Folds::kfold(4).seed(4).split(&data).unwrap(), "another seed, other folds");
}

#[test]
fn stratified_folds_keep_the_class_proportions() {
    let data = datasets::iris();
    let (_, species) = data.target.as_ref().unwrap();
    let splits = Folds::stratified(5).split(&data).unwrap();
    partition_ok(150, &splits);
    for s in &splits {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        s.test.iter().for_each(|&i| *counts.entry(species.text_at(i)).or_default() += 1);
        assert_eq!(counts.values().copied().collect::<Vec<_>>(), [10, 10, 10], "50 of each class over 5 folds");
    }
}

#[test]
fn group_folds_never_split_a_group() {
    let mut data = datasets::lead_scoring();
    // Group by the lead's source channel (a feature): every channel is wholly in one test part.
    let column = data.features.columns().iter().find(|(_, c)| matches!(c, Column::Text(_))).unwrap().0.clone();
    let values: Vec<String> = {
        let c = data.features.column(&column).unwrap();
        (0..c.len()).map(|i| c.text_at(i)).collect()
    };
    let groups: BTreeSet<&String> = values.iter().collect();
    let k = groups.len().min(3);
    let splits = Folds::group(k, column.as_str()).split(&data).unwrap();
    partition_ok(data.n_rows(), &splits);
    for s in &splits {
        let train: BTreeSet<&String> = s.train.iter().map(|&i| &values[i]).collect();
        assert!(s.test.iter().all(|&i| !train.contains(&values[i])), "group straddles a fold");
    }
    let err = Folds::group(groups.len() + 1, column.as_str()).split(&data).unwrap_err();
    assert!(err.to_string().contains("distinct groups"), "{err}");
    data.ids = wharf_core::Frame::new();
    assert!(Folds::group(2, "nope").split(&data).unwrap_err().to_string().contains("no group column 'nope'"));
}

#[test]
fn cross_validate_reports_each_fold_and_their_mean_and_std() {
    let data = datasets::breast_cancer();
    let trainer = Trainer::logistic_regression();
    let folds = Folds::stratified(5).seed(11);
    let report = cross_validate(&trainer, &data, &folds).unwrap();
    assert_eq!(report.folds.len(), 5);
    // Fold 2 by hand: the same rows, the same trainer, the same number.
    let split = &folds.split(&data).unwrap()[2];
    let take = |rows: &[usize]| Dataset {
        name: "x".into(),
        features: data.features.take(rows),
        target: data.target.as_ref().map(|(n, c)| (n.clone(), c.take(rows))),
        ids: data.ids.take(rows),
        levels: Default::default(),
    };
    let by_hand = evaluate(&trainer.fit(&take(&split.train)).unwrap(), &take(&split.test)).unwrap();
    assert!((report.folds[2]["roc_auc"] - by_hand["roc_auc"]).abs() < 1e-12);
    let aucs: Vec<f64> = report.folds.iter().map(|m| m["roc_auc"]).collect();
    let mean = aucs.iter().sum::<f64>() / 5.0;
    let std = (aucs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / 5.0).sqrt();
    assert!((report.mean["roc_auc"] - mean).abs() < 1e-12);
    assert!((report.std["roc_auc"] - std).abs() < 1e-12);
    assert!(report.mean["roc_auc"] > 0.95, "logistic separates breast cancer well: {}", report.mean["roc_auc"]);
    assert_eq!(report, cross_validate(&trainer, &data, &folds).unwrap(), "deterministic under a seed");
}

#[test]
fn too_few_rows_is_an_error_before_training() {
    let csv = "x,y\n1,a\n2,b\n3,a\n";
    let data = Dataset::from_csv_reader(
        csv.as_bytes(),
        "tiny",
        &CsvOptions { target: Some("y".into()), ..Default::default() },
    )
    .unwrap();
    let err = cross_validate(&Trainer::logistic_regression(), &data, &Folds::kfold(5)).unwrap_err();
    assert!(matches!(err, WharfError::InvalidInput { .. }));
    assert!(err.to_string().contains("3 rows, fewer than the 5 folds"), "{err}");
}

#[test]
fn a_class_absent_from_a_training_part_is_an_error_before_training() {
    // One row of class `c`: the fold that tests it has no `c` to train on.
    let mut csv = String::from("x,y\n");
    for i in 0..20 {
        csv.push_str(&format!("{i},{}\n", if i % 2 == 0 { "a" } else { "b" }));
    }
    csv.push_str("99,c\n");
    let data = Dataset::from_csv_reader(
        csv.as_bytes(),
        "rare",
        &CsvOptions { target: Some("y".into()), ..Default::default() },
    )
    .unwrap();
    let err = cross_validate(&Trainer::logistic_regression(), &data, &Folds::stratified(3)).unwrap_err();
    assert!(err.to_string().contains("class 'c' (1 rows) is absent from the training part of fold"), "{err}");
}

#[test]
fn unknown_metrics_are_named() {
    let err = Metric::parse("auc_roc", Task::Classification, 2).unwrap_err();
    assert!(err.to_string().contains("unknown metric 'auc_roc'") && err.to_string().contains("roc_auc"), "{err}");
    let err = Metric::parse("roc_auc", Task::Classification, 3).unwrap_err();
    assert!(err.to_string().contains("needs two classes"), "{err}");
    assert!(Metric::parse("rmse", Task::Classification, 2).is_err());
    assert!(!Metric::parse("log_loss", Task::Classification, 2).unwrap().greater_is_better());
    assert!(Metric::parse("r2", Task::Regression, 0).unwrap().greater_is_better());
}
