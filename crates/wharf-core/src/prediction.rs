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
        // The row-major case on plain slices: per-row views and checked indexing cost as much
        // as the logistic kernel itself on a 100k-row batch.
        if let (Some(values), k) = (self.values.as_slice(), self.values.ncols()) {
            if k > 0 {
                return values.chunks_exact(k).map(first_max).collect();
            }
        }
        self.values.rows().into_iter().map(|row| first_max(&row.to_vec())).collect()
    }
}

/// The index of the first largest value, as `>` compares (a NaN never overtakes).
fn first_max(row: &[f64]) -> u32 {
    let mut best = 0;
    let mut top = row.first().copied().unwrap_or(f64::NAN);
    for (j, v) in row.iter().enumerate().skip(1) {
        if *v > top {
            best = j;
            top = *v;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, ShapeBuilder};

    #[test]
    fn argmax_takes_the_first_largest_in_any_layout() {
        let values =
            array![[0.5, 0.5, 0.0], [0.1, 0.7, 0.7], [0.2, f64::NAN, 0.9], [0.3, f64::NAN, 0.1], [0.0, 0.0, 1.0]];
        let want = vec![0, 1, 2, 0, 2];
        let row_major = Probabilities { classes: Vec::new(), values: values.clone() };
        assert_eq!(row_major.argmax(), want);
        let mut column_major = Array2::zeros(values.raw_dim().f());
        column_major.assign(&values);
        assert!(column_major.as_slice().is_none());
        assert_eq!(Probabilities { classes: Vec::new(), values: column_major }.argmax(), want);
        let empty = Probabilities { classes: Vec::new(), values: Array2::zeros((2, 0)) };
        assert_eq!(empty.argmax(), [0, 0]);
    }
}
