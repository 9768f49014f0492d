//! # wharf-trees
//!
//! Additive ensembles of binary decision trees, compiled for fast scoring, and importers for
//! the two formats most gradient-boosted models are saved in: XGBoost's JSON
//! (`save_model("m.json")`) and LightGBM's text (`save_model("m.txt")`).
//!
//! An imported model scores like the library it came from: each importer fixes the
//! [`Semantics`] of its source (the precision of inputs and thresholds, `<` or `<=`, where
//! missing values and unknown categories go, the precision the trees are summed in, and the
//! link), so predictions agree bit for bit or to the last rounding of the link function; the
//! crate's README says which, per format, and how that is checked against the real libraries.
//!
//! With the feature `onnx`, the `onnx` module compiles ONNX files (scikit-learn through
//! skl2onnx) onto the same evaluator, a linear kernel and row stages.
//!
//! With the feature `kind`, the `model` module makes an imported ensemble (or ONNX pipeline)
//! a Wharf model (a `wharf_core::Model` that saves, registers, serves and scores like
//! Wharf's own).
//!
//! ```
//! use wharf_trees::{Ensemble, EnsembleSpec, Link, Node, Semantics, Tree};
//!
//! // x0 < 0.5 ? -1 : 1, then a sigmoid, the way XGBoost would score it.
//! let tree = Tree {
//!     group: 0,
//!     nodes: vec![
//!         Node::numeric(0, 0.5, 1, 2, true),
//!         Node::leaf(-1.0),
//!         Node::leaf(1.0),
//!     ],
//! };
//! let spec = EnsembleSpec {
//!     semantics: Semantics::XGBoost,
//!     n_features: 1,
//!     base_score: vec![0.0],
//!     link: Link::Sigmoid,
//!     average: false,
//!     trees: vec![tree],
//! };
//! let ensemble = Ensemble::new(spec)?;
//! let mut out = [0.0; 2];
//! ensemble.predict(&[0.0, 2.0], 1, &mut out)?;
//! assert!(out[0] < 0.5 && out[1] > 0.5);
//! # Ok::<(), wharf_trees::TreeError>(())
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

mod ensemble;
mod error;
mod imported;
pub mod lightgbm;
mod link;
#[cfg(feature = "kind")]
#[cfg_attr(docsrs, doc(cfg(feature = "kind")))]
pub mod model;
#[cfg(feature = "onnx")]
#[cfg_attr(docsrs, doc(cfg(feature = "onnx")))]
pub mod onnx;
mod semantics;
mod spec;
mod walk;
pub mod xgboost;

pub use ensemble::Ensemble;
pub use error::TreeError;
pub use imported::{ImportedModel, SourceFormat, Task};
pub use link::Link;
#[cfg(feature = "kind")]
#[cfg_attr(docsrs, doc(cfg(feature = "kind")))]
pub use model::register;
pub use spec::{
    EnsembleSpec, Missing, Node, Semantics, Split, Tree, MAX_CATEGORY_WORDS, MAX_FEATURES, MAX_GROUPS, MAX_NODES,
    MAX_NODES_PER_TREE, MAX_TREES,
};
