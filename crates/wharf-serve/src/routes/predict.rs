//! `predict`, `predict_proba` and `score`: parse the body against the signature, score it
//! through the one scoring path ([`wharf_core::score`]) and write the answer. Which class a
//! record is predicted as is the core's decision (the most probable one, from the same
//! `predict_proba` pass that gave its probabilities); this file only writes it out.

use crate::limits::ScoringPermit;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::ser::SerializeSeq;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::time::Instant;
use wharf_core::scoring::has_probabilities;
use wharf_core::{score, OnError, Predictions, Probabilities, Records, Scored, Task};
use wharf_ml::metrics::{classification_metrics, regression_metrics};

use super::{blocking, resolve, PathParam, QueryParams, VersionQuery};
use crate::input::{self, Truth};
use crate::problem::Problem;
use crate::records_body::records_matrix;
use crate::request_metrics::scored_rows;
use crate::sent::Sent;
use crate::state::Loaded;
use crate::AppState;

/// Requests whose scoring work ([`wharf_core::Model::work_per_row`] × rows) is at most this
/// are scored on the reactor thread when the model server is in-process: about 10–50 µs of
/// arithmetic, less than the hand-off to the blocking pool and back costs under load.
pub(crate) const INLINE_WORK: usize = 20_000;

pub async fn post_predict(
    State(app): State<AppState>,
    _permit: ScoringPermit,
    PathParam(name): PathParam,
    QueryParams(q): QueryParams,
    sent: Sent,
) -> Result<Response, Problem> {
    predict(app, &name, &q, sent, false).await
}

pub async fn post_predict_proba(
    State(app): State<AppState>,
    _permit: ScoringPermit,
    PathParam(name): PathParam,
    QueryParams(q): QueryParams,
    sent: Sent,
) -> Result<Response, Problem> {
    predict(app, &name, &q, sent, true).await
}

pub async fn post_score(
    State(app): State<AppState>,
    _permit: ScoringPermit,
    PathParam(name): PathParam,
    QueryParams(q): QueryParams,
    sent: Sent,
) -> Result<Response, Problem> {
    let loaded = resolve(&app, &name, q.version().as_deref())?;
    probability_rows(&q)?;
    let body = read_body(&sent.headers, sent.body)?;
    let signature = loaded.model.signature();
    let streamed = signature.target.as_deref().filter(|_| loaded.server.capabilities().in_process).and_then(|target| {
        records_matrix(&body, signature, Some(target)).filter(|_| signature.task != Task::Clustering)
    });
    let (records, truth) = match streamed {
        Some(parsed) => {
            (Records::Matrix(parsed.matrix.into()), input::truth(signature, parsed.targets.into_iter().map(Ok))?)
        }
        None => input::score_records(input::parse_json(&body)?, signature)?,
    };
    let rows = records.len();
    let response = blocking(move || evaluate(&loaded, &records, truth)).await.map(|v| Json(v).into_response())?;
    scored_rows(rows);
    Ok(response)
}

/// `predict` (`proba_only` false) and `predict_proba` (true).
async fn predict(
    app: AppState,
    name: &str,
    q: &VersionQuery,
    sent: Sent,
    proba_only: bool,
) -> Result<Response, Problem> {
    let loaded = resolve(&app, name, q.version().as_deref())?;
    let shape = Shape { proba_only, rows_as_arrays: probability_rows(q)? };
    let Sent { headers, body } = sent;
    let body = read_body(&headers, body)?;
    let signature = loaded.model.signature();
    // Numeric instances go straight from the bytes into a matrix; anything else (named
    // records, nulls, levels, a mistake to report) takes the JSON tree.
    // Plain named records, for a model scored in this process, also skip the tree: a JSON
    // tree of named rows costs many times the body (see `records_body`).
    let in_process = loaded.server.capabilities().in_process;
    let (records, positional) = match input::numeric_instances(&body, signature) {
        Some(matrix) => (Records::Matrix(matrix.into()), true),
        None => match in_process.then(|| records_matrix(&body, signature, None)).flatten() {
            Some(parsed) => (Records::Matrix(parsed.matrix.into()), false),
            None => {
                let records = input::predict_records(input::parse_json(&body)?, signature)?;
                let positional = matches!(records, Records::Matrix(_));
                (records, positional)
            }
        },
    };
    let rows = records.len();
    if proba_only && !has_probabilities(loaded.server.as_ref(), &loaded.model) {
        return Err(no_probabilities(&loaded));
    }
    // A champion with a shadow, or a watched request, keeps its records and answer for the
    // challenger, the prediction log and the drift window.
    let follow = app.follow(&loaded, &records);
    let keep = follow.wanted();
    // A request scored in this process in microseconds runs right here: handing it to the
    // blocking pool would cost more than the work. Anything bigger, or a model server that
    // may do I/O, goes to the pool (and so does writing its answer).
    let batchable = app.batcher.is_some() && loaded.model.task() == Task::Classification;
    let work = rows.saturating_mul(loaded.model.work_per_row());
    // The scoring time, for the shadow and prediction logs, is taken when scoring returns:
    // it leaves out writing the answer, as the challenger's leaves out writing the log.
    // The clock is read only when someone keeps the time.
    let answered = move |loaded: &Loaded, scored: Scored, started: Option<Instant>| {
        let us = started.map_or(0, |t| u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX));
        answer(loaded, &scored, shape).map(|r| (r, keep.then_some((scored, us))))
    };
    let clock = move || keep.then(Instant::now);
    let outcome = if rows == 1 && batchable {
        let started = clock();
        // Boxed, as the pool's below: a future held across this await is part of every
        // request's future, and the common (inline) request would carry and move it.
        match Box::pin(crate::batch::score_one(&app, loaded.clone(), records)).await {
            Ok(scored) => answered(&loaded, scored, started),
            Err(problem) => Err(problem),
        }
    } else if work <= INLINE_WORK && in_process {
        let started = clock();
        score(loaded.server.as_ref(), &records, OnError::Fail)
            .map_err(Problem::from)
            .and_then(|scored| answered(&loaded, scored, started))
    } else {
        let loaded = loaded.clone();
        Box::pin(blocking(move || {
            let started = clock();
            answered(&loaded, score(loaded.server.as_ref(), &records, OnError::Fail)?, started)
        }))
        .await
    };
    // The core names a matrix's cells `records[i][j]`; the client sent them as `instances`.
    let (mut response, scored) =
        outcome.map_err(|p| if positional { p.path_prefix("records[", "instances[") } else { p })?;
    if let Some((scored, us)) = scored {
        follow.hand_over(&headers, &mut response, loaded, us, scored);
    }
    scored_rows(rows);
    Ok(response)
}

