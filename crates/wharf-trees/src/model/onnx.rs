//! The model kind `wharf.onnx-pipeline` and the ONNX importer: an ONNX file compiled onto
//! Wharf's kernels ([`Pipeline`]) behind [`ModelKind`]. The artifact stores the checked
//! [`PipelineSpec`], never the protobuf; loading compiles it again through the same checks.

use std::any::Any;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use ndarray::Array2;
use serde::{Deserialize, Serialize};
use wharf_core::kind::{self, KindDecoder, ModelKind};
use wharf_core::{
    FeatureKind, Model, ModelMetadata, Predictions, Probabilities, Records, Result, Signature, Task, WharfError,
};

use super::import::{file_error, unique, ImportOptions};
use crate::onnx::{Head, OnnxModel, Pipeline, PipelineSpec};

/// The kind id stored in artifacts of imported ONNX models. Never changes.
pub const ONNX_KIND_ID: &str = "wharf.onnx-pipeline";

/// Bumped when [`Body`] changes, so an artifact of another layout is refused, not misread.
const PAYLOAD_VERSION: u32 = 1;

pub(crate) fn register() {
    kind::register(KindDecoder { id: ONNX_KIND_ID, provider: "wharf-trees", decode });
}

/// Where the pipeline came from: facts that do not change its scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Source {
    /// The model operator (`TreeEnsembleClassifier`, …).
    model_op: String,
    /// The file's producer (`skl2onnx 1.20.0`).
    producer: String,
}

#[derive(Serialize)]
struct BodyRef<'a> {
    spec: &'a PipelineSpec,
    source: &'a Source,
}

#[derive(Deserialize)]
struct Body {
    spec: PipelineSpec,
    source: Source,
}

fn decode(_: &ModelMetadata, bytes: &[u8]) -> std::result::Result<Arc<dyn ModelKind>, String> {
    let (version, body): (u32, Vec<u8>) = kind::decode_payload(bytes)?;
    if version != PAYLOAD_VERSION {
        return Err(format!(
            "onnx-pipeline payload version {version} is not supported (this build reads {PAYLOAD_VERSION})"
        ));
    }
    let Body { spec, source } = kind::decode_payload(&body)?;
    let pipeline = Pipeline::new(spec).map_err(|e| format!("onnx pipeline: {e}"))?;
    Ok(Arc::new(OnnxPipeline::new(pipeline, source)))
}

/// An imported ONNX model as a model kind: scores records through the compiled
/// [`Pipeline`], with ONNX Runtime's arithmetic.
///
/// A classifier's outputs are its probabilities in the order of the signature's classes
/// (the file's class labels); a regressor's one output is the value.
#[derive(Debug)]
pub struct OnnxPipeline {
    pipeline: Pipeline,
    source: Source,
    work: usize,
}

impl OnnxPipeline {
    fn new(pipeline: Pipeline, source: Source) -> Self {
        let work = match &pipeline.spec().head {
            Head::Trees { ensemble, .. } => ensemble.trees.len() * 4,
            Head::Linear { coefficients, .. } => coefficients.len() / 8,
        };
        OnnxPipeline { pipeline, source, work: work.max(1) }
    }

    /// The compiled pipeline.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The model operator the file holds (`TreeEnsembleClassifier`, `LinearClassifier`, …).
    pub fn model_op(&self) -> &str {
        &self.source.model_op
    }

    fn outputs(&self, signature: &Signature, records: &Records) -> Result<(usize, Vec<f64>)> {
        let x = super::input::rows(signature, records)?;
        let n = records.len();
        let mut out = vec![0.0; n * self.pipeline.n_outputs()];
        self.pipeline.predict(&x, &mut out).map_err(|e| WharfError::invalid("records", e.to_string()))?;
        Ok((n, out))
    }

    fn probabilities(&self, signature: &Signature, records: &Records) -> Result<Array2<f64>> {
        let (n, out) = self.outputs(signature, records)?;
        Array2::from_shape_vec((n, self.pipeline.n_outputs()), out)
            .map_err(|e| WharfError::invalid("records", e.to_string()))
    }
}

impl ModelKind for OnnxPipeline {
    fn kind_id(&self) -> &str {
        ONNX_KIND_ID
    }

    fn validate(&self, signature: &Signature, records: &Records) -> Result<()> {
        super::input::rows(signature, records).map(|_| ())
    }

    fn predict(&self, signature: &Signature, records: &Records) -> Result<Predictions> {
        super::answers::predictions(
            signature,
            || self.probabilities(signature, records),
            || Ok(self.outputs(signature, records)?.1),
        )
    }

