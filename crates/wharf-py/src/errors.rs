//! `WharfError` → Python exceptions, and the panic guard at the FFI edge.
//!
//! Each exception carries `path` (Wharf's field path, `columns.industry[7]`), `column` and
//! `row` when the error names them, so callers can react without parsing messages.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use wharf_core::scoring::locate;

create_exception!(wharf, WharfError, PyException, "Base of every error Wharf raises.");
create_exception!(
    wharf,
    SignatureError,
    WharfError,
    "The input does not match the model's signature: a column is missing, extra, misspelt or of the wrong type."
);
create_exception!(wharf, ArtifactError, WharfError, "A model file is damaged, foreign, or written by a newer format.");
create_exception!(wharf, NotFoundError, WharfError, "A model file, name, version or alias does not exist.");
create_exception!(
    wharf,
    UnsupportedError,
    WharfError,
    "The model cannot do what was asked (probabilities from a regressor)."
);
create_exception!(wharf, BackendError, WharfError, "An outside system failed.");
create_exception!(wharf, InternalError, WharfError, "A bug in Wharf: a Rust panic stopped at the Python boundary.");

/// Adds the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("WharfError", py.get_type::<WharfError>())?;
    m.add("SignatureError", py.get_type::<SignatureError>())?;
    m.add("ArtifactError", py.get_type::<ArtifactError>())?;
    m.add("NotFoundError", py.get_type::<NotFoundError>())?;
    m.add("UnsupportedError", py.get_type::<UnsupportedError>())?;
    m.add("BackendError", py.get_type::<BackendError>())?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    Ok(())
}

/// The Python exception for a Wharf error, with its location attributes set.
pub fn to_py(py: Python<'_>, err: wharf_core::WharfError) -> PyErr {
    let message = err.to_string();
    let path = match &err {
        wharf_core::WharfError::SchemaMismatch { path, .. } | wharf_core::WharfError::InvalidInput { path, .. } => {
            Some(path.clone())
        }
        _ => None,
    };
    let (row, column) = match locate(&err) {
        Some((row, column)) => (Some(row), column),
        // An error about a field of no record in particular (`columns.industry`): the path is
        // the field.
        None => (None, path.as_deref().map(|p| p.strip_prefix("columns.").unwrap_or(p).to_string())),
    };
    // A bad value outside the records (a model name, an alias) is not a signature problem.
    let about_records =
        row.is_some() || path.as_deref().is_some_and(|p| p.starts_with("columns") || p.starts_with("records"));
    let py_err = match err {
        wharf_core::WharfError::SchemaMismatch { .. } => SignatureError::new_err(message),
        wharf_core::WharfError::InvalidInput { .. } if about_records => SignatureError::new_err(message),
        wharf_core::WharfError::Artifact { .. } => ArtifactError::new_err(message),
        wharf_core::WharfError::NotFound { .. } => NotFoundError::new_err(message),
        wharf_core::WharfError::Unsupported(_) => UnsupportedError::new_err(message),
        wharf_core::WharfError::Backend { .. } => BackendError::new_err(message),
        _ => WharfError::new_err(message),
    };
    let value = py_err.value(py);
    // Setting attributes on a fresh exception instance cannot fail short of memory; an
    // exception without them is still the right exception.
    let _ = value.setattr("path", path);
    let _ = value.setattr("row", row);
    let _ = value.setattr("column", column);
    py_err
}

/// Runs `f`, turning a panic into `wharf.InternalError` instead of letting it unwind into
/// the interpreter.
pub fn guard<T>(f: impl FnOnce() -> T + std::panic::UnwindSafe) -> PyResult<T> {
    std::panic::catch_unwind(f).map_err(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        InternalError::new_err(format!("internal error in Wharf (please report it): {what}"))
    })
}
