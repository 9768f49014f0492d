//! The Open Inference Protocol v2 (REST), as KServe, Triton, Seldon MLServer and their
//! clients speak it: health, server and model metadata, model readiness and `infer`.
//!
//! A model's inputs are its signature's features, so a request sends either one tensor per
//! feature (shape `[N]` or `[N, 1]`; numbers for numeric features, `BYTES` for categorical
//! ones) or one numeric `[N, F]` tensor of any name whose columns are the features in
//! signature order (categorical cells as level indices, as in `instances`). The outputs are
//! `predict` (class labels as `BYTES`, numbers as `FP64`, clusters as `INT64`) and, for a
//! classifier, `predict_proba` (`FP64 [N, C]`, columns in the order of the model's classes).
//! Tensor data may be JSON or the binary tensor extension Triton's clients use by default.
//!
//! Errors are the protocol's `{"error": "..."}` with a 4xx or 5xx status; a malformed
//! tensor is a 400 whose message names it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use ndarray::Array2;
use serde::ser::SerializeSeq;
use serde::Serialize;
use serde_json::{json, Value};
use wharf_core::scoring::has_probabilities;
use wharf_core::{Column, Frame, Predictions, Records, Scored, Signature, Task};

use super::infer_request::{self, Input};
use super::tensor::{self, Datatype, Values};
use crate::limits::ScoringPermit;
use crate::problem::Problem;
use crate::request_metrics::scored_rows;
use crate::sent::Sent;
use crate::state::{self, Loaded};
use crate::AppState;

/// The header that splits a binary-extension body into its JSON part and its tensor bytes.
const HEADER_LENGTH: HeaderName = HeaderName::from_static("inference-header-content-length");

/// The open routes: liveness, readiness and server metadata.
pub(crate) fn health_routes(r: Router<AppState>) -> Router<AppState> {
    r.route("/v2", get(server_metadata))
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(server_ready))
        .route("/v2/models/{name}/ready", get(model_ready))
        .route("/v2/models/{name}/versions/{version}/ready", get(model_ready_version))
}

/// The catalog's routes (behind the scoring tokens when there are any): model metadata.
pub(crate) fn catalog_routes(r: Router<AppState>) -> Router<AppState> {
    r.route("/v2/models/{name}", get(model_metadata))
        .route("/v2/models/{name}/versions/{version}", get(model_metadata_version))
}

/// The scoring routes (behind the scoring tokens, under the scoring permit): `infer`.
pub(crate) fn scoring_routes(r: Router<AppState>) -> Router<AppState> {
    r.route("/v2/models/{name}/infer", post(infer))
        .route("/v2/models/{name}/versions/{version}/infer", post(infer_version))
}

/// An answer in the protocol's error shape.
#[derive(Debug)]
pub(crate) struct V2Error {
    status: StatusCode,
    message: String,
}

impl V2Error {
    fn bad(message: impl Into<String>) -> Self {
        V2Error { status: StatusCode::BAD_REQUEST, message: message.into() }
    }
}

impl From<Problem> for V2Error {
    /// The problem's detail, with the field it names; a schema refusal (422 elsewhere) is a
    /// 400 here, the status the protocol's servers give a bad request.
    fn from(problem: Problem) -> Self {
        let status =
            if problem.status == StatusCode::UNPROCESSABLE_ENTITY { StatusCode::BAD_REQUEST } else { problem.status };
        let message = match problem.members.get("path").and_then(Value::as_str) {
            Some(path) if !path.is_empty() => format!("{} (at {})", problem.detail, tensor_path(path)),
            _ => problem.detail,
        };
        V2Error { status, message }
    }
}

/// The core's name for a field as the client sent it: `columns.x` is the tensor `x`.
fn tensor_path(path: &str) -> String {
    match path.strip_prefix("columns.") {
        Some(feature) => format!("input '{feature}'"),
        None => path.to_string(),
    }
}

impl IntoResponse for V2Error {
    fn into_response(self) -> Response {
        tracing::debug!(status = self.status.as_u16(), detail = %self.message, "request refused");
        (self.status, axum::Json(json!({"error": self.message}))).into_response()
    }
}

