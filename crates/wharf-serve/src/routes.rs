//! The HTTP handlers.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use serde::ser::SerializeSeq;
use serde::Serialize;
use serde_json::{json, Map, Value};
use wharf_core::{Predictions, Probabilities, Records, Task};
use wharf_ml::metrics::{classification_metrics, regression_metrics};

use crate::input::{self, Truth};
use crate::problem::Problem;
use crate::state::{self, Loaded};
use crate::AppState;

/// The query of model endpoints; only `version` is read. A map (not a struct) so a repeated
/// or unknown parameter can never turn into a plain-text rejection.
type VersionQuery = HashMap<String, String>;

fn unknown_model(name: &str) -> Problem {
    Problem::not_found(format!("model '{name}' is not served")).at("name")
}

/// Finds the served version a request asks for: `?version=` or `name@version` in the path
/// (`/models/lead@champion/predict`); the path's selector wins.
fn resolve(app: &AppState, name: &str, version: Option<&str>) -> Result<Arc<Loaded>, Problem> {
    let (name, version) = match name.split_once('@') {
        Some((name, selector)) => (name, Some(selector)),
        None => (name, version),
    };
    let served = app.models.get(name).ok_or_else(|| unknown_model(name))?;
    let slot = served.slot(version).ok_or_else(|| {
        Problem::not_found(format!("version '{}' of model '{name}' is not served", version.unwrap_or_default()))
            .at("version")
    })?;
    Ok(slot.current())
}

/// Requests whose scoring work ([`wharf_core::Model::work_per_row`] × rows) is at most this
/// are scored on the reactor thread when the model server is in-process: about 10–50 µs of
/// arithmetic, less than the hand-off to the blocking pool and back costs under load.
const INLINE_WORK: usize = 20_000;

/// Runs CPU-bound work on the blocking pool so the reactor keeps answering.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, Problem> + Send + 'static) -> Result<T, Problem> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Problem::internal(format!("prediction task failed: {e}")))?
}

pub async fn livez() -> Json<Value> {
    Json(json!("LIVE"))
}

pub async fn uptime(State(app): State<AppState>) -> Json<Value> {
    Json(json!(app.started.elapsed().as_secs_f64()))
}

/// Self-tests every served version of every model, at request time, off the reactor.
async fn readiness(app: &AppState) -> BTreeMap<String, bool> {
    let app = app.clone();
    tokio::task::spawn_blocking(move || {
        app.models
            .models
            .iter()
            .map(|m| {
                let ready = m.slots.iter().all(|s| {
                    let loaded = s.current();
                    state::self_test(&loaded.model, loaded.server.as_ref()).is_ok()
                });
                (m.name.clone(), ready)
            })
            .collect()
    })
    .await
    .unwrap_or_default()
}

pub async fn readyz(State(app): State<AppState>) -> Response {
    let ready = readiness(&app).await;
    let not_ready: Vec<&String> = ready.iter().filter(|(_, ok)| !**ok).map(|(n, _)| n).collect();
    if not_ready.is_empty() && !ready.is_empty() {
        Json(json!("READY")).into_response()
    } else {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Not ready", "Predictor(s) not ready")
            .with("not_ready", json!(not_ready))
            .into_response()
    }
}

pub async fn healthz(State(app): State<AppState>) -> Json<Value> {
    let ready = readiness(&app).await;
    Json(json!({"live": true, "ready": ready, "uptime": app.started.elapsed().as_secs_f64()}))
}

pub async fn model_readyz(State(app): State<AppState>, Path(name): Path<String>) -> Response {
    let Some(served) = app.models.get(&name) else {
        return unknown_model(&name).into_response();
    };
    let loaded: Vec<Arc<Loaded>> = served.slots.iter().map(|s| s.current()).collect();
    let ok = tokio::task::spawn_blocking(move || {
        loaded.iter().all(|l| state::self_test(&l.model, l.server.as_ref()).is_ok())
    })
    .await
    .unwrap_or(false);
    if ok {
        Json(json!("READY")).into_response()
    } else {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Not ready", "NOT_READY")
            .with("model", json!(name))
            .into_response()
    }
}

fn summary(name: &str, loaded: &Loaded) -> Value {
    let sig = loaded.model.signature();
    json!({
        "name": name,
        "version": loaded.version.0,
        "aliases": loaded.info.aliases,
        "created": loaded.info.created_at,
        "task": sig.task,
        "classes": sig.classes,
        "algorithm": loaded.model.metadata().algorithm,
    })
}

