//! Records → request bodies, and answers → Wharf's predictions.
//!
//! BentoML answers with the remote model's own vocabulary (sklearn's class ids 0..k-1, or
//! labels, bare arrays or `{"classes", "probabilities"}` objects); this module maps it onto
//! the loaded model's signature so callers get the same shapes as from a local model.

use crate::config::BentoMlPayload;
use ndarray::Array2;
use serde_json::{Map, Value};
use wharf_core::json_type;
use wharf_core::{Column, Model, Predictions, Probabilities, Records, Result, Task, WharfError};

use crate::error::BentoError;

/// Raw feature values in signature order, one row per record. The records must already
/// have passed [`Model::validate`]; this only refuses what JSON cannot carry (missing or
/// infinite values).
pub(crate) fn feature_rows(model: &Model, records: &Records) -> Result<Vec<Vec<f64>>> {
    let features = &model.signature().features;
    let n = records.len();
    let mut rows = vec![Vec::with_capacity(features.len()); n];
    match records {
        Records::Matrix(m) => {
            for (i, src) in m.rows().into_iter().enumerate() {
                rows[i].extend(src.iter().copied());
            }
        }
        Records::Rows(input) => {
            for (i, row) in input.iter().enumerate() {
                for f in features {
                    let x = row.get(&f.name).and_then(Value::as_f64).unwrap_or(f64::NAN);
                    rows[i].push(x);
                }
            }
        }
        Records::Columns(frame) => {
            for f in features {
                let column = frame
                    .column(&f.name)
                    .ok_or_else(|| WharfError::schema(format!("columns.{}", f.name), "missing column"))?;
                for (i, row) in rows.iter_mut().enumerate() {
                    let x = match column {
                        Column::Numeric(v) => v.get(i).copied().unwrap_or(f64::NAN),
                        Column::Text(v) => {
                            v.get(i).cloned().flatten().and_then(|s| s.trim().parse::<f64>().ok()).unwrap_or(f64::NAN)
                        }
                    };
                    row.push(x);
                }
            }
        }
        _ => return Err(WharfError::Unsupported("the BentoML proxy cannot send records of this shape".into())),
    }
    for (i, row) in rows.iter().enumerate() {
        if let Some(j) = row.iter().position(|x| !x.is_finite()) {
            return Err(WharfError::invalid(
                format!("records[{i}].{}", features[j].name),
                "missing or infinite value: the BentoML proxy sends plain JSON numbers and cannot carry it",
            ));
        }
    }
    Ok(rows)
}

/// The request body for one chunk.
pub(crate) fn body(model: &Model, field: &str, shape: BentoMlPayload, rows: &[Vec<f64>]) -> Value {
    let items: Vec<Value> = match shape {
        BentoMlPayload::Matrix => rows.iter().map(|r| Value::from(r.clone())).collect(),
        BentoMlPayload::Records => rows
            .iter()
            .map(|r| {
                let object: Map<String, Value> =
                    model.signature().features.iter().zip(r).map(|(f, x)| (f.name.clone(), Value::from(*x))).collect();
                Value::Object(object)
            })
            .collect(),
    };
    let mut object = Map::new();
    object.insert(field.to_string(), Value::Array(items));
    Value::Object(object)
}

fn decode_err(endpoint: &str, message: String) -> WharfError {
    BentoError::Decode { endpoint: endpoint.to_string(), message }.into()
}

/// The index into `classes` of one answer: a class id (`0..k`) or a label.
fn class_index(classes: &[String], value: &Value) -> Option<u32> {
    match value {
        Value::String(label) => classes.iter().position(|c| c == label).map(|i| i as u32),
        Value::Number(n) => {
            let x = n.as_f64()?;
            (x.fract() == 0.0 && x >= 0.0 && (x as usize) < classes.len()).then_some(x as u32)
        }
        // A one-element row (`[[0], [2]]`, a column vector) is still one answer.
        Value::Array(a) if a.len() == 1 => class_index(classes, &a[0]),
        _ => None,
    }
}

fn scalar(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::Array(a) if a.len() == 1 => scalar(&a[0]),
        _ => None,
    }
}

