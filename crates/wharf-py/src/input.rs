//! Python values → [`Records`]. Two of the shapes Wharf checks against the signature: the
//! matrix (which the Python half also encodes pandas, pyarrow and dict inputs into, levels
//! looked up by index) and JSON rows. The dtype rules live in the Python half.

use numpy::PyReadonlyArray2;
use pyo3::prelude::*;
use wharf_core::{Records, Row};

use crate::errors::SignatureError;

/// A float64 matrix in signature order (categorical cells hold level indices), borrowed
/// where it lies with whatever strides it has: a pandas frame's float block is column-major,
/// and copying 100k x 20 cells of fresh memory cost more than scoring them. The borrow `x`
/// holds keeps the array alive (and other Rust code from writing it) for as long as the
/// records live, which is across the GIL-free scoring call.
pub fn matrix<'a>(x: &'a PyReadonlyArray2<'_, f64>) -> Records<'a> {
    Records::from(x.as_array())
}

/// Named rows as a JSON array of objects (Python's `json.dumps` of a list of dicts).
pub fn rows(json: &str) -> PyResult<Records<'static>> {
    let rows: Vec<Row> = serde_json::from_str(json)
        .map_err(|e| SignatureError::new_err(format!("records must be a list of dicts of JSON values: {e}")))?;
    Ok(Records::Rows(rows))
}