pub async fn list_models(State(app): State<AppState>) -> Json<Value> {
    let models: Vec<Value> = app
        .models
        .models
        .iter()
        .map(|m| {
            let versions: Vec<Value> = m.slots.iter().map(|s| summary(&m.name, &s.current())).collect();
            let mut first = versions.first().cloned().unwrap_or_default();
            if let Value::Object(map) = &mut first {
                map.insert("served_versions".into(), json!(versions.iter().map(|v| &v["version"]).collect::<Vec<_>>()));
            }
            first
        })
        .collect();
    Json(json!({"models": models}))
}

pub async fn model_info(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<VersionQuery>,
) -> Result<Json<Value>, Problem> {
    let loaded = resolve(&app, &name, q.get("version").map(String::as_str))?;
    let name = loaded.info.name.clone();
    let meta = loaded.model.metadata();
    let mut body = summary(&name, &loaded);
    if let Value::Object(map) = &mut body {
        map.insert("signature".into(), json!(meta.signature));
        map.insert("params".into(), json!(meta.params));
        map.insert("metrics".into(), json!(meta.metrics));
        map.insert("tags".into(), json!(meta.tags));
        map.insert("trained_at".into(), json!(meta.created_at));
        map.insert("data_fingerprint".into(), json!(meta.data_fingerprint));
        map.insert("data_source".into(), json!(meta.data_source));
        map.insert("library_versions".into(), json!(meta.library_versions));
        map.insert("sha256".into(), json!(loaded.info.sha256));
        map.insert("sample_input".into(), json!(meta.sample_input));
        map.insert("predict_schema".into(), crate::schema::predict_schema(&name, &meta.signature));
        map.insert("score_schema".into(), crate::schema::score_schema(&name, &meta.signature));
    }
    Ok(Json(body))
}

pub async fn predict_schema(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<VersionQuery>,
) -> Result<Json<Value>, Problem> {
    let loaded = resolve(&app, &name, q.get("version").map(String::as_str))?;
    let name = loaded.info.name.clone();
    Ok(Json(crate::schema::predict_schema(&name, loaded.model.signature())))
}

pub async fn score_schema(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<VersionQuery>,
) -> Result<Json<Value>, Problem> {
    let loaded = resolve(&app, &name, q.get("version").map(String::as_str))?;
    let name = loaded.info.name.clone();
    Ok(Json(crate::schema::score_schema(&name, loaded.model.signature())))
}

/// Which model endpoint a POST went to.
#[derive(Debug, Clone, Copy)]
enum Endpoint {
    Predict,
    PredictProba,
    Score,
}

