//! Cross-validation: fit on each fold's training part, score its test part.
//!
//! Every fold's model is a whole [`Trainer::fit`] on the training rows alone, so the
//! preprocessing (imputation means, scales) is learnt from those rows and the test rows never
//! influence what they are scored with. Only categorical *levels* are shared (a level that
//! happens to fall in one test part must still be encodable); they carry no statistic.

use std::collections::BTreeSet;

use rayon::prelude::*;
use serde::Serialize;
use wharf_core::{Model, Result, Task, WharfError};

use super::folds::{Folds, Split};
use crate::{evaluate, Dataset, Metrics, Trainer};

/// The outcome of a cross-validation: each fold's metrics, and their mean and standard
/// deviation (population, as scikit-learn's `cv_results_`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CvReport {
    /// One entry per fold, in fold order.
    pub folds: Vec<Metrics>,
    /// The mean of each metric over the folds.
    pub mean: Metrics,
    /// The standard deviation of each metric over the folds.
    pub std: Metrics,
}

/// Cross-validates `trainer` on `data` with `folds`. The folds are checked before anything
/// is trained: fewer rows than folds, or a class absent from a fold's training part, is an
/// [`InvalidInput`](WharfError::InvalidInput) error.
pub fn cross_validate(trainer: &Trainer, data: &Dataset, folds: &Folds) -> Result<CvReport> {
    let splits = plan(trainer, data, folds)?;
    let fitted = fit_folds(trainer, data, &splits)?;
    Ok(summarise(fitted.into_iter().map(|(_, m)| m).collect()))
}

/// The folds of `data`, checked for `trainer`: what [`cross_validate`] trains on.
pub fn plan(trainer: &Trainer, data: &Dataset, folds: &Folds) -> Result<Vec<Split>> {
    let splits = folds.split(data)?;
    if trainer.algorithm().task() == Task::Classification {
        let (name, column) = data
            .target
            .as_ref()
            .ok_or_else(|| WharfError::invalid(&data.name, "a classifier needs a target column"))?;
        let labels: Vec<String> = (0..column.len()).map(|i| column.text_at(i)).collect();
        let all: BTreeSet<&str> = labels.iter().map(String::as_str).collect();
        for (f, split) in splits.iter().enumerate() {
            let seen: BTreeSet<&str> = split.train.iter().map(|&i| labels[i].as_str()).collect();
            if let Some(absent) = all.iter().find(|c| !seen.contains(*c)) {
                let count = labels.iter().filter(|l| l == absent).count();
                return Err(WharfError::invalid(
                    name.as_str(),
                    format!(
                        "class '{absent}' ({count} rows) is absent from the training part of fold {}; \
                         use fewer folds or stratified folds",
                        f + 1
                    ),
                ));
            }
        }
    }
    Ok(splits)
}

/// Fits one model per split (in parallel) and scores it on the split's test part.
pub(crate) fn fit_folds(trainer: &Trainer, data: &Dataset, splits: &[Split]) -> Result<Vec<(Model, Metrics)>> {
    splits
        .par_iter()
        .map(|split| {
            let train = data.take(&split.train, "train");
            let test = data.take(&split.test, "test");
            let model = trainer.fit(&train)?;
            let metrics = evaluate(&model, &test)?;
            Ok((model, metrics))
        })
        .collect()
}

/// Mean and population standard deviation of each metric over `folds`.
pub(crate) fn summarise(folds: Vec<Metrics>) -> CvReport {
    let mut mean = Metrics::new();
    let mut std = Metrics::new();
    let keys: BTreeSet<&String> = folds.iter().flat_map(|m| m.keys()).collect();
    for key in keys {
        let values: Vec<f64> = folds.iter().map(|m| m.get(key).copied().unwrap_or(f64::NAN)).collect();
        let n = values.len() as f64;
        let mu = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / n;
        mean.insert(key.clone(), mu);
        std.insert(key.clone(), var.sqrt());
    }
    CvReport { folds, mean, std }
}
