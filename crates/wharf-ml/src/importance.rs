//! Permutation feature importance: how much a model's held-out score drops when one
//! feature's values are shuffled across rows, breaking its link to the target while keeping
//! its distribution. It works for every model kind (it only predicts), which native
//! importances (a booster's gain) do not.
//!
//! Defined as scikit-learn's `permutation_importance` with the estimator's default score:
//! accuracy for classifiers, R² for regressors; importance = baseline − shuffled score, its
//! mean and (population) standard deviation over the repeats.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use wharf_core::{Column, Frame, Model, Predictions, Records, Result, Task, WharfError};

use crate::metrics::{accuracy, class_indices, r2};
use crate::Dataset;

/// One feature's permutation importance.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureImportance {
    /// The feature's name.
    pub feature: String,
    /// Mean drop of the score over the repeats.
    pub mean: f64,
    /// Standard deviation of the drop over the repeats.
    pub std: f64,
    /// The drop of each repeat.
    pub drops: Vec<f64>,
}

/// What [`permutation_importance`] measured.
#[derive(Debug, Clone, PartialEq)]
pub struct PermutationImportance {
    /// The score whose drop is measured (`accuracy` or `r2`).
    pub scoring: &'static str,
    /// The score on the rows as given.
    pub baseline: f64,
    /// One entry per model feature, in the signature's order.
    pub features: Vec<FeatureImportance>,
}

enum Truth {
    Classes(Vec<u32>),
    Values(Vec<f64>),
}

/// The permutation importance of each of `model`'s features on the labelled `data`, shuffling
/// each feature `repeats` times with a generator seeded by `seed` (so a report is
/// reproducible). `data` must hold every feature of the model's signature and a target.
pub fn permutation_importance(
    model: &Model,
    data: &Dataset,
    repeats: usize,
    seed: u64,
) -> Result<PermutationImportance> {
    let (name, column) =
        data.target.as_ref().ok_or_else(|| WharfError::invalid(&data.name, "permutation importance needs a target"))?;
    let (truth, scoring) = match model.task() {
        Task::Classification => (Truth::Classes(class_indices(model.classes(), name, column)?), "accuracy"),
        Task::Regression => match column {
            Column::Numeric(v) => (Truth::Values(v.clone()), "r2"),
            Column::Text(_) => return Err(WharfError::invalid(name.as_str(), "target must be numeric")),
        },
        other => return Err(WharfError::Unsupported(format!("permutation importance of a {other} model"))),
    };
    for feature in model.signature().feature_names() {
        if data.features.column(feature).is_none() {
            return Err(WharfError::invalid(feature, format!("{} has no column '{feature}'", data.name)));
        }
    }
    let baseline = score(model, &data.features, &truth)?;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let rows = data.features.n_rows();
    let mut features = Vec::new();
    for feature in model.signature().feature_names() {
        let mut drops = Vec::with_capacity(repeats);
        for _ in 0..repeats.max(1) {
            let mut order: Vec<usize> = (0..rows).collect();
            order.shuffle(&mut rng);
            let shuffled = Frame::from_columns(
                data.features
                    .columns()
                    .iter()
                    .map(|(n, c)| (n.clone(), if n == feature { c.take(&order) } else { c.clone() }))
                    .collect(),
            )?;
            drops.push(baseline - score(model, &shuffled, &truth)?);
        }
        let mean = drops.iter().sum::<f64>() / drops.len() as f64;
        let std = (drops.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / drops.len() as f64).sqrt();
        features.push(FeatureImportance { feature: feature.to_string(), mean, std, drops });
    }
    Ok(PermutationImportance { scoring, baseline, features })
}

fn score(model: &Model, frame: &Frame, truth: &Truth) -> Result<f64> {
    let records = Records::Columns(frame.clone());
    match truth {
        Truth::Classes(t) => Ok(accuracy(t, &model.predict_proba(&records)?.argmax())),
        Truth::Values(t) => match model.predict(&records)? {
            Predictions::Values(p) => Ok(r2(t, &p)),
            _ => Err(WharfError::Unsupported("R² of a model that predicts no values".into())),
        },
    }
}