/// 400 for `predict_proba` on a model that has no class probabilities (a regressor, or a
/// classifier behind a server that offers none).
fn no_probabilities(loaded: &Loaded) -> Problem {
    let name = &loaded.info.name;
    let detail = if loaded.model.task() == Task::Classification {
        format!("the model server of '{name}' ({}) gives no class probabilities", loaded.server.name())
    } else {
        format!("'{name}' is a {} model and has no class probabilities", loaded.model.task())
    };
    Problem::new(StatusCode::BAD_REQUEST, "Not supported", detail)
}

fn read_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Bytes, Problem> {
    input::require_json(headers)?;
    body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(status, "Payload too large", "the request body is larger than the server accepts")
        } else {
            Problem::new(StatusCode::BAD_REQUEST, "Unreadable body", rejection.body_text())
        }
    })
}

/// `?probabilities=labelled` (default: one `{class: p}` object per record) or `array` (one
/// `[p, …]` row per record in the order of `classes`, the shape of scikit-learn's
/// `predict_proba`; smaller and faster to produce).
fn probability_rows(q: &VersionQuery) -> Result<bool, Problem> {
    match q.probabilities().as_deref() {
        None | Some("labelled") => Ok(false),
        Some("array") => Ok(true),
        Some(other) => Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "Invalid query parameter",
            format!("probabilities={other}: expected 'labelled' or 'array'"),
        )
        .at("probabilities")),
    }
}

/// What a predict answer holds.
#[derive(Debug, Clone, Copy)]
struct Shape {
    /// `predict_proba`: no `predictions`.
    proba_only: bool,
    /// `?probabilities=array`.
    rows_as_arrays: bool,
}

/// The answer to a scored predict request. The name is the registered one, without any
/// `@selector` the path carried.
fn answer(loaded: &Loaded, scored: &Scored, shape: Shape) -> Result<Response, Problem> {
    let name = loaded.info.name.as_str();
    if let Some(proba) = &scored.probabilities {
        return classified(name, loaded, &scored.predictions, proba, shape);
    }
    if shape.proba_only {
        return Err(no_probabilities(loaded));
    }
    let values: Vec<Value> = (0..scored.predictions.len()).map(|i| scored.predictions.to_json(i)).collect();
    Ok(Json(json!({"model": name, "version": loaded.version.0, "predictions": values})).into_response())
}

