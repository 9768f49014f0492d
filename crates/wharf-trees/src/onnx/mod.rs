//! ONNX model files (the `ai.onnx.ml` operators skl2onnx writes for scikit-learn), compiled
//! onto Wharf's own kernels: tree operators onto the tree evaluator with ONNX Runtime's
//! scoring rules ([`Semantics::Onnx`](crate::Semantics::Onnx)), linear operators onto a
//! linear kernel, preprocessing (`Scaler`, `Imputer`, `Normalizer`, `OneHotEncoder`,
//! `LabelEncoder`, on numbers or strings, `Mul`/`Add`/`Sub` by a constant, `Clip`) as stages before them, column selections and joins resolved at
//! import. Nothing interprets the graph at scoring time: [`read`] checks every operator,
//! attribute, index and count once and returns a [`Pipeline`].
//!
//! The file is decoded with `prost` from messages declared by hand (`proto.rs`), so the
//! build needs no `protoc`. A file over [`MAX_FILE_BYTES`], a graph over
//! [`MAX_GRAPH_NODES`] nodes, or an ensemble over the tree crate's caps is refused.

mod attrs;
mod graph;
mod inputs;
mod pipeline;
mod proto;
mod spec;
mod trees;

use std::path::Path;

use prost::Message;

use crate::error::TreeError;

pub use graph::{MAX_GRAPH_NODES, SUPPORTED};
pub use inputs::InputColumn;
pub use pipeline::Pipeline;
pub use spec::{Binary, Head, Norm, PipelineSpec, Post, Stage, StageOp, Transform, MAX_CATEGORIES, MAX_SLOTS};

/// Largest ONNX file read (protobuf's own limit is 2 GiB; a scikit-learn model is far
/// smaller).
pub const MAX_FILE_BYTES: usize = 512 << 20;

/// An ONNX file compiled, with what a model signature needs.
#[derive(Debug)]
pub struct OnnxModel {
    /// The compiled pipeline: [`Pipeline::predict`] gives ONNX Runtime's probabilities
    /// (or values).
    pub pipeline: Pipeline,
    /// `f0`, `f1`, … for one float input (whose columns have no names); the inputs' names
    /// for a graph of several inputs or string inputs.
    pub feature_names: Vec<String>,
    /// The row's columns, with the levels of string columns.
    pub columns: Vec<InputColumn>,
    /// The classifier's labels (from `classlabels_*`), empty for a regressor.
    pub classes: Vec<String>,
    /// The model operator (`TreeEnsembleClassifier`, `LinearRegressor`, …).
    pub model_op: String,
    /// The file's `producer_name producer_version` (`skl2onnx 1.20.0`).
    pub producer: String,
    /// The input's width as the file declares it; `None` when symbolic (then the model
    /// operator's width is used).
    pub declared_width: Option<usize>,
}

/// Reads an ONNX file.
pub fn read(path: impl AsRef<Path>) -> Result<OnnxModel, TreeError> {
    let path = path.as_ref();
    let size = std::fs::metadata(path)
        .map_err(|e| TreeError::Malformed { format: "onnx", at: path.display().to_string(), message: e.to_string() })?
        .len();
    if size > MAX_FILE_BYTES as u64 {
        return Err(TreeError::TooLarge {
            format: "onnx",
            what: "the file's size in bytes",
            found: usize::try_from(size).unwrap_or(usize::MAX),
            limit: MAX_FILE_BYTES,
        });
    }
    let bytes = std::fs::read(path).map_err(|e| TreeError::Malformed {
        format: "onnx",
        at: path.display().to_string(),
        message: e.to_string(),
    })?;
    parse(&bytes)
}

/// Parses and compiles the bytes of an ONNX file.
pub fn parse(bytes: &[u8]) -> Result<OnnxModel, TreeError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(TreeError::TooLarge {
            format: "onnx",
            what: "the file's size in bytes",
            found: bytes.len(),
            limit: MAX_FILE_BYTES,
        });
    }
    let model = proto::ModelProto::decode(bytes).map_err(|e| TreeError::Malformed {
        format: "onnx",
        at: "protobuf".into(),
        message: e.to_string(),
    })?;
    if model.graph.is_none() && model.ir_version.is_none() {
        return Err(TreeError::Malformed {
            format: "onnx",
            at: "byte 0".into(),
            message: "not an ONNX model (no ir_version and no graph)".into(),
        });
    }
    let compiled = graph::compile(&model)?;
    let pipeline = Pipeline::new(compiled.spec)?;
    let classes = pipeline.spec().classes.clone();
    Ok(OnnxModel {
        feature_names: compiled.columns.iter().map(|c| c.name.clone()).collect(),
        columns: compiled.columns,
        classes,
        model_op: compiled.model_op,
        producer: compiled.producer,
        declared_width: compiled.declared_width,
        pipeline,
    })
}
