//! A model's signature: the features it takes, their types, and what it predicts.
//!
//! The signature travels inside the model artifact and is enforced on every predict, so a
//! served model can never silently score columns in the wrong order or of the wrong type.

use serde::{Deserialize, Serialize};

/// What a model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Task {
    /// A class label, with probabilities per class.
    Classification,
    /// A real number.
    Regression,
    /// A cluster index (unsupervised).
    Clustering,
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Task::Classification => "classification",
            Task::Regression => "regression",
            Task::Clustering => "clustering",
        })
    }
}

/// The type of one input feature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum FeatureKind {
    /// A real number. Missing values (JSON `null`, an empty CSV cell) are imputed with the
    /// training mean.
    Numeric,
    /// One of a fixed set of text levels, one-hot encoded. A missing value encodes as all
    /// zeros; a level not seen in training is an error, since the model knows nothing of it.
    Categorical {
        /// The levels seen in training, sorted.
        levels: Vec<String>,
    },
}

/// One named input feature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feature {
    /// The field name records must use.
    pub name: String,
    /// Its type.
    pub kind: FeatureKind,
}

impl Feature {
    /// A numeric feature.
    pub fn numeric(name: impl Into<String>) -> Self {
        Self { name: name.into(), kind: FeatureKind::Numeric }
    }

    /// A categorical feature with its levels.
    pub fn categorical(name: impl Into<String>, levels: Vec<String>) -> Self {
        Self { name: name.into(), kind: FeatureKind::Categorical { levels } }
    }

    /// True for a numeric feature.
    pub fn is_numeric(&self) -> bool {
        matches!(self.kind, FeatureKind::Numeric)
    }
}

/// The inputs and output of a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// Input features, in the order a matrix input must follow.
    pub features: Vec<Feature>,
    /// The target column the model was trained on, if any.
    pub target: Option<String>,
    /// What the model predicts.
    pub task: Task,
    /// Class labels for classifiers, sorted; probability column `i` is `P(classes[i])`.
    pub classes: Vec<String>,
}

impl Signature {
    /// The feature names in order.
    pub fn feature_names(&self) -> impl Iterator<Item = &str> {
        self.features.iter().map(|f| f.name.as_str())
    }

    /// The index of the feature called `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.features.iter().position(|f| f.name == name)
    }
}
