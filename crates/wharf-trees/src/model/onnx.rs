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
/// Version 1 (no string columns) is still read.
const PAYLOAD_VERSION: u32 = 2;

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

/// A string column of the row: its position, sorted levels (codes are their indices) and
/// whether an unknown string scores (as ONNX Runtime scores it) or is refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct TextColumn {
    index: usize,
    levels: Vec<String>,
    unknown_allowed: bool,
}

#[derive(Serialize)]
struct BodyRef<'a> {
    spec: &'a PipelineSpec,
    source: &'a Source,
    text: &'a [TextColumn],
}

#[derive(Deserialize)]
struct Body {
    spec: PipelineSpec,
    source: Source,
    text: Vec<TextColumn>,
}

/// Version 1's body: every column a number.
#[derive(Deserialize)]
struct BodyV1 {
    spec: PipelineSpec,
    source: Source,
}

fn decode(_: &ModelMetadata, bytes: &[u8]) -> std::result::Result<Arc<dyn ModelKind>, String> {
    let (version, body): (u32, Vec<u8>) = kind::decode_payload(bytes)?;
    let Body { spec, source, text } = match version {
        1 => {
            let BodyV1 { spec, source } = kind::decode_payload(&body)?;
            Body { spec, source, text: Vec::new() }
        }
        PAYLOAD_VERSION => kind::decode_payload(&body)?,
        _ => {
            return Err(format!(
                "onnx-pipeline payload version {version} is not supported (this build reads 1 and {PAYLOAD_VERSION})"
            ))
        }
    };
    let pipeline = Pipeline::new(spec).map_err(|e| format!("onnx pipeline: {e}"))?;
    OnnxPipeline::new(pipeline, source, text).map(|k| Arc::new(k) as Arc<dyn ModelKind>)
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
    text: Vec<TextColumn>,
    /// Per column: `Some(unknown_allowed)` for a string column (what [`input::rows_with`]
    /// reads).
    ///
    /// [`input::rows_with`]: super::input::rows_with
    strings: Vec<Option<bool>>,
    work: usize,
}

impl OnnxPipeline {
    fn new(pipeline: Pipeline, source: Source, text: Vec<TextColumn>) -> std::result::Result<Self, String> {
        let work = match &pipeline.spec().head {
            Head::Trees { ensemble, .. } => ensemble.trees.len() * 4,
            Head::Linear { coefficients, .. } => coefficients.len() / 8,
        };
        let mut strings = vec![None; pipeline.width()];
        for column in &text {
            let slot = strings
                .get_mut(column.index)
                .ok_or_else(|| format!("string column {} of a {}-column input", column.index, pipeline.width()))?;
            if slot.is_some() || column.levels.len() > crate::onnx::MAX_CATEGORIES {
                return Err(format!("string column {} is declared twice or has too many levels", column.index));
            }
            if column.levels.windows(2).any(|w| w[0] >= w[1]) {
                return Err(format!("string column {}'s levels are not sorted and distinct", column.index));
            }
            *slot = Some(column.unknown_allowed);
        }
        Ok(OnnxPipeline { pipeline, source, text, strings, work: work.max(1) })
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
        let x = super::input::rows_with(signature, records, &self.strings)?;
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
        super::input::rows_with(signature, records, &self.strings).map(|_| ())
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
        let body =
            kind::encode_payload(&BodyRef { spec: self.pipeline.spec(), source: &self.source, text: &self.text })?;
        kind::encode_payload(&(PAYLOAD_VERSION, body))
    }

    fn check(&self, sig: &Signature) -> std::result::Result<(), String> {
        let width = self.pipeline.width();
        if sig.features.len() != width {
            return Err(format!("the signature has {} features; the ONNX input has {width}", sig.features.len()));
        }
        for (j, f) in sig.features.iter().enumerate() {
            let text = self.text.iter().find(|c| c.index == j);
            match (&f.kind, text) {
                (FeatureKind::Numeric, None) => {}
                (FeatureKind::Categorical { levels }, Some(c)) if *levels == c.levels => {}
                (_, None) => {
                    return Err(format!("feature '{}' must be numeric: its ONNX input is a float tensor", f.name))
                }
                (_, Some(_)) => {
                    return Err(format!(
                        "feature '{}' must be categorical with the levels of its ONNX string encoders",
                        f.name
                    ))
                }
            }
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
    let OnnxModel { pipeline, feature_names, classes, model_op, producer, columns, .. } = imported;
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
    let mut metadata = super::import::imported_metadata(&names, task, classes, algorithm, params, tags, data_source);
    // String inputs are categorical features with their encoders' strings as levels.
    let mut text = Vec::new();
    for (j, column) in columns.iter().enumerate() {
        if let Some(levels) = &column.levels {
            let name = names[j].clone();
            if let Some(sample) = metadata.sample_input.first_mut() {
                let first = levels.first().cloned().unwrap_or_default();
                sample.insert(name.clone(), serde_json::Value::String(first));
            }
            metadata.signature.features[j] = wharf_core::Feature::categorical(name, levels.clone());
            text.push(TextColumn { index: j, levels: levels.clone(), unknown_allowed: column.unknown_allowed });
        }
    }
    let kind =
        OnnxPipeline::new(pipeline, Source { model_op, producer }, text).map_err(|e| WharfError::invalid("onnx", e))?;
    Model::new(metadata, Arc::new(kind))
}
