//! `wharf._wharf`: the native half of the `wharf` Python package.
//!
//! Python hands over a float64 matrix in signature order (a categorical cell holding its
//! level's index) or JSON rows; the pure-Python half (`python/wharf/`) turns pandas, pyarrow
//! and dict inputs into that matrix, where the dtype rules are easiest to state and test and
//! the level lookup runs at C speed. Everything is scored through [`wharf_core::score`] on a
//! model server from [`wharf_core::ModelServers::local`]: the same path as the CLI, the
//! HTTP server and the batch jobs, so a prediction from Python equals theirs bit for bit.
//!
//! The GIL is released while scoring, and no Rust panic crosses into Python: every entry
//! point that runs Wharf code catches unwinding and raises `wharf.InternalError`.

#![warn(missing_docs)]

use pyo3::prelude::*;

mod errors;
mod input;
mod model;

/// The module `wharf._wharf`.
#[pymodule]
fn _wharf(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Artifacts name their model kind; the built-in kinds decode only once registered.
    wharf_ml::register();
    wharf_trees::register();
    m.add_class::<model::PyModel>()?;
    m.add_function(wrap_pyfunction!(model::load, m)?)?;
    m.add_function(wrap_pyfunction!(model::load_registered, m)?)?;
    m.add_function(wrap_pyfunction!(model::import_model, m)?)?;
    m.add_function(wrap_pyfunction!(model::_panic_for_test, m)?)?;
    m.add("FORMAT_VERSION", wharf_core::artifact::FORMAT_VERSION)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)
}