fn path_error(rejection: PathRejection) -> V2Error {
    V2Error::bad(format!("the path cannot be read: {}", wharf_core::excerpt(&rejection.body_text())))
}

async fn live() -> StatusCode {
    StatusCode::OK
}

async fn server_metadata() -> axum::Json<Value> {
    axum::Json(json!({
        "name": "wharf",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": ["binary_tensor_data"],
    }))
}

/// Self-tests `loaded` off the reactor: ready means it answers now.
async fn answers(loaded: Vec<Arc<Loaded>>) -> bool {
    tokio::task::spawn_blocking(move || loaded.iter().all(|l| state::self_test(&l.model, l.server.as_ref()).is_ok()))
        .await
        .unwrap_or(false)
}

async fn server_ready(State(app): State<AppState>) -> Response {
    let loaded: Vec<Arc<Loaded>> = app.models.models.iter().flat_map(|m| m.slots.iter().map(|s| s.current())).collect();
    if !loaded.is_empty() && answers(loaded).await {
        StatusCode::OK.into_response()
    } else {
        V2Error::bad("a served model does not answer its own sample input").into_response()
    }
}

async fn model_ready(State(app): State<AppState>, name: Result<Path<String>, PathRejection>) -> Response {
    match name {
        Ok(Path(name)) => ready(&app, &name, None).await,
        Err(rejection) => path_error(rejection).into_response(),
    }
}

