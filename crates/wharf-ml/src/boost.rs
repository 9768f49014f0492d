//! Training a gradient-boosted model from a [`Dataset`]: the table as the booster reads it
//! (raw numbers with NaN for missing, text columns as category codes), the fit, and the
//! model, a `wharf.tree-ensemble` whose signature names the text levels, so records score
//! with their text values.

use std::collections::BTreeMap;

use chrono::Utc;
use wharf_core::{Column, FeatureKind, Model, ModelMetadata, Predictions, Result, Signature, Task, WharfError};

use crate::estimator::gbdt::{self, Iteration, Loss, RegressionLoss};
use crate::preprocess::Preprocessor;
use crate::train::{encode_classes, library_versions};
use crate::{Dataset, Trainer};

/// Most features listed in each importance tag (`wharf models show` prints tags whole).
const IMPORTANCE_SHOWN: usize = 30;

/// The model, and its predictions on `data`'s rows when the fit already knows them.
pub(crate) fn fit(
    trainer: &Trainer,
    data: &Dataset,
    observed: bool,
    observer: &mut dyn FnMut(&Iteration),
) -> Result<(Model, Option<Predictions>)> {
    let task = trainer.algorithm().task();
    let (features, _) = Preprocessor::fit(&data.features, &data.levels)?;
    // Numeric columns are read in place (no copy: training holds the table, its bins at one
    // byte a cell, and a few vectors of rows); text columns become category codes.
    let mut codes: Vec<Vec<f64>> = Vec::new();
    let mut categorical = Vec::with_capacity(features.len());
    for feature in &features {
        let column = data
            .features
            .column(&feature.name)
            .ok_or_else(|| WharfError::invalid(&feature.name, "no such feature column"))?;
        match (&feature.kind, column) {
            (FeatureKind::Categorical { levels }, Column::Text(values)) => {
                codes.push(
                    values
                        .iter()
                        .map(|v| match v {
                            Some(v) => levels.binary_search(v).map(|i| i as f64).unwrap_or(f64::NAN),
                            None => f64::NAN,
                        })
                        .collect(),
                );
                categorical.push(true);
            }
            (_, Column::Numeric(_)) => categorical.push(false),
            (_, Column::Text(_)) => {
                return Err(WharfError::invalid(&feature.name, "a text column must be a categorical feature"))
            }
        }
    }
    let mut next_code = codes.iter();
    let mut x: Vec<&[f64]> = Vec::with_capacity(features.len());
    for (feature, is_categorical) in features.iter().zip(&categorical) {
        match (is_categorical, data.features.column(&feature.name)) {
            (false, Some(Column::Numeric(values))) => x.push(values),
            _ => x.push(next_code.next().map(Vec::as_slice).unwrap_or(&[])),
        }
    }
    let names: Vec<String> = features.iter().map(|f| f.name.clone()).collect();
    let (target_name, column) = data.target.as_ref().ok_or_else(|| {
        WharfError::invalid(&data.name, format!("{} needs a target column", trainer.algorithm().as_str()))
    })?;
    let mut signature = Signature { features, target: Some(target_name.clone()), task, classes: Vec::new() };
    let params = trainer.boost_params();
    let (y, loss) = match task {
        Task::Classification => {
            let (classes, y) = encode_classes(target_name, column)?;
            if classes.len() < 2 {
                return Err(WharfError::invalid(
                    target_name,
                    format!(
                        "a classifier needs at least two distinct classes; every row is '{}'",
                        classes.first().map(String::as_str).unwrap_or("")
                    ),
                ));
            }
            if params.loss != RegressionLoss::SquaredError {
                return Err(WharfError::invalid(
                    "loss",
                    format!("{} is a regression loss; a classifier minimises its log-loss", params.loss),
                ));
            }
            let loss = if classes.len() == 2 { Loss::Binary } else { Loss::Softmax(classes.len()) };
            signature.classes = classes;
            (y.into_iter().map(|c| c as f64).collect::<Vec<f64>>(), loss)
        }
        _ => {
            let y = match column {
                Column::Numeric(v) => v.clone(),
                Column::Text(_) => return Err(WharfError::invalid(target_name, "a regression target must be numeric")),
            };
            if let Some(i) = y.iter().position(|v| !v.is_finite()) {
                return Err(WharfError::invalid(format!("{target_name}[{i}]"), "target value is missing"));
            }
            let loss = match params.loss {
                RegressionLoss::SquaredError => Loss::Squared,
                RegressionLoss::AbsoluteError => Loss::Absolute,
                RegressionLoss::Huber => Loss::Huber(params.huber_delta),
            };
            (y, loss)
        }
    };
    let fitted = gbdt::fit(
        &gbdt::Data { x: &x, names: &names, categorical: &categorical, y: &y, loss },
        &params,
        observed,
        observer,
    )?;
    let ensemble = wharf_trees::Ensemble::new(fitted.spec)
        .map_err(|e| WharfError::Training(format!("the boosted trees do not compile: {e}")))?;
    // The margins the booster ended with are the compiled ensemble's on the training rows, bit
    // for bit: the training profile then needs no second pass of every tree over every row
    // (a quarter of a fit on the peers' table).
    let predictions =
        fitted.margins.map(|m| wharf_trees::model::predictions_from_margins(&signature, &ensemble, m)).transpose()?;

    let mut model_params = trainer.params();
    model_params.insert("rounds".into(), fitted.rounds.to_string());
    let mut tags = BTreeMap::new();
    tags.insert("feature_importance_gain".into(), importance(&names, &fitted.gain, |g| format!("{g:.4}")));
    tags.insert(
        "feature_importance_splits".into(),
        importance(&names, &fitted.splits.iter().map(|s| *s as f64).collect::<Vec<_>>(), |s| format!("{s}")),
    );
    let mut metrics = BTreeMap::new();
    if let Some(last) = fitted.history.get(fitted.rounds.saturating_sub(1)) {
        metrics.insert(format!("train_{}", loss.name()), last.train_loss);
        if let Some(v) = last.valid_loss {
            metrics.insert(format!("validation_{}", loss.name()), v);
        }
    }
    let mut versions = library_versions();
    versions.insert("wharf-trees".into(), env!("CARGO_PKG_VERSION").into());
    let metadata = ModelMetadata {
        signature,
        algorithm: trainer.algorithm().as_str().into(),
        params: model_params,
        metrics,
        tags,
        created_at: Utc::now(),
        data_fingerprint: data.fingerprint(),
        data_source: data.name.clone(),
        library_versions: versions,
        sample_input: (0..data.n_rows().min(3)).map(|i| data.features.row(i)).collect(),
    };
    let categorical_features = categorical.iter().enumerate().filter(|(_, c)| **c).map(|(i, _)| i).collect();
    let model = wharf_trees::model::trained(metadata, ensemble, loss.name(), categorical_features)
        .map_err(|e| WharfError::Training(format!("fitted model is inconsistent: {e}")))?;
    Ok((model, predictions))
}

/// `name=value` for the features with a non-zero value, largest first (ties by name), at
/// most [`IMPORTANCE_SHOWN`] of them.
fn importance(names: &[String], values: &[f64], show: impl Fn(f64) -> String) -> String {
    let mut order: Vec<usize> = (0..names.len()).filter(|i| values[*i] > 0.0).collect();
    order.sort_by(|a, b| values[*b].total_cmp(&values[*a]).then(names[*a].cmp(&names[*b])));
    let shown: Vec<String> =
        order.iter().take(IMPORTANCE_SHOWN).map(|i| format!("{}={}", names[*i], show(values[*i]))).collect();
    if shown.is_empty() {
        "none (no split)".into()
    } else {
        shown.join(", ")
    }
}
