//! Python values → [`Records`]. Two of the shapes Wharf checks against the signature: the
//! matrix (which the Python half also encodes pandas, pyarrow and dict inputs into, levels
//! looked up by index) and JSON rows. The dtype rules live in the Python half.

use numpy::PyReadonlyArray2;
use pyo3::prelude::*;
use wharf_core::{Records, Row};

use crate::errors::SignatureError;

/// A float64 matrix in signature order (categorical cells hold level indices).
pub fn matrix(x: PyReadonlyArray2<'_, f64>) -> Records {
    Records::Matrix(x.as_array().to_owned())
}

/// Named rows as a JSON array of objects (Python's `json.dumps` of a list of dicts).
pub fn rows(json: &str) -> PyResult<Records> {
    let rows: Vec<Row> = serde_json::from_str(json)
        .map_err(|e| SignatureError::new_err(format!("records must be a list of dicts of JSON values: {e}")))?;
    Ok(Records::Rows(rows))
}
