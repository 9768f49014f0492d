//! The files a logged model is stored as under a run's artifacts, MLflow style:
//!
//! ```text
//! <artifact>/model.wharf   the Wharf artifact (header + payload + SHA-256)
//! <artifact>/MLmodel       metadata MLflow's UI shows: flavors, signature, run id
//! ```
//!
//! `MLmodel` is written as JSON, which is valid YAML, so MLflow and its UI read it while the
//! adapter needs no YAML library. Besides MLflow's fields it carries a `wharf` section (the
//! signature in Wharf's own terms, algorithm, metrics, tags) so a registry can describe a
//! version without downloading the model itself.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use wharf_core::FeatureKind;
use wharf_core::{artifact, Model, Result, Signature, WharfError};

/// File name of the Wharf artifact inside a logged model's directory.
pub const MODEL_FILE: &str = "model.wharf";
/// File name of the metadata file inside a logged model's directory.
pub const MLMODEL_FILE: &str = "MLmodel";

/// The Python module MLflow's `python_function` flavor loads a Wharf model with (from the
/// `wharf-models` distribution, crates/wharf-py).
pub const PYFUNC_LOADER_MODULE: &str = "wharf.pyfunc";
/// The Python distribution that provides [`PYFUNC_LOADER_MODULE`].
pub const PYFUNC_DISTRIBUTION: &str = "wharf-models";

/// What a registry needs to describe a version, kept in `MLmodel` under `wharf` (and, when
/// small enough, in a model-version tag so listing needs no downloads).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WharfSection {
    /// SHA-256 of the artifact's payload.
    pub sha256: String,
    /// Algorithm.
    pub algorithm: String,
    /// The model's signature.
    pub signature: Signature,
    /// Metrics recorded with the model.
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// Tags recorded with the model.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// When the model was fitted.
    pub created_at: DateTime<Utc>,
}

impl WharfSection {
    /// The section describing `model`, whose artifact payload hashes to `sha256`.
    pub fn of(model: &Model, sha256: String) -> Self {
        let meta = model.metadata();
        WharfSection {
            sha256,
            algorithm: meta.algorithm.clone(),
            signature: meta.signature.clone(),
            // JSON has no NaN: a non-finite metric would make the file unreadable.
            metrics: meta.metrics.iter().filter(|(_, v)| v.is_finite()).map(|(k, v)| (k.clone(), *v)).collect(),
            tags: meta.tags.clone(),
            created_at: meta.created_at,
        }
    }
}

/// A model encoded for upload: the artifact bytes, its checksum and the `MLmodel` text.
pub struct LoggedModel {
    /// The `.wharf` artifact.
    pub artifact: Vec<u8>,
    /// SHA-256 of its payload, hex.
    pub sha256: String,
    /// The `wharf` section.
    pub section: WharfSection,
    /// The `MLmodel` file.
    pub mlmodel: Vec<u8>,
}

/// The pip requirements MLflow reads from a model directory
/// (`mlflow.pyfunc.get_model_dependencies`, `mlflow models serve` building an environment).
pub const REQUIREMENTS_FILE: &str = "requirements.txt";

impl LoggedModel {
    /// The model directory's files, by name: the artifact, `MLmodel`, and `requirements.txt`
    /// naming the Python package the `python_function` flavor loads with. The artifact and
    /// `MLmodel` bytes are handed over (left empty here), as they are uploaded once.
    pub fn take_files(&mut self) -> [(&'static str, Vec<u8>); 3] {
        let requirements = format!("{PYFUNC_DISTRIBUTION}=={}\n", env!("CARGO_PKG_VERSION")).into_bytes();
        [
            (MODEL_FILE, std::mem::take(&mut self.artifact)),
            (MLMODEL_FILE, std::mem::take(&mut self.mlmodel)),
            (REQUIREMENTS_FILE, requirements),
        ]
    }
}

/// Encodes `model` for logging as `artifact_path` under run `run_id`.
pub fn encode(model: &Model, artifact_path: &str, run_id: &str) -> Result<LoggedModel> {
    let bytes = artifact::encode(model)?;
    let header = artifact::read_header(&bytes).map_err(|kind| WharfError::artifact("<encoded>", kind))?;
    let sha256 = header.sha256_hex();
    let section = WharfSection::of(model, sha256.clone());
    let meta = model.metadata();
    let inputs: Vec<serde_json::Value> = meta
        .signature
        .features
        .iter()
        .map(|f| match &f.kind {
            FeatureKind::Numeric => json!({ "type": "double", "name": f.name, "required": true }),
            _ => json!({ "type": "string", "name": f.name, "required": true }),
        })
        .collect();
    let outputs = match meta.signature.task {
        wharf_core::Task::Regression => json!([{ "type": "double", "required": true }]),
        wharf_core::Task::Clustering => json!([{ "type": "long", "required": true }]),
        _ => json!([{ "type": "string", "required": true }]),
    };
    let doc = json!({
        "artifact_path": artifact_path,
        "run_id": run_id,
        "utc_time_created": Utc::now().format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        "flavors": {
            "wharf": {
                "wharf_version": env!("CARGO_PKG_VERSION"),
                "data": MODEL_FILE,
                "format_version": header.format_version,
                "sha256": sha256,
                "algorithm": meta.algorithm,
            },
            // `mlflow.pyfunc.load_model` imports the Python package's loader module and
            // hands it the artifact (`pip install wharf-models` of the same version).
            "python_function": {
                "loader_module": PYFUNC_LOADER_MODULE,
                "data": MODEL_FILE,
                "wharf_models_requirement": format!("{PYFUNC_DISTRIBUTION}=={}", env!("CARGO_PKG_VERSION")),
            }
        },
        // MLflow's signature format: column specs as JSON *strings*.
        "signature": {
            "inputs": serde_json::Value::String(serde_json::Value::Array(inputs).to_string()),
            "outputs": serde_json::Value::String(outputs.to_string()),
        },
        "wharf": section,
    });
    let mlmodel = serde_json::to_vec_pretty(&doc).map_err(|e| WharfError::invalid("model", e.to_string()))?;
    Ok(LoggedModel { artifact: bytes, sha256, section, mlmodel })
}

/// Reads the `wharf` section back from an `MLmodel` file.
pub fn read_section(mlmodel: &[u8]) -> Result<WharfSection> {
    #[derive(Deserialize)]
    struct Doc {
        wharf: WharfSection,
    }
    let doc: Doc = serde_json::from_slice(mlmodel)
        .map_err(|e| WharfError::invalid(MLMODEL_FILE, format!("not an MLmodel file written by Wharf: {e}")))?;
    Ok(doc.wharf)
}

/// Checks an artifact name used as a directory under the run: the same rule as model names,
/// so it is one safe path segment on every store.
pub fn validate_artifact_name(name: &str) -> Result<()> {
    wharf_core::ports::registry::validate_name(name).map_err(|_| {
        WharfError::invalid("artifact", format!("'{name}' is not a valid artifact name (1-128 of A-Z a-z 0-9 . _ -)"))
    })
}
