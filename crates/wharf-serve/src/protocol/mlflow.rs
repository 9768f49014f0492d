//! MLflow's scoring protocol: `POST /invocations`, as `mlflow models serve` answers it, so a
//! client or gateway written for an MLflow model server can call a Wharf model unchanged.
//!
//! The body holds exactly one of `dataframe_split` (`{"columns": [...], "data": [[...]]}`),
//! `dataframe_records` (`[{...}]`), `instances` or `inputs` (records, rows of values in
//! signature order, or `{column: [values]}`), and optionally `params` (ignored: Wharf models
//! take none). The answer is `{"predictions": [...]}`: one class label or number per row.
//! Errors are MLflow's `{"error_code": "BAD_REQUEST", "message": "..."}`.
//!
//! One server may serve many models, so the model is the `X-Wharf-Model` header's
//! (`NAME` or `NAME@VERSION|@ALIAS`), else `serving`'s default model (`--default-model`),
//! else the only model served.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Map, Value};
use wharf_core::{excerpt, format_number, json_type, Column, Frame, Records, Signature};

use crate::limits::ScoringPermit;
use crate::problem::Problem;
use crate::request_metrics::scored_rows;
use crate::sent::Sent;
use crate::{App, AppState};

/// The header naming the model an `/invocations` request is for.
pub(crate) const MODEL_HEADER: HeaderName = HeaderName::from_static("x-wharf-model");

/// The body members that carry input, as MLflow's scoring server names them.
const INPUT_KEYS: [&str; 4] = ["dataframe_split", "dataframe_records", "instances", "inputs"];

/// The scoring route (behind the scoring tokens, under the scoring permit).
pub(crate) fn scoring_routes(r: Router<AppState>) -> Router<AppState> {
    r.route("/invocations", post(invocations))
}

/// The model reference an `/invocations` request is for: the header's, the default model,
/// or the only one served.
pub(crate) fn target<'a>(app: &'a App, header: Option<&'a HeaderValue>) -> Result<&'a str, Problem> {
    if let Some(value) = header {
        return value
            .to_str()
            .map_err(|_| Problem::new(StatusCode::BAD_REQUEST, "Invalid header", "X-Wharf-Model is not text"));
    }
    if let Some(default) = app.options.default_model.as_deref() {
        return Ok(default);
    }
    match &app.models.models[..] {
        [only] => Ok(&only.name),
        _ => Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "No model named",
            "several models are served: name one in the X-Wharf-Model header, or start the server with a default model",
        )),
    }
}

/// An answer in MLflow's error shape.
struct MlflowError(Problem);

impl IntoResponse for MlflowError {
    fn into_response(self) -> Response {
        let problem = self.0;
        let code = match problem.status {
            StatusCode::NOT_FOUND => "RESOURCE_DOES_NOT_EXIST",
            StatusCode::SERVICE_UNAVAILABLE => "TEMPORARILY_UNAVAILABLE",
            s if s.is_server_error() => "INTERNAL_ERROR",
            _ => "BAD_REQUEST",
        };
        let message = match problem.members.get("path").and_then(Value::as_str) {
            Some(path) if !path.is_empty() => format!("{} (at {path})", problem.detail),
            _ => problem.detail,
        };
        tracing::debug!(status = problem.status.as_u16(), detail = %message, "request refused");
        // Client mistakes are 400, as MLflow's scoring server answers them.
        let status =
            if problem.status == StatusCode::UNPROCESSABLE_ENTITY { StatusCode::BAD_REQUEST } else { problem.status };
        (status, axum::Json(json!({"error_code": code, "message": message}))).into_response()
    }
}

async fn invocations(State(app): State<AppState>, permit: Result<ScoringPermit, Response>, sent: Sent) -> Response {
    let _permit = match permit {
        Ok(permit) => permit,
        Err(_) => {
            let problem = Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Overloaded",
                "too many scoring requests in progress; retry shortly",
            );
            let mut response = MlflowError(problem).into_response();
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
    };
    match run(&app, &sent.headers, sent.body).await {
        Ok(response) => response,
        Err(problem) => MlflowError(problem).into_response(),
    }
}

async fn run(app: &AppState, headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Response, Problem> {
    let reference = target(app, headers.get(&MODEL_HEADER))?;
    let loaded = crate::routes::resolve(app, reference, None)?;
    crate::input::require_json(headers)?;
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(status, "Payload too large", "the request body is larger than the server accepts")
        } else {
            Problem::new(StatusCode::BAD_REQUEST, "Unreadable body", rejection.body_text())
        }
    })?;
    let records = records(crate::input::parse_json(&body)?, loaded.model.signature())?;
    let rows = records.len();
    let response = super::score_records(app, headers, loaded, records, |scored| {
        let predictions: Vec<Value> = (0..scored.predictions.len()).map(|i| scored.predictions.to_json(i)).collect();
        Ok::<_, Problem>(axum::Json(json!({"predictions": predictions})).into_response())
    })
    .await?;
    scored_rows(rows);
    Ok(response)
}

/// The body's input as records.
pub(crate) fn records(body: Value, signature: &Signature) -> Result<Records<'static>, Problem> {
    let Value::Object(mut map) = body else {
        return Err(Problem::invalid("", format!("expected a JSON object with one of {}", INPUT_KEYS.join(", "))));
    };
    map.remove("params");
    if let Some(extra) = map.keys().find(|k| !INPUT_KEYS.contains(&k.as_str())) {
        return Err(Problem::invalid(
            excerpt(extra),
            format!("unknown member; expected one of {} (and optionally params)", INPUT_KEYS.join(", ")),
        ));
    }
    let mut entries = map.into_iter();
    let (Some((key, value)), None) = (entries.next(), entries.next()) else {
        return Err(Problem::invalid("", format!("expected exactly one of {}", INPUT_KEYS.join(", "))));
    };
    let records = match key.as_str() {
        "dataframe_split" => split(value, signature)?,
        "dataframe_records" => match value {
            Value::Array(items) => from_records(&key, items)?,
            other => {
                return Err(Problem::invalid(key, format!("expected an array of records, found {}", json_type(&other))))
            }
        },
        _ => tensor_input(&key, value, signature)?,
    };
    if records.is_empty() {
        return Err(Problem::invalid(key, "at least one record is required"));
    }
    Ok(records)
}