async fn model_ready_version(
    State(app): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Response {
    match path {
        Ok(Path((name, version))) => ready(&app, &name, Some(&version)).await,
        Err(rejection) => path_error(rejection).into_response(),
    }
}

async fn ready(app: &AppState, name: &str, version: Option<&str>) -> Response {
    let loaded = match crate::routes::resolve(app, name, version) {
        Ok(loaded) => loaded,
        Err(problem) => return V2Error::from(problem).into_response(),
    };
    if answers(vec![loaded]).await {
        StatusCode::OK.into_response()
    } else {
        V2Error::bad(format!("model '{name}' does not answer its own sample input")).into_response()
    }
}

async fn model_metadata(State(app): State<AppState>, name: Result<Path<String>, PathRejection>) -> Response {
    match name {
        Ok(Path(name)) => metadata(&app, &name, None),
        Err(rejection) => path_error(rejection).into_response(),
    }
}

async fn model_metadata_version(
    State(app): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Response {
    match path {
        Ok(Path((name, version))) => metadata(&app, &name, Some(&version)),
        Err(rejection) => path_error(rejection).into_response(),
    }
}

/// The model metadata response: inputs from the signature's features, outputs from its task.
fn metadata(app: &AppState, name: &str, version: Option<&str>) -> Response {
    let loaded = match crate::routes::resolve(app, name, version) {
        Ok(loaded) => loaded,
        Err(problem) => return V2Error::from(problem).into_response(),
    };
    let name = loaded.info.name.as_str();
    let versions: Vec<String> = match (version, app.models.get(name)) {
        (None, Some(served)) => served.slots.iter().map(|s| s.current().version.0.to_string()).collect(),
        _ => vec![loaded.version.0.to_string()],
    };
    let signature = loaded.model.signature();
    let inputs: Vec<Value> = signature
        .features
        .iter()
        .map(|f| {
            let datatype = if f.is_numeric() { "FP64" } else { "BYTES" };
            json!({"name": f.name, "datatype": datatype, "shape": [-1]})
        })
        .collect();
    let mut outputs = vec![json!({"name": "predict", "datatype": predict_datatype(signature.task), "shape": [-1]})];
    if has_probabilities(loaded.server.as_ref(), &loaded.model) {
        outputs.push(json!({"name": "predict_proba", "datatype": "FP64", "shape": [-1, signature.classes.len()]}));
    }
    axum::Json(json!({
        "name": name,
        "versions": versions,
        "platform": loaded.model.kind_id(),
        "inputs": inputs,
        "outputs": outputs,
    }))
    .into_response()
}

fn predict_datatype(task: Task) -> &'static str {
    match task {
        Task::Classification => "BYTES",
        Task::Regression => "FP64",
        _ => "INT64",
    }
}

async fn infer(
    State(app): State<AppState>,
    permit: Result<ScoringPermit, Response>,
    name: Result<Path<String>, PathRejection>,
    sent: Sent,
) -> Response {
    let _permit = match permit {
        Ok(permit) => permit,
        Err(_) => return overloaded(),
    };
    match name {
        Ok(Path(name)) => respond(run(&app, &name, None, &sent.headers, sent.body).await),
        Err(rejection) => path_error(rejection).into_response(),
    }
}

async fn infer_version(
    State(app): State<AppState>,
    permit: Result<ScoringPermit, Response>,
    path: Result<Path<(String, String)>, PathRejection>,
    sent: Sent,
) -> Response {
    let _permit = match permit {
        Ok(permit) => permit,
        Err(_) => return overloaded(),
    };
    match path {
        Ok(Path((name, version))) => respond(run(&app, &name, Some(&version), &sent.headers, sent.body).await),
        Err(rejection) => path_error(rejection).into_response(),
    }
}

fn respond(result: Result<Response, V2Error>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The scoring permit's 503, in the protocol's shape (the permit counted it as shed).
fn overloaded() -> Response {
    let mut response = V2Error {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: "too many scoring requests in progress; retry shortly".into(),
    }
    .into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

async fn run(
    app: &AppState,
    name: &str,
    version: Option<&str>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, V2Error> {
    let loaded = crate::routes::resolve(app, name, version)?;
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            V2Error { status, message: "the request body is larger than the server accepts".into() }
        } else {
            V2Error::bad(format!("the body cannot be read: {}", rejection.body_text()))
        }
    })?;
    // The JSON part, and the binary tensor data after it when the client uses the extension.
    let (json_part, mut binary) = match headers.get(&HEADER_LENGTH) {
        Some(length) => {
            let length: usize = length
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| V2Error::bad("Inference-Header-Content-Length is not a number"))?;
            let json_part = body.get(..length).ok_or_else(|| {
                V2Error::bad(format!("Inference-Header-Content-Length is {length}, the body {} bytes", body.len()))
            })?;
            (json_part, &body[length..])
        }
        None => (&body[..], &body[body.len()..]),
    };
    let request = infer_request::parse(json_part)
        .map_err(|e| V2Error::bad(format!("the body is not an inference request: {e}")))?;
    let signature = loaded.model.signature();
    let (records, matrix_name) = records(signature, request.inputs, &mut binary)?;
    if !binary.is_empty() {
        return Err(V2Error::bad(format!("{} bytes of binary data follow the last binary input", binary.len())));
    }
    let outputs = requested(&loaded, request.outputs.as_deref(), request.binary_output)?;
    let rows = records.len();
    let id = request.id.as_deref();
    let respond = |scored: &Scored| answer(&loaded, id, scored, &outputs);
    let answered =
        super::score_records(app, headers, loaded.clone(), records, |scored| respond(scored).map_err(Answer::Written))
            .await;
    let response = answered.map_err(|failure| match failure {
        Answer::Written(e) => e,
        // The core names a matrix's cells `records[i][j]`; the client sent them as a tensor.
        Answer::Scoring(problem) => V2Error::from(match &matrix_name {
            Some(tensor) => problem.path_prefix("records[", &format!("input '{tensor}' [")),
            None => problem,
        }),
    })?;
    scored_rows(rows);
    Ok(response)
}

/// Why an infer request failed: scoring it (a problem, reworded for tensors) or writing the
/// answer.
enum Answer {
    Scoring(Problem),
    Written(V2Error),
}

impl From<Problem> for Answer {
    fn from(problem: Problem) -> Self {
        Answer::Scoring(problem)
    }
}

