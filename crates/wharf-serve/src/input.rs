//! Request bodies → [`Records`], with a [`Problem`] naming the failing field otherwise.
//!
//! The body is read as bytes and parsed here rather than by an extractor, so every failure —
//! wrong content type, malformed JSON, wrong shape — gets the same problem+json answer.

use axum::http::{header, HeaderMap, StatusCode};
use ndarray::Array2;
use serde_json::Value;
use wharf_core::json_type;
use wharf_core::{format_number, FeatureKind, Records, Row, Signature, Task};

use crate::problem::Problem;

/// Refuses anything but a JSON body (`application/json`, `application/*+json`).
pub fn require_json(headers: &HeaderMap) -> Result<(), Problem> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json")) {
        Ok(())
    } else {
        let shown = if content_type.is_empty() { "none" } else { content_type };
        Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported media type",
            format!("expected Content-Type: application/json, found {shown}"),
        ))
    }
}

/// Parses the body as JSON. `NaN` and `Infinity` are not JSON and end here.
pub fn parse_json(body: &[u8]) -> Result<Value, Problem> {
    serde_json::from_slice(body).map_err(|e| {
        Problem::new(StatusCode::BAD_REQUEST, "Malformed JSON", format!("the body is not valid JSON: {e}"))
            .with("line", e.line().into())
            .with("column", e.column().into())
    })
}

/// Takes the body's one member (`records` or `instances`) and refuses any other.
fn members(body: Value, allowed: &[&str]) -> Result<(String, Value), Problem> {
    let Value::Object(map) = body else {
        return Err(Problem::invalid("", format!("expected a JSON object with {}", allowed.join(" or "))));
    };
    if let Some(extra) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(Problem::invalid(extra.clone(), format!("unknown member; expected {}", allowed.join(" or "))));
    }
    if map.len() != 1 {
        return Err(Problem::invalid("", format!("expected exactly one of {}", allowed.join(", "))));
    }
    map.into_iter().next().ok_or_else(|| Problem::invalid("", "empty body"))
}

fn non_empty_array(key: &str, value: Value) -> Result<Vec<Value>, Problem> {
    match value {
        Value::Array(items) if items.is_empty() => Err(Problem::invalid(key, "at least one record is required")),
        Value::Array(items) => Ok(items),
        _ => Err(Problem::invalid(key, "expected an array")),
    }
}

fn rows(key: &str, items: Vec<Value>) -> Result<Vec<Row>, Problem> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::Object(row) => Ok(row),
            _ => Err(Problem::invalid(format!("{key}[{i}]"), "expected an object of feature values")),
        })
        .collect()
}

/// A predict body: `{"records": [{...}]}` or `{"instances": [[...]]}`.
pub fn predict_records(body: Value, signature: &Signature) -> Result<Records, Problem> {
    let (key, value) = members(body, &["records", "instances"])?;
    let items = non_empty_array(&key, value)?;
    if key == "records" {
        return Ok(Records::Rows(rows(&key, items)?));
    }
    let width = signature.features.len();
    let mut matrix = Array2::<f64>::zeros((items.len(), width));
    for (i, item) in items.into_iter().enumerate() {
        let Value::Array(cells) = item else {
            return Err(Problem::invalid(format!("instances[{i}]"), "expected an array of feature values"));
        };
        if cells.len() != width {
            let names: Vec<&str> = signature.feature_names().collect();
            return Err(Problem::invalid(
                format!("instances[{i}]"),
                format!("expected {width} values ({}), found {}", names.join(", "), cells.len()),
            ));
        }
        for (j, (cell, feature)) in cells.iter().zip(&signature.features).enumerate() {
            let path = || format!("instances[{i}][{j}]");
            matrix[(i, j)] = match (cell, &feature.kind) {
                (Value::Null, _) => f64::NAN,
                (Value::Number(n), FeatureKind::Numeric) => n.as_f64().unwrap_or(f64::NAN),
                (Value::String(s), FeatureKind::Categorical { levels }) => levels
                    .iter()
                    .position(|l| l == s)
                    .map(|p| p as f64)
                    .ok_or_else(|| Problem::invalid(path(), format!("unknown level '{s}' of '{}'", feature.name)))?,
                // A number for a categorical feature is a level index, as in a matrix.
                (Value::Number(n), FeatureKind::Categorical { .. }) => n.as_f64().unwrap_or(f64::NAN),
                (other, FeatureKind::Numeric) => {
                    return Err(Problem::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "Schema mismatch",
                        format!("'{}' expects a number, found {}", feature.name, json_type(other)),
                    )
                    .at(path()))
                }
                (other, FeatureKind::Categorical { .. }) => {
                    return Err(Problem::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "Schema mismatch",
                        format!("'{}' expects a level name, found {}", feature.name, json_type(other)),
                    )
                    .at(path()))
                }
            };
        }
    }
    Ok(Records::Matrix(matrix))
}

/// The truth of a score body.
pub enum Truth {
    /// Class indices into the signature's classes.
    Classes(Vec<u32>),
    /// Numbers.
    Values(Vec<f64>),
}

/// A score body: `{"records": [{..., target: value}]}` → features and truth.
pub fn score_records(body: Value, signature: &Signature) -> Result<(Records, Truth), Problem> {
    let target = signature.target.clone().ok_or_else(|| {
        Problem::new(StatusCode::BAD_REQUEST, "Not supported", "the model has no target, so it cannot be scored")
    })?;
    if signature.task == Task::Clustering {
        return Err(Problem::new(StatusCode::BAD_REQUEST, "Not supported", "a clustering model cannot be scored"));
    }
    let (key, value) = members(body, &["records"])?;
    let mut rows = rows(&key, non_empty_array(&key, value)?)?;
    let mut classes = Vec::new();
    let mut values = Vec::new();
    for (i, row) in rows.iter_mut().enumerate() {
        let path = || format!("records[{i}].{target}");
        let label = row.remove(&target).ok_or_else(|| Problem::invalid(path(), "missing target value"))?;
        match signature.task {
            Task::Classification => {
                let text = match &label {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => format_number(n.as_f64().unwrap_or(f64::NAN)),
                    Value::Bool(b) => b.to_string(),
                    other => {
                        return Err(Problem::invalid(path(), format!("expected a class, found {}", json_type(other))))
                    }
                };
                let index = signature.classes.iter().position(|c| *c == text).ok_or_else(|| {
                    Problem::invalid(
                        path(),
                        format!("class '{text}' was not seen in training ({})", signature.classes.join(", ")),
                    )
                })?;
                classes.push(index as u32);
            }
            _ => match label.as_f64() {
                Some(x) => values.push(x),
                None => {
                    return Err(Problem::invalid(path(), format!("expected a number, found {}", json_type(&label))))
                }
            },
        }
    }
    let truth = if signature.task == Task::Classification { Truth::Classes(classes) } else { Truth::Values(values) };
    Ok((Records::Rows(rows), truth))
}