impl Endpoint {
    fn label(self) -> &'static str {
        match self {
            Endpoint::Predict => "predict",
            Endpoint::PredictProba => "predict_proba",
            Endpoint::Score => "score",
        }
    }
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
    match q.get("probabilities").map(String::as_str) {
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

async fn model_post(
    app: AppState,
    name: String,
    q: VersionQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    endpoint: Endpoint,
) -> Response {
    let started = Instant::now();
    let mut rows = 0;
    let result = async {
        let loaded = resolve(&app, &name, q.get("version").map(String::as_str))?;
        let rows_as_arrays = probability_rows(&q)?;
        let body = read_body(&headers, body)?;
        let signature = loaded.model.signature();
        // The registered name, without any `@selector` the path carried.
        let name = loaded.info.name.clone();
        match endpoint {
            Endpoint::Predict | Endpoint::PredictProba => {
                // Numeric instances go straight from the bytes into a matrix; anything else
                // (named records, nulls, levels, a mistake to report) takes the JSON tree.
                let records = match input::numeric_instances(&body, signature) {
                    Some(matrix) => Records::Matrix(matrix),
                    None => input::predict_records(input::parse_json(&body)?, signature)?,
                };
                rows = records.len();
                let shape = Shape { proba_only: matches!(endpoint, Endpoint::PredictProba), rows_as_arrays };
                // A request scored in this process in microseconds runs right here: handing it
                // to the blocking pool would cost more than the work. Anything bigger, or a
                // model server that may do I/O, goes to the pool.
                let batchable = app.batcher.is_some() && loaded.model.task() == Task::Classification;
                let work = records.len().saturating_mul(loaded.model.work_per_row());
                if records.len() == 1 && batchable {
                    let proba = crate::batch::predict_proba(&app, loaded.clone(), records).await?;
                    classified(&name, &loaded, &proba, shape)
                } else if work <= INLINE_WORK && loaded.server.capabilities().in_process {
                    predict(&name, &loaded, &records, shape)
                } else {
                    blocking(move || predict(&name, &loaded, &records, shape)).await
                }
            }
            Endpoint::Score => {
                let (records, truth) = input::score_records(input::parse_json(&body)?, signature)?;
                rows = records.len();
                blocking(move || score(&name, &loaded, &records, truth)).await.map(|v| Json(v).into_response())
            }
        }
    }
    .await;
    let ok = result.is_ok();
    let name = name.split('@').next().unwrap_or_default();
    if app.models.get(name).is_some() {
        app.metrics.observe(name, endpoint.label(), started.elapsed(), ok, if ok { rows } else { 0 });
    }
    match result {
        Ok(response) => response,
        Err(problem) => {
            tracing::debug!(model = %name, endpoint = endpoint.label(), status = problem.status.as_u16(), detail = %problem.detail, "request refused");
            problem.into_response()
        }
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

fn predict(name: &str, loaded: &Loaded, records: &Records, shape: Shape) -> Result<Response, Problem> {
    if loaded.model.task() == Task::Classification {
        // One pass gives both: the predicted class is the most probable one.
        let proba = loaded.server.predict_proba(records)?;
        return classified(name, loaded, &proba, shape);
    }
    let mut body = head(name, loaded);
    if shape.proba_only {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "Not supported",
            format!("'{name}' is a {} model and has no class probabilities", loaded.model.task()),
        ));
    }
    let predictions = loaded.server.predict(records)?;
    let values: Vec<Value> = (0..predictions.len()).map(|i| predictions.to_json(i)).collect();
    body.insert("predictions".into(), Value::Array(values));
    Ok(Json(Value::Object(body)).into_response())
}

fn head(name: &str, loaded: &Loaded) -> Map<String, Value> {
    match json!({"model": name, "version": loaded.version.0}) {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// A classifier's answer: predicted classes (unless `predict_proba`) and probabilities.
/// Written straight to bytes (no JSON tree): on small requests building the tree cost more
/// than scoring.
fn classified(name: &str, loaded: &Loaded, proba: &Probabilities, shape: Shape) -> Result<Response, Problem> {
    let predictions = (!shape.proba_only)
        .then(|| proba.argmax().into_iter().map(|i| proba.classes.get(i as usize).map(String::as_str)).collect());
    let answer = ClassifiedAnswer {
        model: name,
        version: loaded.version.0,
        predictions,
        classes: &proba.classes,
        probabilities: ProbabilityRows { proba, as_arrays: shape.rows_as_arrays },
    };
    let bytes = serde_json::to_vec(&answer).map_err(|e| Problem::internal(format!("writing the answer: {e}")))?;
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], bytes).into_response())
}

/// The body of a classifier's answer.
#[derive(Serialize)]
struct ClassifiedAnswer<'a> {
    model: &'a str,
    version: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    predictions: Option<Vec<Option<&'a str>>>,
    classes: &'a [String],
    probabilities: ProbabilityRows<'a>,
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

fn score(name: &str, loaded: &Loaded, records: &Records, truth: Truth) -> Result<Value, Problem> {
    let metrics = match truth {
        Truth::Classes(truth) => classification_metrics(&truth, &loaded.server.predict_proba(records)?),
        Truth::Values(truth) => {
            let predicted = match loaded.server.predict(records)? {
                Predictions::Values(v) => v,
                _ => return Err(Problem::internal("the regressor answered something other than numbers")),
            };
            regression_metrics(&truth, &predicted)
        }
    };
    // NaN (an AUC over one class, R² of a constant) has no JSON form: it becomes null.
    let metrics: Map<String, Value> = metrics.into_iter().map(|(k, v)| (k, json!(v))).collect();
    Ok(json!({"model": name, "version": loaded.version.0, "rows": records.len(), "metrics": metrics}))
}

pub async fn post_predict(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<VersionQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    model_post(app, name, q, headers, body, Endpoint::Predict).await
}

pub async fn post_predict_proba(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<VersionQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    model_post(app, name, q, headers, body, Endpoint::PredictProba).await
}

pub async fn post_score(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<VersionQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    model_post(app, name, q, headers, body, Endpoint::Score).await
}

