//! A trained Wharf [`Model`] as a [`Scorer`].

use std::sync::Arc;

use serde_json::{Map, Value};
use wharf_core::{Model, Records, Row, Task, WharfError};

use crate::spec::{BoxError, Scorer};

/// Scores with a Wharf [`Model`], a whole batch at once.
///
/// Each input is cut down to the model's features (a field the model does not take is
/// ignored, an absent one is passed as `null`, which the model imputes), so a record can
/// carry more than one model needs. The result is `{"prediction": …}`, plus
/// `"prob_<class>"` per class for a classifier — the columns `wharf predict` writes. If the
/// batch fails (a value the model refuses), each input is scored alone so only the records
/// at fault get the error.
#[derive(Debug, Clone)]
pub struct ModelScorer {
    model: Arc<Model>,
}

impl ModelScorer {
    /// Wraps `model`.
    pub fn new(model: Model) -> Self {
        ModelScorer { model: Arc::new(model) }
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    fn project(&self, input: &Row) -> Row {
        self.model
            .signature()
            .feature_names()
            .map(|name| (name.to_string(), input.get(name).cloned().unwrap_or(Value::Null)))
            .collect()
    }

    fn score_rows(&self, rows: Vec<Row>) -> wharf_core::Result<Vec<Value>> {
        let n = rows.len();
        let records = Records::Rows(rows);
        if self.model.task() == Task::Classification {
            let proba = self.model.predict_proba(&records)?;
            let best = proba.argmax();
            Ok((0..n)
                .map(|i| {
                    let mut out = Map::new();
                    let label = best.get(i).and_then(|&j| proba.classes.get(j as usize)).cloned();
                    out.insert("prediction".into(), label.map(Value::String).unwrap_or(Value::Null));
                    for (j, class) in proba.classes.iter().enumerate() {
                        let p = proba.values.get((i, j)).copied().and_then(serde_json::Number::from_f64);
                        out.insert(format!("prob_{class}"), p.map(Value::Number).unwrap_or(Value::Null));
                    }
                    Value::Object(out)
                })
                .collect())
        } else {
            let predictions = self.model.predict(&records)?;
            Ok((0..n)
                .map(|i| {
                    let mut out = Map::new();
                    out.insert("prediction".into(), predictions.to_json(i));
                    Value::Object(out)
                })
                .collect())
        }
    }
}

/// The model's error for a batch of one, its `records[0].` prefix (which means nothing to
/// the reader of a stored result) turned into the field's name.
fn one_record_error(e: WharfError) -> BoxError {
    match e {
        WharfError::SchemaMismatch { path, message } | WharfError::InvalidInput { path, message } => {
            let field = path.strip_prefix("records[0].").unwrap_or(&path);
            format!("field '{field}': {message}").into()
        }
        other => Box::new(other),
    }
}

impl Scorer for ModelScorer {
    fn score_batch(&self, inputs: &[&Row]) -> Vec<Result<Value, BoxError>> {
        let rows: Vec<Row> = inputs.iter().map(|r| self.project(r)).collect();
        match self.score_rows(rows.clone()) {
            Ok(values) if values.len() == inputs.len() => values.into_iter().map(Ok).collect(),
            Ok(values) => {
                let message = format!("the model returned {} results for {} inputs", values.len(), inputs.len());
                inputs.iter().map(|_| Err(message.clone().into())).collect()
            }
            Err(e) if rows.len() == 1 => vec![Err(one_record_error(e))],
            Err(_) => rows
                .into_iter()
                .map(|row| {
                    self.score_rows(vec![row])
                        .map_err(one_record_error)
                        .and_then(|mut v| v.pop().ok_or_else(|| "the model returned no result".into()))
                })
                .collect(),
        }
    }

    fn describe(&self) -> String {
        format!("wharf model ({}, {})", self.model.metadata().algorithm, self.model.task())
    }
}
