//! `wharf._wharf.Model`: a loaded model on its own in-process model server.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use numpy::{IntoPyArray, PyReadonlyArray2};
use pyo3::prelude::*;
use wharf_core::{
    score, FileRegistry, Model, ModelRef, ModelServerPort, ModelServers, OnError, Predictions, Records, RegistryExt,
};

use wharf_trees::model::{lightgbm_with, xgboost_with, ImportOptions};

use crate::errors::{guard, to_py};
use crate::input;

/// A model ready to score. Immutable, so one instance can be shared by threads.
#[pyclass(frozen, name = "Model", module = "wharf._wharf")]
pub struct PyModel {
    server: Arc<dyn ModelServerPort>,
    model: Arc<Model>,
}

/// Predictions (a NumPy array: class indices, values or clusters) and, for classifiers,
/// the probability matrix.
type Scores<'py> = (Bound<'py, PyAny>, Option<Bound<'py, PyAny>>);

impl PyModel {
    fn serve(py: Python<'_>, model: Model) -> PyResult<PyModel> {
        let server =
            guard(std::panic::AssertUnwindSafe(|| ModelServers::local().serve(model)))?.map_err(|e| to_py(py, e))?;
        let model = server.model().ok_or_else(|| to_py(py, wharf_core::WharfError::NoModelLoaded))?;
        Ok(PyModel { server, model })
    }

    /// Scores `records` with the GIL released, through the one scoring path. Borrowed
    /// records stay valid without the GIL: the caller's array borrow outlives this call.
    fn run<'py>(&self, py: Python<'py>, records: &Records<'_>) -> PyResult<Scores<'py>> {
        let server = self.server.as_ref();
        let scored = py
            .detach(|| guard(AssertUnwindSafe(|| score(server, records, OnError::Fail))))?
            .map_err(|e| to_py(py, e))?;
        let predictions = match scored.predictions {
            Predictions::Classes { indices, .. } => indices.into_pyarray(py).into_any(),
            Predictions::Values(values) => values.into_pyarray(py).into_any(),
            Predictions::Clusters(clusters) => clusters.into_pyarray(py).into_any(),
        };
        let probabilities = scored.probabilities.map(|p| p.values.into_pyarray(py).into_any());
        Ok((predictions, probabilities))
    }
}

#[pymethods]
impl PyModel {
    /// Scores a float64 matrix in signature order.
    fn score_matrix<'py>(&self, py: Python<'py>, x: PyReadonlyArray2<'py, f64>) -> PyResult<Scores<'py>> {
        let records = input::matrix(&x);
        self.run(py, &records)
    }

    /// Scores rows given as a JSON array of objects.
    fn score_rows<'py>(&self, py: Python<'py>, rows_json: &str) -> PyResult<Scores<'py>> {
        let records = input::rows(rows_json)?;
        self.run(py, &records)
    }

    /// `classification`, `regression` or `clustering`.
    #[getter]
    fn task(&self) -> String {
        self.model.task().to_string()
    }

    /// Class labels, sorted; probability column `i` is `P(classes[i])`.
    #[getter]
    fn classes(&self) -> Vec<String> {
        self.model.classes().to_vec()
    }

    /// The signature as JSON text (the Python half parses it once).
    #[getter]
    fn signature_json(&self) -> PyResult<String> {
        serde_json::to_string(self.model.signature())
            .map_err(|e| crate::errors::InternalError::new_err(format!("signature: {e}")))
    }

    /// The metadata as JSON text.
    #[getter]
    fn metadata_json(&self) -> PyResult<String> {
        serde_json::to_string(self.model.metadata())
            .map_err(|e| crate::errors::InternalError::new_err(format!("metadata: {e}")))
    }
}

/// Loads a `.wharf` artifact (checked: magic bytes, format version, checksum).
#[pyfunction]
pub fn load(py: Python<'_>, path: std::path::PathBuf) -> PyResult<PyModel> {
    let model = py.detach(|| guard(AssertUnwindSafe(|| Model::load(&path))))?.map_err(|e| to_py(py, e))?;
    PyModel::serve(py, model)
}

/// Loads `name`, `name@version` or `name@alias` from a file registry directory.
#[pyfunction]
pub fn load_registered(py: Python<'_>, root: std::path::PathBuf, reference: &str) -> PyResult<PyModel> {
    let reference: ModelRef = reference.parse().map_err(|e| to_py(py, e))?;
    let model = py
        .detach(|| guard(AssertUnwindSafe(|| FileRegistry::new(root).load_ref(&reference))))?
        .map_err(|e| to_py(py, e))?;
    PyModel::serve(py, model)
}

/// Imports a model another library saved, as `wharf models import` does: `xgboost` (a
/// `save_model` JSON file) or `lightgbm` (a `save_model` text file), with optional feature
/// names and class labels for files that do not carry them.
#[pyfunction]
#[pyo3(signature = (format, path, features=None, classes=None))]
pub fn import_model(
    py: Python<'_>,
    format: &str,
    path: std::path::PathBuf,
    features: Option<Vec<String>>,
    classes: Option<Vec<String>>,
) -> PyResult<PyModel> {
    let mut options = ImportOptions::new();
    if let Some(features) = features {
        options = options.features(features);
    }
    if let Some(classes) = classes {
        options = options.classes(classes);
    }
    let model = match format {
        "xgboost" => py.detach(|| guard(AssertUnwindSafe(|| xgboost_with(&path, &options))))?,
        "lightgbm" => py.detach(|| guard(AssertUnwindSafe(|| lightgbm_with(&path, &options))))?,
        other => {
            return Err(to_py(
                py,
                wharf_core::WharfError::invalid("format", format!("'{other}': expected 'xgboost' or 'lightgbm'")),
            ))
        }
    }
    .map_err(|e| to_py(py, e))?;
    PyModel::serve(py, model)
}

/// Panics inside the guard, so the test suite can prove no panic crosses into Python.
#[pyfunction]
pub fn _panic_for_test() -> PyResult<()> {
    guard(|| panic!("deliberate panic from wharf._wharf._panic_for_test"))
}
