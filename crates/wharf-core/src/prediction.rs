//! What scoring returns: one prediction per record, and class probabilities.

use ndarray::Array2;

use crate::records::format_number;

/// Predictions for a batch, one per record.
#[derive(Debug, Clone, PartialEq)]
pub enum Predictions {
    /// Class labels: `classes[indices[i]]` for record `i`.
    Classes {
        /// The model's classes.
        classes: Vec<String>,
        /// Index into `classes` per record.
        indices: Vec<u32>,
    },
    /// Regression values.
    Values(Vec<f64>),
    /// Cluster indices.
    Clusters(Vec<u32>),
}

impl Predictions {
    /// Number of predictions.
    pub fn len(&self) -> usize {
        match self {
            Predictions::Classes { indices, .. } => indices.len(),
            Predictions::Values(v) => v.len(),
            Predictions::Clusters(v) => v.len(),
        }
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Prediction `i` as text (a class label, a number, a cluster index).
    pub fn display(&self, i: usize) -> String {
        match self {
            Predictions::Classes { classes, indices } => classes[indices[i] as usize].clone(),
            Predictions::Values(v) => format_number(v[i]),
            Predictions::Clusters(v) => v[i].to_string(),
        }
    }

    /// Prediction `i` as JSON (a string label, a number, an integer).
    pub fn to_json(&self, i: usize) -> serde_json::Value {
        match self {
            Predictions::Classes { classes, indices } => classes[indices[i] as usize].clone().into(),
            Predictions::Values(v) => serde_json::Number::from_f64(v[i]).map(Into::into).unwrap_or_default(),
            Predictions::Clusters(v) => v[i].into(),
        }
    }
}

/// Class probabilities: column `j` of `values` is `P(classes[j])`, rows sum to 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Probabilities {
    /// The class each column refers to.
    pub classes: Vec<String>,
    /// `records × classes`.
    pub values: Array2<f64>,
}

impl Probabilities {
    /// The probability of `class` for record `row`.
    pub fn get(&self, row: usize, class: &str) -> Option<f64> {
        let j = self.classes.iter().position(|c| c == class)?;
        self.values.get((row, j)).copied()
    }

    /// The most probable class index of each row (ties go to the first class).
    pub fn argmax(&self) -> Vec<u32> {
        self.values
            .rows()
            .into_iter()
            .map(|row| {
                let mut best = 0;
                for (j, v) in row.iter().enumerate() {
                    if *v > row[best] {
                        best = j;
                    }
                }
                best as u32
            })
            .collect()
    }
}