/// The request's tensors as records: one tensor per feature, or one `[N, F]` matrix (whose
/// name is returned, to word errors about its cells).
fn records(
    signature: &Signature,
    inputs: Vec<Input>,
    binary: &mut &[u8],
) -> Result<(Records<'static>, Option<String>), V2Error> {
    if inputs.is_empty() {
        return Err(V2Error::bad("the request has no inputs"));
    }
    let per_feature = inputs.iter().all(|i| signature.position(&i.name).is_some());
    if !per_feature {
        if inputs.len() > 1 || signature.features.len() == 1 {
            let unknown = inputs.iter().find(|i| signature.position(&i.name).is_none()).map_or("", |i| &i.name);
            return Err(V2Error::bad(format!(
                "input '{}' is not a feature of the model; send one tensor per feature ({}) or one [N, {}] tensor",
                wharf_core::excerpt(unknown),
                signature.feature_names().collect::<Vec<_>>().join(", "),
                signature.features.len()
            )));
        }
        let input = inputs.into_iter().next().ok_or_else(|| V2Error::bad("the request has no inputs"))?;
        let name = input.name.clone();
        let (dims, values) = read(input, binary)?;
        let width = signature.features.len();
        let [rows, columns] = dims[..] else {
            return Err(V2Error::bad(format!("input '{name}': a matrix input has shape [N, {width}], found {dims:?}")));
        };
        if columns != width {
            return Err(V2Error::bad(format!(
                "input '{name}': shape [{rows}, {columns}] has {columns} features, the model takes {width} ({})",
                signature.feature_names().collect::<Vec<_>>().join(", ")
            )));
        }
        let Values::Numbers(numbers) = values else {
            return Err(V2Error::bad(format!(
                "input '{name}': a [N, F] tensor must be numeric (categorical cells as level indices); \
                 send BYTES as one tensor per feature"
            )));
        };
        let matrix = Array2::from_shape_vec((rows, columns), numbers)
            .map_err(|e| V2Error::bad(format!("input '{name}': {e}")))?;
        return Ok((Records::Matrix(matrix.into()), Some(name)));
    }
    let mut columns: Vec<Option<Values>> = vec![None; signature.features.len()];
    let mut rows = None;
    for input in inputs {
        let name = input.name.clone();
        let (dims, values) = read(input, binary)?;
        let n = match dims[..] {
            [n] | [n, 1] => n,
            _ => {
                return Err(V2Error::bad(format!(
                    "input '{name}': a feature's tensor has shape [N] or [N, 1], found {dims:?}"
                )))
            }
        };
        if let Some(expected) = rows.filter(|r| *r != n) {
            return Err(V2Error::bad(format!("input '{name}': {n} rows, the inputs before it have {expected}")));
        }
        rows = Some(n);
        let slot = signature
            .position(&name)
            .and_then(|j| columns.get_mut(j))
            .ok_or_else(|| V2Error::bad(format!("input '{name}' is not a feature of the model")))?;
        if slot.replace(values).is_some() {
            return Err(V2Error::bad(format!("input '{name}' is given twice")));
        }
    }
    let missing: Vec<&str> =
        signature.features.iter().zip(&columns).filter(|(_, c)| c.is_none()).map(|(f, _)| f.name.as_str()).collect();
    if !missing.is_empty() {
        return Err(V2Error::bad(format!(
            "the model takes {} features; no input for {}",
            signature.features.len(),
            missing.iter().map(|m| format!("'{m}'")).collect::<Vec<_>>().join(", ")
        )));
    }
    let rows = rows.unwrap_or(0);
    let columns: Vec<Values> = columns.into_iter().flatten().collect();
    // All numbers for all-numeric features: straight into a matrix, as `instances` are read.
    if signature.features.iter().all(|f| f.is_numeric()) && columns.iter().all(|c| matches!(c, Values::Numbers(_))) {
        let mut matrix = Array2::<f64>::zeros((rows, columns.len()));
        for (j, column) in columns.iter().enumerate() {
            if let Values::Numbers(values) = column {
                matrix.column_mut(j).iter_mut().zip(values).for_each(|(cell, x)| *cell = *x);
            }
        }
        return Ok((Records::Matrix(matrix.into()), None));
    }
    let frame = Frame::from_columns(
        signature
            .features
            .iter()
            .zip(columns)
            .map(|(f, values)| {
                let column = match values {
                    Values::Numbers(v) => Column::Numeric(v),
                    Values::Texts(v) => Column::Text(v),
                };
                (f.name.clone(), column)
            })
            .collect(),
    )
    .map_err(|e| V2Error::from(Problem::from(e)))?;
    Ok((Records::Columns(frame), None))
}

