//! Preprocessing fitted at training time and saved inside the model: mean imputation and
//! standard scaling of numeric features, one-hot encoding of categorical ones.
//!
//! Keeping it in the artifact is what prevents training/serving skew: a served model gets
//! raw records and applies exactly the transformation it was trained with.

use ndarray::Array2;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use wharf_core::{excerpt, format_number, json_type, Column, Frame, Records, Row};
use wharf_core::{Feature, FeatureKind, Signature};
use wharf_core::{Result, WharfError};

/// How one feature becomes design-matrix columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Step {
    /// `(x - mean) / scale`; a missing value becomes the mean, i.e. 0 after scaling.
    Scale { mean: f64, scale: f64 },
    /// One column per level; a missing value is all zeros.
    OneHot,
}

/// The fitted preprocessing, one step per signature feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Preprocessor {
    pub(crate) steps: Vec<Step>,
}

impl Preprocessor {
    /// Learns the features and their steps from a training frame. Numeric columns become
    /// numeric features, text columns categorical ones. A categorical feature's levels are
    /// those in the frame plus any declared in `levels` (so a rare level that a holdout split
    /// put only in the test part is still known).
    pub(crate) fn fit(
        frame: &Frame,
        levels: &std::collections::BTreeMap<String, Vec<String>>,
    ) -> Result<(Vec<Feature>, Preprocessor)> {
        let mut features = Vec::new();
        let mut steps = Vec::new();
        for (name, column) in frame.columns() {
            match column {
                Column::Numeric(values) => {
                    let present: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
                    if present.iter().any(|v| !v.is_finite()) {
                        return Err(WharfError::invalid(name.as_str(), "contains an infinite value"));
                    }
                    let n = present.len() as f64;
                    let mean = if present.is_empty() { 0.0 } else { present.iter().sum::<f64>() / n };
                    let var = if present.is_empty() {
                        0.0
                    } else {
                        present.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n
                    };
                    let sd = var.sqrt();
                    let scale = if sd > 0.0 && sd.is_finite() { sd } else { 1.0 };
                    features.push(Feature::numeric(name.as_str()));
                    steps.push(Step::Scale { mean, scale });
                }
                Column::Text(values) => {
                    let declared = levels.get(name).into_iter().flatten();
                    let mut levels: Vec<String> = values.iter().flatten().chain(declared).cloned().collect();
                    levels.sort();
                    levels.dedup();
                    features.push(Feature::categorical(name.as_str(), levels));
                    steps.push(Step::OneHot);
                }
            }
        }
        Ok((features, Preprocessor { steps }))
    }

    /// Width of the design matrix for `signature`.
    pub(crate) fn width(signature: &Signature) -> usize {
        signature
            .features
            .iter()
            .map(|f| match &f.kind {
                FeatureKind::Numeric => 1,
                FeatureKind::Categorical { levels } => levels.len(),
                // A feature kind this crate does not know: `check` refuses such a model.
                _ => 0,
            })
            .sum()
    }

    /// Checks that the steps agree with the signature (used when loading an artifact).
    pub(crate) fn check(&self, signature: &Signature) -> std::result::Result<(), String> {
        if self.steps.len() != signature.features.len() {
            return Err("preprocessing does not match the signature".into());
        }
        for (step, feature) in self.steps.iter().zip(&signature.features) {
            let ok = match (step, &feature.kind) {
                (Step::Scale { mean, scale }, FeatureKind::Numeric) => {
                    mean.is_finite() && scale.is_finite() && *scale != 0.0
                }
                (Step::OneHot, FeatureKind::Categorical { .. }) => true,
                _ => false,
            };
            if !ok {
                return Err(format!("invalid preprocessing for feature '{}'", feature.name));
            }
        }
        Ok(())
    }

