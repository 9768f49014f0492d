//! What an importer returns: the compiled ensemble and what a model signature needs.

use serde::{Deserialize, Serialize};

use crate::ensemble::Ensemble;

/// Whether the model classifies or regresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Task {
    /// Probabilities of classes (binary: of the positive class).
    Classification,
    /// A number per row.
    Regression,
}

/// The file format a model was imported from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SourceFormat {
    /// XGBoost's JSON (`Booster.save_model("m.json")`).
    XGBoostJson,
    /// LightGBM's text (`Booster.save_model("m.txt")`).
    LightGbmText,
    /// Trained by Wharf's own gradient booster (LightGBM's scoring rules).
    Wharf,
}

/// An imported model: the ensemble plus its signature's facts.
#[derive(Debug)]
pub struct ImportedModel {
    /// The compiled trees; [`Ensemble::predict`] gives the library's own predictions.
    pub ensemble: Ensemble,
    /// One name per input column: the file's, or `f0`, `f1`, … when it has none.
    pub feature_names: Vec<String>,
    /// Columns the model reads as categories (integer codes).
    pub categorical_features: Vec<usize>,
    /// Classification or regression.
    pub task: Task,
    /// Number of classes (2 for binary, whose ensemble has one output: `P(class 1)`); 0 for
    /// regression.
    pub n_classes: usize,
    /// The objective as the file names it (`binary:logistic`, `multiclass`, …).
    pub objective: String,
    /// True when the library's `predict` returns a class index rather than probabilities
    /// (XGBoost's `multi:softmax`); the ensemble still gives the probabilities.
    pub predicts_class_index: bool,
    /// Where it came from.
    pub format: SourceFormat,
}

impl ImportedModel {
    /// Width of an input row.
    pub fn n_features(&self) -> usize {
        self.ensemble.n_features()
    }
}

/// `f0`, `f1`, …: XGBoost's own names for unnamed columns.
pub(crate) fn default_names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("f{i}")).collect()
}
