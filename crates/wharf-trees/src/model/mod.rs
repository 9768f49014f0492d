//! Imported ensembles as Wharf models (feature `kind`).
//!
//! [`xgboost`] and [`lightgbm`] read a model file into a [`wharf_core::Model`] of kind
//! [`KIND_ID`], whose signature comes from the file (feature names and count, task, number
//! of classes) and from [`ImportOptions`] where the file is silent (class labels) or wrong
//! for the caller (feature names). Such a model saves to a `.wharf` artifact, registers,
//! serves and scores through the same path as Wharf's own models; call [`register`] before
//! loading one (the `wharf` facade does).
//!
//! The artifact stores the [`EnsembleSpec`](crate::EnsembleSpec), not the source file nor the
//! compiled form: loading compiles it again through [`Ensemble::new`](crate::Ensemble::new),
//! which checks every index, count and value, so a tampered artifact is refused at load.
//!
//! With the feature `onnx`, [`onnx()`] and [`onnx_with`] do the same for ONNX files: a model of
//! kind [`ONNX_KIND_ID`] (`wharf.onnx-pipeline`) whose artifact stores the checked
//! [`PipelineSpec`](crate::onnx::PipelineSpec).

mod answers;
mod import;
mod input;
mod kind;
#[cfg(feature = "onnx")]
mod onnx;

pub use import::{lightgbm, lightgbm_with, trained, xgboost, xgboost_with, ImportOptions};
pub use kind::{predictions_from_margins, register, TreeEnsemble, KIND_ID};
#[cfg(feature = "onnx")]
#[cfg_attr(docsrs, doc(cfg(feature = "onnx")))]
pub use onnx::{onnx, onnx_with, OnnxPipeline, ONNX_KIND_ID};