    /// Validates `records` against `signature` and returns the design matrix.
    pub(crate) fn transform(&self, signature: &Signature, records: &Records) -> Result<Array2<f64>> {
        let width = Self::width(signature);
        let n = records.len();
        let mut out = Array2::<f64>::zeros((n, width));
        match records {
            Records::Matrix(m) => {
                if m.ncols() != signature.features.len() {
                    return Err(WharfError::schema(
                        "records",
                        format!(
                            "matrix has {} columns, the model takes {} features ({})",
                            m.ncols(),
                            signature.features.len(),
                            signature.feature_names().collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
                // Fast path for all-numeric signatures: a straight scaled copy, row by row.
                if self.steps.iter().all(|s| matches!(s, Step::Scale { .. })) {
                    for (src, mut dst) in m.rows().into_iter().zip(out.rows_mut()) {
                        for ((d, x), step) in dst.iter_mut().zip(src.iter()).zip(&self.steps) {
                            if let Step::Scale { mean, scale } = step {
                                *d = scaled(*x, *mean, *scale);
                            }
                        }
                    }
                    return Ok(out);
                }
                for (i, row) in m.rows().into_iter().enumerate() {
                    let mut out_row = out.row_mut(i);
                    let dst = out_row.as_slice_mut().expect("fresh arrays are contiguous");
                    let mut col = 0;
                    for (j, (step, feature)) in self.steps.iter().zip(&signature.features).enumerate() {
                        col += self.write_matrix_cell(step, feature, row[j], &mut dst[col..], i, j)?;
                    }
                }
            }
            Records::Rows(rows) => {
                for (i, row) in rows.iter().enumerate() {
                    check_fields(signature, row, i)?;
                    let mut out_row = out.row_mut(i);
                    let dst = out_row.as_slice_mut().expect("fresh arrays are contiguous");
                    let mut col = 0;
                    for (step, feature) in self.steps.iter().zip(&signature.features) {
                        let path = || format!("records[{i}].{}", feature.name);
                        let value =
                            row.get(&feature.name).ok_or_else(|| WharfError::schema(path(), "missing field"))?;
                        col += write_json_cell(step, feature, value, &mut dst[col..], path)?;
                    }
                }
            }
            Records::Columns(frame) => {
                let mut col = 0;
                for (step, feature) in self.steps.iter().zip(&signature.features) {
                    let column = frame
                        .column(&feature.name)
                        .ok_or_else(|| WharfError::schema(format!("columns.{}", feature.name), "missing column"))?;
                    col += write_column(step, feature, column, &mut out, col)?;
                }
            }
            _ => return Err(WharfError::Unsupported("records of this shape for a built-in estimator".into())),
        }
        Ok(out)
    }

    fn write_matrix_cell(
        &self,
        step: &Step,
        feature: &Feature,
        x: f64,
        dst: &mut [f64],
        i: usize,
        j: usize,
    ) -> Result<usize> {
        match (step, &feature.kind) {
            (Step::Scale { mean, scale }, _) => {
                dst[0] = scaled(x, *mean, *scale);
                Ok(1)
            }
            (Step::OneHot, FeatureKind::Categorical { levels }) => {
                if !x.is_nan() {
                    if x.fract() != 0.0 || x < 0.0 || x >= levels.len() as f64 {
                        return Err(WharfError::schema(
                            format!("records[{i}][{j}]"),
                            format!(
                                "'{}' is categorical: expected a level index in 0..{}, found {x}",
                                feature.name,
                                levels.len()
                            ),
                        ));
                    }
                    dst[x as usize] = 1.0;
                }
                Ok(levels.len())
            }
            (Step::OneHot, _) => unreachable!("checked when the model was built"),
        }
    }
}

/// One numeric cell after scaling; a missing value (`NaN`) becomes the mean, i.e. 0.
#[inline]
pub(crate) fn scaled(x: f64, mean: f64, scale: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        (x - mean) / scale
    }
}

fn check_fields(signature: &Signature, row: &Row, i: usize) -> Result<()> {
    match row.keys().find(|k| signature.position(k).is_none()) {
        Some(extra) => Err(WharfError::schema(
            format!("records[{i}].{extra}"),
            format!("unknown field; the model takes: {}", signature.feature_names().collect::<Vec<_>>().join(", ")),
        )),
        None => Ok(()),
    }
}

fn level_index(levels: &[String], value: &str, path: impl FnOnce() -> String) -> Result<usize> {
    levels.binary_search_by(|l| l.as_str().cmp(value)).map_err(|_| {
        let known: Vec<&str> = levels.iter().take(20).map(String::as_str).collect();
        WharfError::invalid(
            path(),
            format!("unknown level '{}' (levels seen in training: {})", excerpt(value), known.join(", ")),
        )
    })
}

fn write_json_cell(
    step: &Step,
    feature: &Feature,
    value: &Value,
    dst: &mut [f64],
    path: impl Fn() -> String,
) -> Result<usize> {
    match (step, &feature.kind) {
        (Step::Scale { mean, scale }, _) => {
            let x = match value {
                Value::Null => f64::NAN,
                Value::Number(num) => num.as_f64().unwrap_or(f64::NAN),
                other => {
                    return Err(WharfError::schema(path(), format!("expected a number, found {}", json_type(other))))
                }
            };
            dst[0] = scaled(x, *mean, *scale);
            Ok(1)
        }
        (Step::OneHot, FeatureKind::Categorical { levels }) => {
            let text = match value {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                Value::Number(num) => Some(format_number(num.as_f64().unwrap_or(f64::NAN))),
                Value::Bool(b) => Some(b.to_string()),
                other => {
                    return Err(WharfError::schema(
                        path(),
                        format!("expected a string (categorical), found {}", json_type(other)),
                    ))
                }
            };
            if let Some(text) = text {
                dst[level_index(levels, &text, &path)?] = 1.0;
            }
            Ok(levels.len())
        }
        (Step::OneHot, _) => unreachable!("checked when the model was built"),
    }
}

fn write_column(step: &Step, feature: &Feature, column: &Column, out: &mut Array2<f64>, col: usize) -> Result<usize> {
    let path = |i: usize| format!("columns.{}[{i}]", feature.name);
    match (step, &feature.kind) {
        (Step::Scale { mean, scale }, _) => {
            match column {
                Column::Numeric(values) => {
                    for (i, x) in values.iter().enumerate() {
                        out[(i, col)] = scaled(*x, *mean, *scale);
                    }
                }
                Column::Text(values) => {
                    for (i, x) in values.iter().enumerate() {
                        let x = match x {
                            None => f64::NAN,
                            Some(s) if s.trim().is_empty() => f64::NAN,
                            Some(s) => s.trim().parse::<f64>().map_err(|_| {
                                WharfError::schema(path(i), format!("expected a number, found '{}'", excerpt(s)))
                            })?,
                        };
                        out[(i, col)] = scaled(x, *mean, *scale);
                    }
                }
            }
            Ok(1)
        }
        (Step::OneHot, FeatureKind::Categorical { levels }) => {
            for i in 0..column.len() {
                let text = match column {
                    Column::Numeric(v) if v[i].is_nan() => None,
                    Column::Numeric(v) => Some(format_number(v[i])),
                    Column::Text(v) => v[i].clone().filter(|s| !s.is_empty()),
                };
                if let Some(text) = text {
                    out[(i, col + level_index(levels, &text, || path(i))?)] = 1.0;
                }
            }
            Ok(levels.len())
        }
        (Step::OneHot, _) => unreachable!("checked when the model was built"),
    }
}