/// Appends the predictions in `answer` (for `expected` records) to `out`.
pub(crate) fn push_predictions(
    model: &Model,
    endpoint: &str,
    answer: &Value,
    expected: usize,
    out: &mut Predictions,
) -> Result<()> {
    let items = answer.as_array().ok_or_else(|| {
        decode_err(endpoint, format!("expected a JSON array of predictions, got {}", json_type(answer)))
    })?;
    if items.len() != expected {
        return Err(decode_err(endpoint, format!("{} predictions for {expected} records", items.len())));
    }
    let classes = model.classes();
    for (i, item) in items.iter().enumerate() {
        let bad = || {
            decode_err(endpoint, format!("prediction [{i}] = {item} does not fit the model's {} task", model.task()))
        };
        match out {
            Predictions::Classes { indices, .. } => indices.push(class_index(classes, item).ok_or_else(|| {
                decode_err(
                    endpoint,
                    format!(
                        "prediction [{i}] = {item} is neither a class id below {} nor one of the model's classes ({})",
                        classes.len(),
                        classes.join(", ")
                    ),
                )
            })?),
            Predictions::Values(v) => v.push(scalar(item).ok_or_else(bad)?),
            Predictions::Clusters(c) => {
                let x =
                    scalar(item).filter(|x| x.fract() == 0.0 && *x >= 0.0 && *x <= u32::MAX as f64).ok_or_else(bad)?;
                c.push(x as u32)
            }
        }
    }
    Ok(())
}

/// An empty [`Predictions`] of the model's kind.
pub(crate) fn empty_predictions(model: &Model) -> Predictions {
    match model.task() {
        Task::Classification => Predictions::Classes { classes: model.classes().to_vec(), indices: Vec::new() },
        Task::Regression => Predictions::Values(Vec::new()),
        Task::Clustering => Predictions::Clusters(Vec::new()),
        // A task added later: no rows, so no values either way.
        _ => Predictions::Values(Vec::new()),
    }
}

/// Probability rows from `answer`, columns in the model's class order. Accepts a bare
/// `n × k` array (columns already in class order) or `{"probabilities": [...], "classes": [...]}`
/// whose `classes` (ids or labels) say which column is which.
pub(crate) fn probability_rows(
    model: &Model,
    endpoint: &str,
    answer: &Value,
    expected: usize,
) -> Result<Vec<Vec<f64>>> {
    let classes = model.classes();
    let k = classes.len();
    let (rows, order): (&Value, Vec<usize>) = match answer {
        Value::Object(o) => {
            let rows = o
                .get("probabilities")
                .ok_or_else(|| decode_err(endpoint, "an object answer needs a \"probabilities\" field".into()))?;
            let order = match o.get("classes") {
                None => (0..k).collect(),
                Some(Value::Array(ids)) => {
                    let mut order = Vec::with_capacity(ids.len());
                    for id in ids {
                        let j = class_index(classes, id).ok_or_else(|| {
                            decode_err(
                                endpoint,
                                format!("answer class {id} is not one of the model's classes ({})", classes.join(", ")),
                            )
                        })?;
                        order.push(j as usize);
                    }
                    let mut sorted = order.clone();
                    sorted.sort_unstable();
                    sorted.dedup();
                    if sorted.len() != k || order.len() != k {
                        return Err(decode_err(
                            endpoint,
                            format!("answer classes {} do not match the model's {k} classes", Value::from(ids.clone())),
                        ));
                    }
                    order
                }
                Some(other) => {
                    return Err(decode_err(endpoint, format!("\"classes\" must be an array, got {}", json_type(other))))
                }
            };
            (rows, order)
        }
        other => (other, (0..k).collect()),
    };
    let rows = rows.as_array().ok_or_else(|| {
        decode_err(endpoint, format!("expected an array of probability rows, got {}", json_type(rows)))
    })?;
    if rows.len() != expected {
        return Err(decode_err(endpoint, format!("{} probability rows for {expected} records", rows.len())));
    }
    let mut out = Vec::with_capacity(expected);
    for (i, row) in rows.iter().enumerate() {
        let cells = row.as_array().filter(|c| c.len() == k).ok_or_else(|| {
            decode_err(endpoint, format!("probability row [{i}] is not an array of {k} numbers (one per class)"))
        })?;
        let mut values = vec![0.0; k];
        for (cell, &j) in cells.iter().zip(&order) {
            values[j] = cell
                .as_f64()
                .ok_or_else(|| decode_err(endpoint, format!("probability row [{i}] holds {cell}, not a number")))?;
        }
        out.push(values);
    }
    Ok(out)
}

/// Stacks probability rows into [`Probabilities`].
pub(crate) fn probabilities(model: &Model, rows: Vec<Vec<f64>>) -> Result<Probabilities> {
    let k = model.classes().len();
    let n = rows.len();
    let values = Array2::from_shape_vec((n, k), rows.into_iter().flatten().collect()).map_err(|e| {
        WharfError::backend(crate::error::ADAPTER, format!("probabilities do not form a matrix: {e}"), None)
    })?;
    Ok(Probabilities { classes: model.classes().to_vec(), values })
}
