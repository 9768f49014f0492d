//! `GET /models/{name}/drift` (the live window against the training profile) and
//! `POST /models/{name}/feedback` (labels joining logged predictions).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::{resolve, PathParam, QueryParams};
use crate::problem::Problem;
use crate::AppState;

/// Labels one feedback call may carry: far above any reasonable batch, and a bound on the
/// work one call can ask for.
const MAX_LABELS: usize = 100_000;

pub async fn drift(
    State(app): State<AppState>,
    PathParam(name): PathParam,
    QueryParams(q): QueryParams,
) -> Result<Json<Value>, Problem> {
    let loaded = resolve(&app, &name, q.version().as_deref())?;
    let report =
        app.watch.drift(&loaded).map_err(|why| Problem::new(StatusCode::CONFLICT, "No drift to report", why))?;
    let mut body = json!({ "model": loaded.info.name, "version": loaded.version.0 });
    if let (Value::Object(map), Ok(Value::Object(r))) = (&mut body, serde_json::to_value(&report)) {
        map.extend(r);
        if let Some(live) = app.watch.live(&loaded.info.name, loaded.version.0) {
            map.insert("feedback".into(), live);
        }
    }
    Ok(Json(body))
}

/// The body: `{"feedback": [{"request_id": "…", "label": …}, …]}`, or one such object alone.
pub async fn feedback(
    State(app): State<AppState>,
    PathParam(name): PathParam,
    body: Bytes,
) -> Result<Json<Value>, Problem> {
    let served =
        app.models.get(&name).ok_or_else(|| Problem::not_found(format!("no model named '{name}' is served")))?;
    let name = served.name.clone();
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "Invalid JSON", e.to_string()))?;
    let items = match &value {
        Value::Object(o) if o.contains_key("feedback") => match &o["feedback"] {
            Value::Array(items) => items.iter().collect::<Vec<_>>(),
            _ => return Err(invalid("feedback", "expected an array of {\"request_id\", \"label\"} objects")),
        },
        Value::Object(_) => vec![&value],
        _ => return Err(invalid("feedback", "expected {\"feedback\": [{\"request_id\": …, \"label\": …}, …]}")),
    };
    if items.len() > MAX_LABELS {
        return Err(invalid("feedback", &format!("{} labels in one call; at most {MAX_LABELS}", items.len())));
    }
    let mut labels = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let id = item.get("request_id").and_then(Value::as_str).filter(|s| !s.is_empty() && s.len() <= 128);
        let id = id.ok_or_else(|| {
            invalid(&format!("feedback[{i}].request_id"), "expected the request's id (1 to 128 characters)")
        })?;
        let label = match item.get("label").or_else(|| item.get("outcome")) {
            Some(l @ (Value::String(_) | Value::Number(_) | Value::Bool(_))) => l.clone(),
            _ => {
                return Err(invalid(
                    &format!("feedback[{i}].label"),
                    "expected the true outcome: a class label or a number",
                ))
            }
        };
        labels.push((id.to_string(), label));
    }
    let (received, matched) = app
        .watch
        .feedback(&name, labels)
        .map_err(|why| Problem::new(StatusCode::CONFLICT, "Prediction log off", why))?;
    Ok(Json(json!({ "model": name, "received": received, "matched": matched, "unmatched": received - matched })))
}

fn invalid(at: &str, detail: &str) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, "Invalid feedback", detail.to_string()).at(at)
}
