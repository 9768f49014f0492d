//! Arrow columns in, a model's input matrix and Arrow columns out.
//!
//! A batch becomes one row-major `f64` matrix in the model's feature order, written straight
//! from the Arrow buffers: numbers as they are, categorical text as the index of its level
//! (the form [`Records::Matrix`] takes). That is one allocation per batch and none per row,
//! and it is the input the model's compiled scoring kernel reads without further copies.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayAccessor, ArrayRef, AsArray, Float64Array, StringBuilder, StructArray, UInt32Array,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Float64Type};
use datafusion::common::{exec_datafusion_err, exec_err, Result};
use ndarray::Array2;
use wharf_core::{Feature, FeatureKind, Model, Predictions, Probabilities, Records};

/// One batch, ready for the model.
pub(crate) struct ModelInput {
    /// The features of every row, in signature order; rows with a null are filled with
    /// missing values (`NaN`) and are scored only to be thrown away.
    pub(crate) records: Records<'static>,
    /// Which output rows are null: those with a null in any argument.
    pub(crate) nulls: Option<NullBuffer>,
}

/// True for the Arrow types a numeric feature takes (cast to `Float64`).
pub(crate) fn numeric_type(data_type: &DataType) -> bool {
    data_type.is_numeric()
}

/// True for the Arrow types a categorical feature takes: text, plain or dictionary-encoded.
pub(crate) fn text_type(data_type: &DataType) -> bool {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, values) => text_type(values),
        _ => false,
    }
}

/// True when `feature` accepts a column of `data_type`. A `NULL` literal fits any feature
/// (and makes every output null).
pub(crate) fn accepts(feature: &Feature, data_type: &DataType) -> bool {
    match &feature.kind {
        _ if *data_type == DataType::Null => true,
        FeatureKind::Numeric => numeric_type(data_type),
        FeatureKind::Categorical { .. } => text_type(data_type),
        // A feature type added later: refused at plan time until this crate knows it.
        _ => false,
    }
}

/// Builds the model's input from `columns` (one per feature, already checked by type at plan
/// time). `call` names the function and model in errors.
pub(crate) fn model_input(call: &str, model: &Model, columns: &[ArrayRef], rows: usize) -> Result<ModelInput> {
    let features = &model.signature().features;
    if columns.len() != features.len() {
        return exec_err!("{call}: the model takes {} features, got {}", features.len(), columns.len());
    }
    let mut nulls: Option<NullBuffer> = None;
    for column in columns {
        if column.len() != rows {
            return exec_err!("{call}: an argument has {} rows, the batch has {rows}", column.len());
        }
        nulls = NullBuffer::union(nulls.as_ref(), column.logical_nulls().as_ref());
    }
    let is_null = |i: usize| nulls.as_ref().is_some_and(|n| n.is_null(i));

    let width = features.len();
    let mut values = vec![f64::NAN; rows * width];
    for (j, (feature, column)) in features.iter().zip(columns).enumerate() {
        if *column.data_type() == DataType::Null {
            continue;
        }
        let argument = j + 2;
        match &feature.kind {
            FeatureKind::Numeric => {
                let numbers = cast(column, &DataType::Float64)?;
                let numbers = numbers.as_primitive::<Float64Type>().values();
                for (i, x) in numbers.iter().enumerate() {
                    values[i * width + j] = *x;
                }
            }
            FeatureKind::Categorical { levels } => {
                let index: HashMap<&str, f64> =
                    levels.iter().enumerate().map(|(k, level)| (level.as_str(), k as f64)).collect();
                let mut write = |i: usize, text: &str| -> Result<()> {
                    match index.get(text) {
                        Some(k) => {
                            values[i * width + j] = *k;
                            Ok(())
                        }
                        None => exec_err!(
                            "{call}: argument {argument} (feature '{}') is '{text}', a level the model was \
                             not trained on (it knows: {})",
                            feature.name,
                            levels.join(", ")
                        ),
                    }
                };
                let mut each = |i: usize, text: &str| if is_null(i) { Ok(()) } else { write(i, text) };
                match column.data_type() {
                    DataType::Utf8 => each_text(column.as_string::<i32>(), &mut each)?,
                    DataType::LargeUtf8 => each_text(column.as_string::<i64>(), &mut each)?,
                    DataType::Utf8View => each_text(column.as_string_view(), &mut each)?,
                    DataType::Dictionary(..) => {
                        let text = cast(column, &DataType::Utf8View)?;
                        each_text(text.as_string_view(), &mut each)?
                    }
                    other => {
                        return exec_err!(
                            "{call}: argument {argument} (feature '{}') is categorical: expected text, got {other}",
                            feature.name
                        )
                    }
                }
            }
            _ => return exec_err!("{call}: feature '{}' has a type SQL scoring does not support", feature.name),
        }
    }
    let matrix = Array2::from_shape_vec((rows, width), values)
        .map_err(|e| exec_datafusion_err!("{call}: cannot shape the batch: {e}"))?;
    Ok(ModelInput { records: Records::Matrix(matrix.into()), nulls })
}

/// Calls `f(row, text)` for every non-null value of a text array.
fn each_text<'a, A>(array: A, f: &mut impl FnMut(usize, &str) -> Result<()>) -> Result<()>
where
    A: ArrayAccessor<Item = &'a str>,
{
    for i in 0..array.len() {
        if array.is_valid(i) {
            f(i, array.value(i))?;
        }
    }
    Ok(())
}

/// Predictions as one Arrow column: class labels as text, regression values as `Float64`,
/// cluster indices as `UInt32`; null where `nulls` says.
pub(crate) fn prediction_column(call: &str, predictions: Predictions, nulls: Option<NullBuffer>) -> Result<ArrayRef> {
    Ok(match predictions {
        Predictions::Classes { classes, indices } => {
            let bytes = classes.iter().map(String::len).max().unwrap_or(0) * indices.len();
            let mut labels = StringBuilder::with_capacity(indices.len(), bytes);
            for (i, k) in indices.iter().enumerate() {
                if nulls.as_ref().is_some_and(|n| n.is_null(i)) {
                    labels.append_null();
                    continue;
                }
                match classes.get(*k as usize) {
                    Some(label) => labels.append_value(label),
                    None => return exec_err!("{call}: the model predicted class {k} of {}", classes.len()),
                }
            }
            Arc::new(labels.finish())
        }
        Predictions::Values(values) => Arc::new(Float64Array::new(values.into(), nulls)),
        Predictions::Clusters(clusters) => Arc::new(UInt32Array::new(clusters.into(), nulls)),
    })
}

/// The struct type of [`probability_column`]: one nullable `Float64` field per class, named
/// by the class label.
pub(crate) fn probability_fields(classes: &[String]) -> Fields {
    classes.iter().map(|class| Field::new(class, DataType::Float64, true)).collect()
}

/// Probabilities as one struct column, one field per class. Each field carries the row nulls
/// too, so `get_field(p, 'yes')` is null exactly where the struct is.
pub(crate) fn probability_column(
    call: &str,
    probabilities: Probabilities,
    nulls: Option<NullBuffer>,
) -> Result<ArrayRef> {
    let fields = probability_fields(&probabilities.classes);
    let children: Vec<ArrayRef> = probabilities
        .values
        .columns()
        .into_iter()
        .map(|column| Arc::new(Float64Array::new(column.to_vec().into(), nulls.clone())) as ArrayRef)
        .collect();
    let array = StructArray::try_new(fields, children, nulls)
        .map_err(|e| exec_datafusion_err!("{call}: cannot build the probabilities: {e}"))?;
    Ok(Arc::new(array))
}