/// A tensor's dimensions and values, from its JSON `data` or its share of the binary data,
/// checked against its shape and datatype.
fn read(input: Input, binary: &mut &[u8]) -> Result<(Vec<usize>, Values), V2Error> {
    let name = wharf_core::excerpt(&input.name).into_owned();
    let datatype_name = input.datatype.as_str().unwrap_or_default();
    let datatype = Datatype::parse(datatype_name).ok_or_else(|| {
        V2Error::bad(format!(
            "input '{name}': unknown datatype {}",
            serde_json::to_string(&input.datatype).unwrap_or_default()
        ))
    })?;
    let (dims, count) = tensor::shape(&name, &input.shape).map_err(V2Error::bad)?;
    let values = match (input.data, input.binary_size) {
        (Some(_), Some(_)) => {
            return Err(V2Error::bad(format!("input '{name}': both data and binary_data_size are given")))
        }
        (Some(cells), None) => {
            let cells = cells.map_err(|e| V2Error::bad(format!("input '{name}': the data cannot be read: {e}")))?;
            tensor::from_json(&name, datatype, cells).map_err(V2Error::bad)?
        }
        (None, Some(size)) => {
            let size = size
                .as_u64()
                .and_then(|s| usize::try_from(s).ok())
                .ok_or_else(|| V2Error::bad(format!("input '{name}': binary_data_size is not a whole number")))?;
            let (bytes, rest) = binary.split_at_checked(size).ok_or_else(|| {
                V2Error::bad(format!("input '{name}': binary_data_size is {size}, {} bytes are left", binary.len()))
            })?;
            *binary = rest;
            tensor::from_binary(&name, datatype, count, bytes).map_err(V2Error::bad)?
        }
        (None, None) => return Err(V2Error::bad(format!("input '{name}' has no data"))),
    };
    if values.len() != count {
        return Err(V2Error::bad(format!(
            "input '{name}': shape {dims:?} holds {count} values, data has {}",
            values.len()
        )));
    }
    Ok((dims, values))
}

/// Which outputs to write, and whether each goes in binary.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Output {
    Predict,
    Proba,
}

fn requested(
    loaded: &Loaded,
    outputs: Option<&[(String, Option<bool>)]>,
    binary_output: Option<bool>,
) -> Result<Vec<(Output, bool)>, V2Error> {
    let proba = has_probabilities(loaded.server.as_ref(), &loaded.model);
    let default_binary = binary_output.unwrap_or(false);
    let Some(outputs) = outputs.filter(|o| !o.is_empty()) else {
        let mut all = vec![(Output::Predict, default_binary)];
        if proba {
            all.push((Output::Proba, default_binary));
        }
        return Ok(all);
    };
    outputs
        .iter()
        .map(|(name, binary)| {
            let binary = binary.unwrap_or(default_binary);
            match name.as_str() {
                "predict" => Ok((Output::Predict, binary)),
                "predict_proba" if proba => Ok((Output::Proba, binary)),
                "predict_proba" => Err(V2Error::bad(format!(
                    "output 'predict_proba': '{}' has no class probabilities",
                    loaded.info.name
                ))),
                other => Err(V2Error::bad(format!(
                    "output '{}' is not an output of the model (predict{})",
                    wharf_core::excerpt(other),
                    if proba { ", predict_proba" } else { "" }
                ))),
            }
        })
        .collect()
}

