//! Records → the row-major `f64` rows an [`Ensemble`](crate::Ensemble) scores, checked
//! against the signature with errors that name the record and field.
//!
//! A tree ensemble has its own rules for missing values (each split's default side), so a
//! missing value is passed on as NaN rather than imputed: JSON `null`, an empty CSV cell or
//! a NaN in a matrix. A missing *field* is still an error, as for every Wharf model, so a
//! misspelt column cannot silently score as all-missing.

use std::borrow::Cow;

use ndarray::{ArrayView2, Axis};
use serde_json::Value;
use wharf_core::{json_type, Column, Feature, FeatureKind, Records, Result, Signature, WharfError};

/// The records as rows of `signature.features.len()` values each, in signature order: a
/// row-major matrix as it lies (no copy), anything else copied into that layout.
pub(crate) fn rows<'r>(signature: &Signature, records: &'r Records<'_>) -> Result<Cow<'r, [f64]>> {
    rows_with(signature, records, &[])
}

/// [`rows`] for a model whose feature `j` is a string column when `strings[j]` is
/// `Some(unknown_allowed)` (an imported ONNX model's string input): a number in a record
/// (JSON, CSV) is that column's text (`7` is the string `"7"`), not a code, and with
/// `unknown_allowed` a text that is none of the levels is missing (NaN) rather than an
/// error: the ONNX encoder's rule for an unknown string (zeros, or its default), which NaN
/// gives since it matches no code.
pub(crate) fn rows_with<'r>(
    signature: &Signature,
    records: &'r Records<'_>,
    strings: &[Option<bool>],
) -> Result<Cow<'r, [f64]>> {
    let string = |j: usize| strings.get(j).copied().flatten();
    let allowed = |j: usize| string(j).unwrap_or(false);
    let width = signature.features.len();
    let n = records.len();
    match records {
        Records::Matrix(m) => {
            if m.ncols() != width {
                return Err(WharfError::schema(
                    "records",
                    format!(
                        "matrix has {} columns, the model takes {width} features ({})",
                        m.ncols(),
                        signature.feature_names().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            Ok(match m.as_slice() {
                Some(values) => Cow::Borrowed(values),
                None => Cow::Owned(row_major(m.view())),
            })
        }
        Records::Rows(rows) => {
            let mut out = Vec::with_capacity(n * width);
            for (i, row) in rows.iter().enumerate() {
                if let Some(extra) = row.keys().find(|k| signature.position(k).is_none()) {
                    return Err(WharfError::schema(
                        format!("records[{i}].{extra}"),
                        format!(
                            "unknown field; the model takes: {}",
                            signature.feature_names().collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
                for (j, feature) in signature.features.iter().enumerate() {
                    let path = || format!("records[{i}].{}", feature.name);
                    out.push(match row.get(&feature.name) {
                        None => return Err(WharfError::schema(path(), "missing field")),
                        Some(Value::Null) => f64::NAN,
                        Some(Value::Number(x)) if string(j).is_some() => {
                            level(feature, &x.to_string(), allowed(j), path)?
                        }
                        Some(Value::Number(x)) => x.as_f64().unwrap_or(f64::NAN),
                        Some(Value::String(text)) if levels(feature).is_some() => {
                            level(feature, text, allowed(j), path)?
                        }
                        Some(other) => {
                            return Err(WharfError::schema(
                                path(),
                                format!("expected a number (or null for missing), found {}", json_type(other)),
                            ))
                        }
                    });
                }
            }
            Ok(Cow::Owned(out))
        }
        Records::Columns(frame) => {
            let mut out = vec![f64::NAN; n * width];
            for (j, feature) in signature.features.iter().enumerate() {
                let column = frame
                    .column(&feature.name)
                    .ok_or_else(|| WharfError::schema(format!("columns.{}", feature.name), "missing column"))?;
                match column {
                    Column::Numeric(values) if string(j).is_some() => {
                        for (i, x) in values.iter().enumerate() {
                            let path = || format!("columns.{}[{i}]", feature.name);
                            out[i * width + j] =
                                if x.is_nan() { f64::NAN } else { level(feature, &text_of(*x), allowed(j), path)? };
                        }
                    }
                    Column::Numeric(values) => {
                        for (i, x) in values.iter().enumerate() {
                            out[i * width + j] = *x;
                        }
                    }
                    Column::Text(values) => {
                        for (i, text) in values.iter().enumerate() {
                            out[i * width + j] = match text.as_deref().map(str::trim) {
                                None | Some("") => f64::NAN,
                                Some(text) if levels(feature).is_some() => {
                                    level(feature, text, allowed(j), || format!("columns.{}[{i}]", feature.name))?
                                }
                                Some(text) => text.parse::<f64>().map_err(|_| {
                                    WharfError::schema(
                                        format!("columns.{}[{i}]", feature.name),
                                        format!("expected a number, found '{}'", wharf_core::excerpt(text)),
                                    )
                                })?,
                            };
                        }
                    }
                }
            }
            Ok(Cow::Owned(out))
        }
        _ => Err(WharfError::Unsupported("records of this shape for a tree ensemble".into())),
    }
}

/// A matrix in another layout (column-major, a slice of a wider one) copied row-major, a
/// column at a time, so a column-major source is read in order.
fn row_major(m: ArrayView2<'_, f64>) -> Vec<f64> {
    let width = m.ncols();
    let mut out = vec![0.0; m.nrows() * width];
    for (j, column) in m.axis_iter(Axis(1)).enumerate() {
        for (dst, x) in out[j..].iter_mut().step_by(width).zip(column) {
            *dst = *x;
        }
    }
    out
}

/// A number read from CSV as the text it was: `7` for 7.0, `2.5` for 2.5.
fn text_of(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        x.to_string()
    }
}

/// The levels of a categorical feature (a trained booster's text column).
fn levels(feature: &Feature) -> Option<&[String]> {
    match &feature.kind {
        FeatureKind::Categorical { levels } => Some(levels),
        _ => None,
    }
}

/// A text level as the category code the ensemble reads: its index among the feature's
/// (sorted) levels. A level not seen in training is an error, as for every Wharf model,
/// unless `unknown_allowed` (then it is missing).
fn level(feature: &Feature, text: &str, unknown_allowed: bool, path: impl FnOnce() -> String) -> Result<f64> {
    let levels = levels(feature).unwrap_or(&[]);
    let found = levels.binary_search_by(|l| l.as_str().cmp(text));
    if found.is_err() && unknown_allowed {
        return Ok(f64::NAN);
    }
    found.map(|i| i as f64).map_err(|_| {
        let known: Vec<&str> = levels.iter().take(20).map(String::as_str).collect();
        WharfError::schema(
            path(),
            format!("unknown level '{}' (levels seen in training: {})", wharf_core::excerpt(text), known.join(", ")),
        )
    })
}