/// `{"columns": [...], "data": [[...]], "index": [...]}` (pandas' `split` orient); without
/// `columns`, the values are in signature order.
fn split(value: Value, signature: &Signature) -> Result<Records<'static>, Problem> {
    let Value::Object(mut split) = value else {
        return Err(Problem::invalid("dataframe_split", "expected an object with columns and data"));
    };
    let data = match split.remove("data") {
        Some(Value::Array(data)) => data,
        _ => return Err(Problem::invalid("dataframe_split.data", "expected an array of rows")),
    };
    let Some(columns) = split.remove("columns") else {
        return crate::input::predict_records(json!({"instances": data}), signature)
            .map_err(|p| p.path_prefix("instances", "dataframe_split.data"));
    };
    let names: Vec<String> = match columns {
        Value::Array(names) => names
            .into_iter()
            .enumerate()
            .map(|(i, n)| match n {
                Value::String(s) => Ok(s),
                other => Err(Problem::invalid(
                    format!("dataframe_split.columns[{i}]"),
                    format!("expected a column name, found {}", json_type(&other)),
                )),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(Problem::invalid("dataframe_split.columns", "expected an array of column names")),
    };
    // Grown cell by cell: reserving rows × columns up front would let a body of many names
    // and many empty rows ask for far more memory than it holds.
    let mut values: Vec<Vec<Value>> = vec![Vec::new(); names.len()];
    for (i, row) in data.into_iter().enumerate() {
        let Value::Array(cells) = row else {
            return Err(Problem::invalid(format!("dataframe_split.data[{i}]"), "expected an array of values"));
        };
        if cells.len() != names.len() {
            return Err(Problem::invalid(
                format!("dataframe_split.data[{i}]"),
                format!("{} values for {} columns", cells.len(), names.len()),
            ));
        }
        for (column, cell) in values.iter_mut().zip(cells) {
            column.push(cell);
        }
    }
    frame(names.into_iter().zip(values).collect(), "dataframe_split")
}

/// `instances` or `inputs`: records, rows of values in signature order, or columns.
fn tensor_input(key: &str, value: Value, signature: &Signature) -> Result<Records<'static>, Problem> {
    match value {
        Value::Array(items) if items.iter().all(Value::is_object) => from_records(key, items),
        Value::Array(items) if items.iter().all(Value::is_array) => {
            crate::input::predict_records(json!({"instances": items}), signature)
                .map_err(|p| p.path_prefix("instances", key))
        }
        // A single-feature model's values, one per row.
        Value::Array(items) if signature.features.len() == 1 => {
            frame(vec![(signature.features[0].name.clone(), items)], key)
        }
        Value::Object(columns) => {
            let columns: Vec<(String, Vec<Value>)> = columns
                .into_iter()
                .map(|(name, values)| match values {
                    Value::Array(values) => Ok((name, values)),
                    // One row given as scalars.
                    scalar => Ok((name, vec![scalar])),
                })
                .collect::<Result<_, Problem>>()?;
            frame(columns, key)
        }
        other => Err(Problem::invalid(key, format!("expected records, rows or columns, found {}", json_type(&other)))),
    }
}

/// Records as columns: the union of their fields in order of first appearance, a field a
/// record lacks being missing there (as pandas reads them).
fn from_records(key: &str, items: Vec<Value>) -> Result<Records<'static>, Problem> {
    let mut names: Vec<String> = Vec::new();
    let mut rows: Vec<Map<String, Value>> = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let Value::Object(row) = item else {
            return Err(Problem::invalid(format!("{key}[{i}]"), "expected an object of feature values"));
        };
        for name in row.keys() {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        rows.push(row);
    }
    let columns = names
        .into_iter()
        .map(|name| {
            let values = rows.iter_mut().map(|row| row.remove(&name).unwrap_or(Value::Null)).collect();
            (name, values)
        })
        .collect();
    frame(columns, key)
}

/// Named JSON columns as a frame: numbers stay numbers, anything else is text (a number in
/// a text column as it is written), `null` is missing. The core then checks them against
/// the signature, and ignores columns the model does not take, as MLflow's schema
/// enforcement drops them.
fn frame(columns: Vec<(String, Vec<Value>)>, key: &str) -> Result<Records<'static>, Problem> {
    let mut frame = Frame::new();
    for (name, values) in columns {
        let column = if values.iter().all(|v| v.is_number() || v.is_null()) {
            Column::Numeric(values.iter().map(|v| v.as_f64().unwrap_or(f64::NAN)).collect())
        } else {
            let texts = values
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::Null => Ok(None),
                    Value::String(s) => Ok(Some(s)),
                    Value::Bool(b) => Ok(Some(b.to_string())),
                    Value::Number(n) => Ok(Some(format_number(n.as_f64().unwrap_or(f64::NAN)))),
                    other => Err(Problem::invalid(
                        format!("{key}.{name}[{i}]"),
                        format!("expected a value, found {}", json_type(&other)),
                    )),
                })
                .collect::<Result<_, _>>()?;
            Column::Text(texts)
        };
        frame.push(name.clone(), column).map_err(|e| Problem::from(e).path_prefix("", &format!("{key}.")))?;
    }
    Ok(Records::Columns(frame))
}
