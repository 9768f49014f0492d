//! The one scoring path: `Records → signature check → ModelServerPort → Scored`.
//!
//! Every job that turns records into predictions (HTTP serving, file scoring, streams, the
//! multi-model runner, pipelines, SQL functions) does its own I/O and then calls [`score`].
//! The decisions that used to be written once per job live here and nowhere else:
//!
//! - a classifier is scored in **one pass** of `predict_proba`, and its prediction is the
//!   most probable class ([`Probabilities::argmax`]), so a label never disagrees with the
//!   probabilities printed beside it, whichever server computed them;
//! - a batch with a bad row is handled by **one [`OnError`] policy**: fail on the first row
//!   the model refuses, or set the refused rows aside as [`Reject`]s and score the rest;
//! - probability columns are named by **one rule**, [`prob_column`].
//!
//! The server is whatever the container's model-server factory made (in process, or a proxy
//! to a remote service), so moving every job to another backend is a configuration change.
//! Records are checked against the model's signature on this side before any remote call:
//! a proxy server's [`Model::validate`] runs locally.

use crate::ports::model_server::ModelServerPort;
use crate::{Model, Predictions, Probabilities, Records, Result, Task, WharfError};

/// What to do with a record the model refuses (an unknown category, a missing field, text
/// in a numeric column).
///
/// The default is [`Fail`](Self::Fail) for every job: silently dropping rows is a choice a
/// user makes, not one a framework makes for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnError {
    /// Stop at the first refused record; the error names its row and field.
    #[default]
    Fail,
    /// Set refused records aside as [`Reject`]s, with their reason, and score the rest.
    Skip,
}

impl std::str::FromStr for OnError {
    type Err = WharfError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "fail" => Ok(OnError::Fail),
            "skip" => Ok(OnError::Skip),
            other => Err(WharfError::invalid("on_error", format!("'{other}' is not a policy (skip, fail)"))),
        }
    }
}

impl std::fmt::Display for OnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OnError::Fail => "fail",
            OnError::Skip => "skip",
        })
    }
}

/// A record the model refused, with why.
#[derive(Debug)]
pub struct Reject {
    /// The record's index in the scored batch.
    pub index: usize,
    /// The field the model complained about, when it named one.
    pub column: Option<String>,
    /// The model's reason.
    pub error: WharfError,
}

