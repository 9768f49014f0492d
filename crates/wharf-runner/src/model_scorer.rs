//! A trained Wharf [`Model`] on a model server, as a [`Scorer`].

use std::sync::Arc;

use serde_json::{Map, Value};
use wharf_core::{Model, ModelServerPort, ModelServers, OnError, Records, Row, WharfError};

use crate::scorer::{BoxError, Scorer};

/// Scores with a Wharf [`Model`] on a [`ModelServerPort`], a whole batch at once, through
/// [`wharf_core::score`] (the scoring path every Wharf job shares).
///
/// Each input is cut down to the model's features (a field the model does not take is
/// ignored, an absent one is passed as `null`, which the model imputes), so a record can
/// carry more than one model needs. The result is `{"prediction": …}`, plus one
/// [`prob_column`](wharf_core::scoring::prob_column) per class for a classifier — the columns
/// `wharf score` writes. A record the model refuses (a value outside its signature) gets the
/// error and the others are scored; the check happens in this process, so a remote server
/// sees only the good records.
#[derive(Clone)]
pub struct ModelScorer {
    server: Arc<dyn ModelServerPort>,
    model: Arc<Model>,
}

impl std::fmt::Debug for ModelScorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelScorer").field("server", &self.server.name()).finish_non_exhaustive()
    }
}

impl ModelScorer {
    /// Scores with `model` in this process.
    pub fn new(model: Model) -> Self {
        let server: Arc<dyn ModelServerPort> = Arc::new(wharf_core::LocalModelServer::with_model(model));
        let model = server.model().unwrap_or_else(|| unreachable!("the server was made with the model loaded"));
        ModelScorer { server, model }
    }

    /// Scores through `server`, which must have a model loaded (as [`ModelServers::serve`]
    /// hands it out).
    pub fn with_server(server: Arc<dyn ModelServerPort>) -> wharf_core::Result<Self> {
        let model = server.model().ok_or(WharfError::NoModelLoaded)?;
        Ok(ModelScorer { server, model })
    }

    /// Loads `model` on a new server from `servers` (the container's factory, so
    /// `serving.backend` decides where it scores).
    pub fn serve(servers: &ModelServers, model: Model) -> wharf_core::Result<Self> {
        Self::with_server(servers.serve(model)?)
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The server that scores.
    pub fn server(&self) -> &Arc<dyn ModelServerPort> {
        &self.server
    }

    fn project(&self, input: &Row) -> Row {
        self.model
            .signature()
            .feature_names()
            .map(|name| (name.to_string(), input.get(name).cloned().unwrap_or(Value::Null)))
            .collect()
    }
}

/// A refused record's reason, worded for the reader of a stored result: the field by name
/// (the batch position means nothing to them).
fn reject_error(reject: &wharf_core::Reject) -> BoxError {
    match &reject.column {
        Some(field) => format!("field '{field}': {}", reject.message()).into(),
        None => reject.message().into(),
    }
}

impl Scorer for ModelScorer {
    fn score_batch(&self, inputs: &[&Row]) -> Vec<Result<Value, BoxError>> {
        let records = Records::Rows(inputs.iter().map(|r| self.project(r)).collect());
        let scored = match wharf_core::score(self.server.as_ref(), &records, OnError::Skip) {
            Ok(scored) => scored,
            Err(e) => {
                // Nothing any one record explains (a backend down): every record gets it.
                let message = e.to_string();
                return inputs.iter().map(|_| Err(message.clone().into())).collect();
            }
        };
        let mut out: Vec<Result<Value, BoxError>> =
            (0..inputs.len()).map(|_| Err("the model returned no result".into())).collect();
        for reject in &scored.rejects {
            if let Some(slot) = out.get_mut(reject.index) {
                *slot = Err(reject_error(reject));
            }
        }
        for (i, &index) in scored.kept.iter().enumerate() {
            let mut value = Map::new();
            value.insert("prediction".into(), scored.prediction_json(i));
            if let Some(probabilities) = scored.probabilities_of(i) {
                for (class, p) in probabilities {
                    let p = serde_json::Number::from_f64(p).map(Value::Number).unwrap_or(Value::Null);
                    value.insert(wharf_core::scoring::prob_column(class), p);
                }
            }
            if let Some(slot) = out.get_mut(index) {
                *slot = Ok(Value::Object(value));
            }
        }
        out
    }

    fn describe(&self) -> String {
        format!("wharf model ({}, {}) on {}", self.model.metadata().algorithm, self.model.task(), self.server.name())
    }
}