pub async fn metrics(State(app): State<AppState>) -> Response {
    let text = app.metrics.render(app.started.elapsed());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

pub async fn openapi(State(app): State<AppState>) -> Json<Value> {
    let models: Vec<(String, wharf_core::Signature)> = app
        .models
        .models
        .iter()
        .filter_map(|m| m.slot(None).map(|s| (m.name.clone(), s.current().model.signature().clone())))
        .collect();
    Json(crate::schema::openapi(&models))
}

/// `/docs` → `/docs/`, so the page's relative asset links resolve under `/docs/`.
pub async fn docs_redirect() -> Redirect {
    Redirect::permanent("/docs/")
}

pub async fn docs_index(State(app): State<AppState>) -> Response {
    docs_file(&app, "")
}

pub async fn docs_asset(State(app): State<AppState>, Path(tail): Path<String>) -> Response {
    docs_file(&app, &tail)
}

fn docs_file(app: &AppState, tail: &str) -> Response {
    match utoipa_swagger_ui::serve(tail, app.swagger.clone()) {
        Ok(Some(file)) => {
            let mut response = ([(header::CONTENT_TYPE, file.content_type)], file.bytes.into_owned()).into_response();
            if file.gzpipped {
                response.headers_mut().insert(header::CONTENT_ENCODING, header::HeaderValue::from_static("gzip"));
            }
            response
        }
        Ok(None) => Problem::not_found(format!("no documentation file '{tail}'")).into_response(),
        Err(e) => Problem::internal(format!("documentation page: {e}")).into_response(),
    }
}

/// Checks the admin bearer token. Admin is off (404) when no token is configured.
fn authorize(app: &AppState, headers: &HeaderMap) -> Result<(), Problem> {
    let Some(token) = app.options.admin_token.as_deref().filter(|t| !t.is_empty()) else {
        return Err(Problem::not_found("the admin API is disabled: set serving.admin_token to enable it"));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Compare every byte so the time taken does not reveal how much of the token matched.
    let same =
        given.len() == token.len() && given.bytes().zip(token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if same {
        Ok(())
    } else {
        Err(Problem::new(StatusCode::UNAUTHORIZED, "Unauthorized", "a valid admin bearer token is required"))
    }
}

/// Re-resolves every served selector of `name` in the registry, loads and self-tests the
/// new versions, then swaps them in. Nothing is swapped unless every version loads.
pub async fn admin_reload(State(app): State<AppState>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    if let Err(problem) = authorize(&app, &headers) {
        return problem.into_response();
    }
    match reload(&app, &name, false).await {
        Ok(changes) => Json(json!({"model": name, "reloaded": changes})).into_response(),
        Err(problem) => problem.into_response(),
    }
}

/// Reloads `name` from the registry. With `only_if_moved`, versions are loaded only when a
/// selector now resolves to another version than the one serving (what the poller uses, so
/// an idle poll costs one metadata read per model and loads nothing).
pub(crate) async fn reload(app: &AppState, name: &str, only_if_moved: bool) -> Result<Vec<Value>, Problem> {
    app.models.get(name).ok_or_else(|| unknown_model(name))?;
    let registry =
        app.models.registry.clone().ok_or_else(|| {
            Problem::new(StatusCode::CONFLICT, "No registry", "models were not loaded from a registry")
        })?;
    let _one_reload_at_a_time = app.reload_lock.lock().await;
    let app = app.clone();
    let name = name.to_string();
    blocking(move || {
        let served = app.models.get(&name).ok_or_else(|| unknown_model(&name))?;
        if only_if_moved {
            let mut moved = false;
            for slot in &served.slots {
                let info = registry.version_info(&name, &slot.selector)?;
                moved |= info.version != slot.current().version;
            }
            if !moved {
                return Ok(Vec::new());
            }
        }
        let fresh = served
            .slots
            .iter()
            .map(|s| state::load_from_registry(registry.as_ref(), &name, &s.selector))
            .collect::<Result<Vec<_>, _>>()?;
        let mut changes = Vec::new();
        for (slot, loaded) in served.slots.iter().zip(fresh) {
            app.metrics.model_loaded(&name, loaded.version.0, loaded.load_seconds);
            let version = loaded.version.0;
            let previous = slot.swap(loaded);
            changes.push(
                json!({"selector": slot.selector.to_string(), "previous": previous.version.0, "version": version}),
            );
        }
        tracing::info!(model = %name, ?changes, "model reloaded");
        Ok(changes)
    })
    .await
}

/// Polls the registry every `interval` and reloads models whose selectors moved (an alias
/// set to another version), so `wharf models alias` takes effect without a restart. A failed
/// poll is logged and the serving versions stay.
pub(crate) async fn poll_registry(app: AppState, interval: std::time::Duration) {
    let names: Vec<String> = app.models.models.iter().map(|m| m.name.clone()).collect();
    loop {
        tokio::time::sleep(interval).await;
        for name in &names {
            if let Err(problem) = reload(&app, name, true).await {
                tracing::warn!(model = %name, detail = %problem.detail, "registry poll: model not reloaded");
            }
        }
    }
}