impl Reject {
    /// The reason without the field path (the path is in [`column`](Self::column) and the
    /// record's position is the caller's to word).
    pub fn message(&self) -> String {
        match &self.error {
            WharfError::SchemaMismatch { message, .. } | WharfError::InvalidInput { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
}

/// The outcome of scoring a batch: one prediction (and, for classifiers, one row of
/// probabilities) per kept record, plus the records set aside.
#[derive(Debug)]
pub struct Scored {
    /// Predictions of the kept records, in order.
    pub predictions: Predictions,
    /// Class probabilities of the kept records (classifiers whose server has them).
    pub probabilities: Option<Probabilities>,
    /// Indices (into the input batch) of the records that were scored, ascending. Every
    /// record when nothing was rejected.
    pub kept: Vec<usize>,
    /// Records set aside under [`OnError::Skip`], ascending by index.
    pub rejects: Vec<Reject>,
}

impl Scored {
    /// Number of scored records.
    pub fn len(&self) -> usize {
        self.kept.len()
    }

    /// True when no record was scored.
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    /// The output columns besides the caller's own (ids, provenance): `prediction`, then one
    /// [`prob_column`] per class when there are probabilities.
    pub fn columns(&self) -> Vec<String> {
        output_columns(self.probabilities.as_ref().map(|p| p.classes.as_slice()).unwrap_or(&[]))
    }

    /// Record `i`'s prediction (the `i`-th kept record) as JSON.
    pub fn prediction_json(&self, i: usize) -> serde_json::Value {
        self.predictions.to_json(i)
    }

    /// Record `i`'s probabilities as `(class, p)` pairs in class order, if any.
    pub fn probabilities_of(&self, i: usize) -> Option<impl Iterator<Item = (&str, f64)> + '_> {
        let p = self.probabilities.as_ref()?;
        let row = p.values.row(i);
        Some(p.classes.iter().map(String::as_str).zip(row.into_iter().copied()))
    }
}

/// The name of the output column holding `P(class)`. The one place it is formatted.
pub fn prob_column(class: &str) -> String {
    format!("prob_{class}")
}

/// `prediction`, then one [`prob_column`] per class (none for a model without
/// probabilities).
pub fn output_columns(classes: &[String]) -> Vec<String> {
    std::iter::once("prediction".to_string()).chain(classes.iter().map(|c| prob_column(c))).collect()
}

/// True when scoring `model` on `server` yields probabilities beside the predictions.
pub fn has_probabilities(server: &dyn ModelServerPort, model: &Model) -> bool {
    model.task() == Task::Classification && server.capabilities().predict_proba
}

/// Empty predictions of the kind `model` makes, for a batch with nothing to score.
pub fn no_predictions(model: &Model) -> Predictions {
    match model.task() {
        Task::Classification => Predictions::Classes { classes: model.classes().to_vec(), indices: Vec::new() },
        Task::Regression => Predictions::Values(Vec::new()),
        _ => Predictions::Clusters(Vec::new()),
    }
}

/// Scores `records` through `server`: the one way a record becomes a prediction.
///
/// Classifiers are scored in one `predict_proba` pass and predicted as their most probable
/// class; other models through `predict`. Under [`OnError::Fail`] the first refused record
/// is the error (its path names the row and field). Under [`OnError::Skip`] a failed batch
/// is checked record by record against the signature (locally, so a remote server gets no
/// extra calls), the refused records become [`Reject`]s and the rest are scored again.
/// A failure no record explains (no model loaded, a backend down) is an error under both.
pub fn score(server: &dyn ModelServerPort, records: &Records, on_error: OnError) -> Result<Scored> {
    let model = server.model().ok_or(WharfError::NoModelLoaded)?;
    let all: Vec<usize> = (0..records.len()).collect();
    if records.is_empty() {
        return Ok(Scored {
            predictions: no_predictions(&model),
            probabilities: has_probabilities(server, &model).then(|| Probabilities {
                classes: model.classes().to_vec(),
                values: ndarray::Array2::zeros((0, model.classes().len())),
            }),
            kept: all,
            rejects: Vec::new(),
        });
    }
    let first = match pass(server, &model, records) {
        Ok((predictions, probabilities)) => {
            return Ok(Scored { predictions, probabilities, kept: all, rejects: Vec::new() })
        }
        Err(first) => first,
    };
    if on_error == OnError::Fail || locate(&first).is_none() {
        return Err(first);
    }
    let mut rejects = Vec::new();
    let mut kept = Vec::with_capacity(records.len());
    for i in 0..records.len() {
        match model.validate(&records.take(&[i])) {
            Ok(()) => kept.push(i),
            Err(error) => {
                let column = locate(&error).and_then(|(_, column)| column);
                rejects.push(Reject { index: i, column, error });
            }
        }
    }
    if rejects.is_empty() {
        // Every record passes the signature alone, so the failure is about the batch, not a
        // record (or the server disagrees with the signature): nothing can be set aside.
        return Err(first);
    }
    let (predictions, probabilities) =
        if kept.is_empty() { (no_predictions(&model), None) } else { pass(server, &model, &records.take(&kept))? };
    Ok(Scored { predictions, probabilities, kept, rejects })
}

/// One pass of the server: predictions, plus probabilities for classifiers that have them.
fn pass(
    server: &dyn ModelServerPort,
    model: &Model,
    records: &Records,
) -> Result<(Predictions, Option<Probabilities>)> {
    if has_probabilities(server, model) {
        let proba = server.predict_proba(records)?;
        if proba.values.nrows() != records.len() || proba.classes.len() != proba.values.ncols() {
            return Err(WharfError::backend(
                server.name(),
                format!(
                    "answered {} rows of {} probabilities for {} records",
                    proba.values.nrows(),
                    proba.values.ncols(),
                    records.len()
                ),
                None,
            ));
        }
        let indices = proba.argmax();
        Ok((Predictions::Classes { classes: proba.classes.clone(), indices }, Some(proba)))
    } else {
        let predictions = server.predict(records)?;
        if predictions.len() != records.len() {
            return Err(WharfError::backend(
                server.name(),
                format!("answered {} predictions for {} records", predictions.len(), records.len()),
                None,
            ));
        }
        Ok((predictions, None))
    }
}

/// The record index and field named by a model error's path, for every shape records come
/// in: `records[3].pages_viewed` (rows), `records[3][2]` (matrix), `columns.industry[7]`
/// (columns). `None` for an error about no record in particular.
pub fn locate(err: &WharfError) -> Option<(usize, Option<String>)> {
    let path = match err {
        WharfError::SchemaMismatch { path, .. } | WharfError::InvalidInput { path, .. } => path.as_str(),
        _ => return None,
    };
    if let Some(rest) = path.strip_prefix("columns.") {
        let (column, index) = rest.strip_suffix(']')?.rsplit_once('[')?;
        return Some((index.parse().ok()?, Some(column.to_string())));
    }
    let rest = path.strip_prefix("records[")?;
    let (index, tail) = rest.split_once(']')?;
    let index = index.parse().ok()?;
    let column = tail.strip_prefix('.').map(str::to_string);
    Some((index, column))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_of_every_shape_are_located() {
        let at = |p: &str| locate(&WharfError::invalid(p, "x"));
        assert_eq!(at("columns.industry[7]"), Some((7, Some("industry".into()))));
        assert_eq!(at("records[3].pages_viewed"), Some((3, Some("pages_viewed".into()))));
        assert_eq!(at("records[4][2]"), Some((4, None)));
        assert_eq!(at("columns.industry"), None);
        assert_eq!(locate(&WharfError::Unsupported("x".into())), None);
    }

    #[test]
    fn policies_parse_and_print() {
        assert_eq!("skip".parse::<OnError>().ok(), Some(OnError::Skip));
        assert_eq!(OnError::default(), OnError::Fail);
        assert!("ignore".parse::<OnError>().is_err());
        assert_eq!(OnError::Skip.to_string(), "skip");
    }

    #[test]
    fn columns_follow_one_rule() {
        assert_eq!(output_columns(&["no".into(), "yes".into()]), ["prediction", "prob_no", "prob_yes"]);
        assert_eq!(output_columns(&[]), ["prediction"]);
    }
}
