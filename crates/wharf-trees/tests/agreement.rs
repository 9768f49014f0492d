//! Agreement with the real libraries: models trained by XGBoost and LightGBM at test time
//! (`tests/fixtures/generate.py`), imported here, and compared with the libraries' own
//! predictions on 12,000 rows each (with NaNs, exact zeros, ties on split points and
//! categorical codes).
//!
//! The data directory comes from `WHARF_TEST_TREES_DATA` (`cargo xtask test` generates it);
//! without it the test says `skipped:`, and fails under `WHARF_TEST_REQUIRE_BACKENDS=1`.
//!
//! What must hold: margins bit for bit (both libraries sum in a fixed order and precision
//! that the evaluator reproduces); predictions bit for bit or within 1e-6 relative (the
//! links call the platform's `exp`, as the libraries do).

use std::path::Path;

use wharf_trees::{lightgbm, xgboost, ImportedModel, Task};

mod common;
use common::{data_dir, read_f64, Case};

/// Differences between ours and theirs: (values not bit-identical, largest relative error).
fn compare(ours: &[f64], theirs: &[f64]) -> (usize, f64) {
    assert_eq!(ours.len(), theirs.len());
    let mut differ = 0;
    let mut worst = 0.0f64;
    for (a, b) in ours.iter().zip(theirs) {
        if a.to_bits() != b.to_bits() {
            differ += 1;
            let rel = (a - b).abs() / a.abs().max(b.abs()).max(1e-30);
            worst = worst.max(if (a - b).abs() < 1e-15 { 0.0 } else { rel });
        }
    }
    (differ, worst)
}

fn import(dir: &Path, case: &Case) -> ImportedModel {
    let path = dir.join(&case.model);
    let model = match case.format.as_str() {
        "xgboost" => xgboost::read(&path),
        "lightgbm" => lightgbm::read(&path),
        other => panic!("unknown format {other}"),
    };
    model.unwrap_or_else(|e| panic!("{}: {e}", case.name))
}

#[test]
fn imported_models_agree_with_the_libraries() {
    let Some(dir) = data_dir() else { return };
    let manifest = common::manifest(&dir);
    eprintln!("libraries: {}", manifest.versions);
    assert!(manifest.cases.len() >= 20, "expected the full set of cases");
    let mut failures = Vec::new();
    for case in &manifest.cases {
        let model = import(&dir, case);
        let x = read_f64(&dir.join(format!("{}.x.f64", case.data)));
        assert_eq!(x.len(), case.rows * case.width, "{}", case.name);
        assert!(case.rows >= 10_000);
        let mut want_margin = read_f64(&dir.join(format!("{}.margin.f64", case.name)));
        let want_pred = read_f64(&dir.join(format!("{}.pred.f64", case.name)));
        let groups = model.ensemble.n_groups();
        if model.ensemble.averages() {
            // LightGBM's raw score in random-forest mode is the sum; ours is the average the
            // link sees, which LightGBM computes as that sum divided by the iterations.
            let iterations = (model.ensemble.n_trees() / groups) as f64;
            want_margin.iter_mut().for_each(|m| *m /= iterations);
        }
        assert_eq!(groups, case.margin_width, "{}: output groups", case.name);
        assert_eq!(model.n_features(), case.width, "{}", case.name);
        assert_eq!(model.feature_names.len(), case.width);

        let mut margin = vec![0.0; case.rows * groups];
        model.ensemble.predict_raw(&x, case.width, &mut margin).expect("predict_raw");
        let mut pred = margin.clone();
        model.ensemble.apply_link(&mut pred);

        let (margin_differ, margin_worst) = compare(&margin, &want_margin);
        let (pred_differ, pred_worst) = if model.predicts_class_index {
            // multi:softmax predicts the class index: compare the arg-max of our probabilities.
            let classes: Vec<f64> = pred
                .chunks_exact(groups)
                .map(|p| p.iter().enumerate().fold(0, |best, (i, v)| if *v > p[best] { i } else { best }) as f64)
                .collect();
            assert_eq!(case.pred_width, 1);
            compare(&classes, &want_pred)
        } else {
            assert_eq!(case.pred_width, groups, "{}", case.name);
            compare(&pred, &want_pred)
        };
        eprintln!(
            "{:<24} {:<17} {:<8} trees={:<5} margins: {} of {} differ (max rel {:.1e}); predictions: {} differ (max rel {:.1e})",
            case.name,
            case.objective,
            model.ensemble.compiled_kind(),
            model.ensemble.n_trees(),
            margin_differ,
            margin.len(),
            margin_worst,
            pred_differ,
            pred_worst,
        );
        if margin_differ > 0 {
            failures
                .push(format!("{}: {margin_differ} margins not bit-identical (max rel {margin_worst:e})", case.name));
        }
        if pred_worst > 1e-6 || (model.predicts_class_index && pred_differ > 0) {
            failures.push(format!("{}: predictions off by {pred_worst:e} relative", case.name));
        }

        // A batch that is not a whole number of interleaved groups gives the same margins.
        let mut head = vec![0.0; 13 * groups];
        model.ensemble.predict_raw(&x[..13 * case.width], case.width, &mut head).expect("13 rows");
        assert_eq!(head, margin[..13 * groups], "{}: 13-row batch", case.name);

        // The single-row path gives the batch path's answers.
        let mut one = vec![0.0; groups];
        for r in (0..case.rows).step_by(97) {
            model.ensemble.predict_row(&x[r * case.width..(r + 1) * case.width], &mut one).expect("predict_row");
            assert_eq!(one, pred[r * groups..(r + 1) * groups], "{} row {r}: single row vs batch", case.name);
        }
        let classification = case.objective.starts_with("binary") || case.objective.starts_with("multi");
        assert_eq!(model.task == Task::Classification, classification, "{}: task", case.name);
    }
    assert!(failures.is_empty(), "disagreements:\n{}", failures.join("\n"));
}