/// The inference response, written straight to bytes: JSON, then the binary outputs'
/// bytes when any output is asked for in binary.
fn answer(loaded: &Loaded, id: Option<&str>, scored: &Scored, outputs: &[(Output, bool)]) -> Result<Response, V2Error> {
    let n = scored.predictions.len();
    let mut blobs = Vec::new();
    let mut tensors = Vec::with_capacity(outputs.len());
    for &(output, binary) in outputs {
        let (datatype, shape, data) = match output {
            Output::Predict => {
                let data = match &scored.predictions {
                    Predictions::Classes { classes, indices } => OutputData::Labels { classes, indices },
                    Predictions::Values(values) => OutputData::Values(values),
                    Predictions::Clusters(clusters) => OutputData::Clusters(clusters),
                    #[allow(unreachable_patterns)]
                    _ => return Err(V2Error::from(Problem::internal("a prediction of an unknown kind"))),
                };
                (predict_datatype(loaded.model.task()), vec![n], data)
            }
            Output::Proba => {
                let proba = scored.probabilities.as_ref().ok_or_else(|| {
                    V2Error::bad(format!("output 'predict_proba': '{}' has no class probabilities", loaded.info.name))
                })?;
                ("FP64", vec![n, proba.classes.len()], OutputData::Proba(&proba.values))
            }
        };
        let name = match output {
            Output::Predict => "predict",
            Output::Proba => "predict_proba",
        };
        if binary {
            let before = blobs.len();
            data.write_binary(&mut blobs);
            let size = blobs.len() - before;
            tensors.push(OutputTensor {
                name,
                datatype,
                shape,
                parameters: Some(BinarySize { binary_data_size: size }),
                data: None,
            });
        } else {
            tensors.push(OutputTensor { name, datatype, shape, parameters: None, data: Some(data) });
        }
    }
    let version = loaded.version.0.to_string();
    let body = InferResponse { model_name: &loaded.info.name, model_version: &version, id, outputs: tensors };
    let mut bytes =
        serde_json::to_vec(&body).map_err(|e| V2Error::from(Problem::internal(format!("writing the answer: {e}"))))?;
    if blobs.is_empty() && !outputs.iter().any(|(_, binary)| *binary) {
        return Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], bytes).into_response());
    }
    let json_length = bytes.len();
    bytes.extend_from_slice(&blobs);
    let mut response =
        ([(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"))], bytes).into_response();
    response.headers_mut().insert(HEADER_LENGTH, HeaderValue::from(json_length));
    Ok(response)
}

#[derive(Serialize)]
struct InferResponse<'a> {
    model_name: &'a str,
    model_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    outputs: Vec<OutputTensor<'a>>,
}

#[derive(Serialize)]
struct OutputTensor<'a> {
    name: &'static str,
    datatype: &'static str,
    shape: Vec<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<BinarySize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<OutputData<'a>>,
}

#[derive(Serialize)]
struct BinarySize {
    binary_data_size: usize,
}

/// An output tensor's elements, in row-major order.
enum OutputData<'a> {
    Labels { classes: &'a [String], indices: &'a [u32] },
    Values(&'a [f64]),
    Clusters(&'a [u32]),
    Proba(&'a Array2<f64>),
}

impl OutputData<'_> {
    fn label(classes: &[String], index: u32) -> &str {
        classes.get(index as usize).map_or("", String::as_str)
    }

    fn write_binary(&self, out: &mut Vec<u8>) {
        match self {
            OutputData::Labels { classes, indices } => {
                tensor::bytes_bytes(out, indices.iter().map(|i| Self::label(classes, *i)))
            }
            OutputData::Values(values) => tensor::fp64_bytes(out, values.iter().copied()),
            OutputData::Clusters(clusters) => {
                for c in *clusters {
                    out.extend_from_slice(&i64::from(*c).to_le_bytes());
                }
            }
            OutputData::Proba(values) => tensor::fp64_bytes(out, values.iter().copied()),
        }
    }
}

impl Serialize for OutputData<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // A non-finite number has no JSON form: it is written as null.
        let finite = |x: &f64| x.is_finite().then_some(*x);
        match self {
            OutputData::Labels { classes, indices } => s.collect_seq(indices.iter().map(|i| Self::label(classes, *i))),
            OutputData::Values(values) => s.collect_seq(values.iter().map(finite)),
            OutputData::Clusters(clusters) => s.collect_seq(clusters.iter()),
            OutputData::Proba(values) => {
                let mut seq = s.serialize_seq(Some(values.len()))?;
                for x in values.iter() {
                    seq.serialize_element(&finite(x))?;
                }
                seq.end()
            }
        }
    }
}