/// A classifier's answer: predicted classes (unless `predict_proba`) and probabilities.
/// Written straight to bytes (no JSON tree): on small requests building the tree cost more
/// than scoring.
fn classified(
    name: &str,
    loaded: &Loaded,
    predictions: &Predictions,
    proba: &Probabilities,
    shape: Shape,
) -> Result<Response, Problem> {
    let predictions = match predictions {
        _ if shape.proba_only => None,
        Predictions::Classes { classes, indices } => Some(Labels { classes, indices }),
        _ => return Err(Problem::internal("the classifier answered something other than classes")),
    };
    let head = loaded.answer_head.get_or_init(|| AnswerHead::new(name, loaded.version.0, &proba.classes));
    let mut bytes = Vec::with_capacity(head.model.len() + head.classes_json.len() + 32 * proba.values.len() + 64);
    let written = (|| {
        bytes.extend_from_slice(&head.model);
        if let Some(labels) = predictions {
            bytes.extend_from_slice(b"\"predictions\":");
            serde_json::to_writer(&mut bytes, &labels)?;
            bytes.push(b',');
        }
        // The head's classes are the first answer's; a model server may answer with others.
        if head.classes == proba.classes {
            bytes.extend_from_slice(&head.classes_json);
        } else {
            bytes.extend_from_slice(b"\"classes\":");
            serde_json::to_writer(&mut bytes, &proba.classes)?;
            bytes.push(b',');
        }
        bytes.extend_from_slice(b"\"probabilities\":");
        serde_json::to_writer(&mut bytes, &ProbabilityRows { proba, as_arrays: shape.rows_as_arrays })?;
        bytes.push(b'}');
        Ok::<_, serde_json::Error>(())
    })();
    written.map_err(|e| Problem::internal(format!("writing the answer: {e}")))?;
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], bytes).into_response())
}

/// The parts of a classifier's answer that are the same for every request to one loaded
/// version, written once: `{"model":…,"version":…,` and `"classes":[…],`. Escaping the
/// name and the class labels for every answer was a tenth of a 1-row request's own work.
#[derive(Debug)]
pub(crate) struct AnswerHead {
    model: Vec<u8>,
    classes: Vec<String>,
    classes_json: Vec<u8>,
}

impl AnswerHead {
    fn new(name: &str, version: u64, classes: &[String]) -> AnswerHead {
        // A JSON value's `Display` is its escaped text, and cannot fail.
        let model = format!("{{\"model\":{},\"version\":{version},", Value::from(name));
        let classes_json = format!("\"classes\":{},", Value::from(classes.to_vec()));
        AnswerHead { model: model.into_bytes(), classes: classes.to_vec(), classes_json: classes_json.into_bytes() }
    }
}

/// The predicted class label of each record (`null` for an index outside the classes).
struct Labels<'a> {
    classes: &'a [String],
    indices: &'a [u32],
}

impl Serialize for Labels<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.indices.iter().map(|i| self.classes.get(*i as usize)))
    }
}

/// One `{class: p}` object (or `[p, …]` array) per record. A non-finite value, which JSON
/// cannot carry, is written as `null`.
struct ProbabilityRows<'a> {
    proba: &'a Probabilities,
    as_arrays: bool,
}

impl Serialize for ProbabilityRows<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let values = &self.proba.values;
        let mut rows = s.serialize_seq(Some(values.nrows()))?;
        for row in values.rows() {
            if self.as_arrays {
                rows.serialize_element(&Finite(row))?;
            } else {
                rows.serialize_element(&Labelled { classes: &self.proba.classes, row })?;
            }
        }
        rows.end()
    }
}

/// A row of probabilities as a JSON array.
struct Finite<'a>(ndarray::ArrayView1<'a, f64>);

impl Serialize for Finite<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|p| p.is_finite().then_some(*p)))
    }
}

/// A row of probabilities as a JSON object keyed by class.
struct Labelled<'a> {
    classes: &'a [String],
    row: ndarray::ArrayView1<'a, f64>,
}

impl Serialize for Labelled<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.classes.iter().zip(self.row.iter().map(|p| p.is_finite().then_some(*p))))
    }
}

/// Metrics of the model on labelled records, scored through the one path.
fn evaluate(loaded: &Loaded, records: &Records, truth: Truth) -> Result<Value, Problem> {
    let scored = score(loaded.server.as_ref(), records, OnError::Fail)?;
    let metrics = match truth {
        Truth::Classes(truth) => {
            let proba = scored.probabilities.as_ref().ok_or_else(|| no_probabilities(loaded))?;
            classification_metrics(&truth, proba)
        }
        Truth::Values(truth) => match &scored.predictions {
            Predictions::Values(predicted) => regression_metrics(&truth, predicted),
            _ => return Err(Problem::internal("the regressor answered something other than numbers")),
        },
    };
    // NaN (an AUC over one class, R² of a constant) has no JSON form: it becomes null.
    let metrics: Map<String, Value> = metrics.into_iter().map(|(k, v)| (k, json!(v))).collect();
    Ok(json!({"model": loaded.info.name, "version": loaded.version.0, "rows": records.len(), "metrics": metrics}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_head_escapes_names_and_labels() {
        let classes = vec!["no".to_string(), "y\"e\\s\n".to_string(), "ünï".to_string()];
        let head = AnswerHead::new("lead \"v2\"\\x", 7, &classes);
        let mut text = head.model.clone();
        text.extend_from_slice(&head.classes_json);
        text.extend_from_slice(b"\"probabilities\":[]}");
        let value: Value = serde_json::from_slice(&text).expect("the head completes a JSON object");
        assert_eq!(value, json!({"model": "lead \"v2\"\\x", "version": 7, "classes": classes, "probabilities": []}));
    }
}