    fn predict_proba(&self, signature: &Signature, records: &Records) -> Result<Probabilities> {
        super::answers::class_probabilities(signature, "ONNX model", || self.probabilities(signature, records))
    }

    fn encode(&self) -> Result<Vec<u8>> {
        let body = kind::encode_payload(&BodyRef { spec: self.pipeline.spec(), source: &self.source })?;
        kind::encode_payload(&(PAYLOAD_VERSION, body))
    }

    fn check(&self, sig: &Signature) -> std::result::Result<(), String> {
        let width = self.pipeline.width();
        if sig.features.len() != width {
            return Err(format!("the signature has {} features; the ONNX input has {width}", sig.features.len()));
        }
        if let Some(f) = sig.features.iter().find(|f| !matches!(f.kind, FeatureKind::Numeric)) {
            return Err(format!("feature '{}' must be numeric: the ONNX input is a float tensor", f.name));
        }
        let spec = self.pipeline.spec();
        match sig.task {
            Task::Classification => {
                if sig.classes.len() != spec.classes.len() || !spec.is_classifier() {
                    return Err(format!(
                        "the signature has {} classes; the ONNX model has {}",
                        sig.classes.len(),
                        spec.classes.len()
                    ));
                }
            }
            Task::Regression => {
                if spec.is_classifier() || !sig.classes.is_empty() {
                    return Err("the ONNX model is a classifier; the signature says regression".into());
                }
            }
            other => return Err(format!("an ONNX pipeline cannot be a {other} model")),
        }
        Ok(())
    }

    fn work_per_row(&self) -> usize {
        self.work
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Imports an ONNX model (scikit-learn through skl2onnx: `to_onnx(model, X[:1])`).
pub fn onnx(path: impl AsRef<Path>) -> Result<Model> {
    onnx_with(path, &ImportOptions::default())
}

/// Imports an ONNX model with feature names (the input tensor's columns have none) or class
/// labels of the caller's. Labels replace the file's, one for one: a different count is an
/// error, as are labels for a regressor.
pub fn onnx_with(path: impl AsRef<Path>, options: &ImportOptions) -> Result<Model> {
    super::register();
    let path = path.as_ref();
    let file = path.display().to_string();
    let imported = crate::onnx::read(path).map_err(|e| file_error(&file, e))?;
    let source = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or(file);
    build(imported, options, &source)
}

fn build(imported: OnnxModel, options: &ImportOptions, source_file: &str) -> Result<Model> {
    let OnnxModel { pipeline, feature_names, classes, model_op, producer, .. } = imported;
    let width = pipeline.width();
    let names = match &options.features {
        Some(names) if names.len() != width => {
            return Err(WharfError::invalid(
                "features",
                format!("{} names given; the ONNX input has {width} columns", names.len()),
            ))
        }
        Some(names) => names.clone(),
        None => feature_names,
    };
    unique(&names, "features")?;
    let task = if classes.is_empty() { Task::Regression } else { Task::Classification };
    let classes = match (&options.classes, task) {
        (Some(_), Task::Regression) => {
            return Err(WharfError::invalid(
                "classes",
                format!("the model is a regressor ({model_op}); it has no classes"),
            ))
        }
        (Some(labels), _) if labels.len() != classes.len() => {
            return Err(WharfError::invalid(
                "classes",
                format!(
                    "{} labels given; the file's {model_op} has {} classes ({})",
                    labels.len(),
                    classes.len(),
                    classes.join(", ")
                ),
            ))
        }
        (Some(labels), _) => labels.clone(),
        (None, _) => classes,
    };
    unique(&classes, "classes")?;
    let algorithm = match &pipeline.spec().head {
        Head::Trees { .. } => "onnx-trees",
        _ => "onnx-linear",
    };
    let mut params = BTreeMap::new();
    params.insert("operator".to_string(), model_op.clone());
    params.insert("stages".to_string(), pipeline.spec().stages.len().to_string());
    if let Some(e) = pipeline.ensemble() {
        params.insert("n_trees".to_string(), e.n_trees().to_string());
    }
    let mut tags = BTreeMap::new();
    tags.insert("imported".to_string(), "ONNX".to_string());
    tags.insert("operator".to_string(), model_op.clone());
    tags.insert("producer".to_string(), producer.clone());
    let data_source = format!("ONNX model file {source_file} ({producer})");
    let metadata = super::import::imported_metadata(&names, task, classes, algorithm, params, tags, data_source);
    let kind = OnnxPipeline::new(pipeline, Source { model_op, producer });
    Model::new(metadata, Arc::new(kind))
}
