//! How rows are dealt into cross-validation folds: plain k-fold, stratified k-fold (each
//! fold keeps the class proportions) and group k-fold (a group's rows never straddle a
//! training part and its test part).

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use wharf_core::{Column, Result, WharfError};

use crate::Dataset;

/// The way rows are dealt into folds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Strategy {
    /// Rows shuffled, then cut into `k` nearly equal parts.
    KFold,
    /// Each class's rows shuffled and dealt round the folds, so every fold has the class
    /// proportions of the whole table (classification only).
    Stratified,
    /// Whole groups (the values of this column, an id or a feature) dealt to folds, largest
    /// first onto the smallest fold, so rows of one group (a customer, a patient) are never
    /// both trained on and tested on.
    Group(String),
}

/// A fold plan: the strategy, the number of folds and the seed of the shuffle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folds {
    /// How rows are dealt.
    pub strategy: Strategy,
    /// Number of folds (at least 2).
    pub k: usize,
    /// Seed of the shuffle: the same seed deals the same folds.
    pub seed: u64,
}

/// One fold: the rows trained on and the rows scored, both ascending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Row indices of the training part.
    pub train: Vec<usize>,
    /// Row indices of the test part.
    pub test: Vec<usize>,
}

impl Folds {
    /// Plain k-fold.
    pub fn kfold(k: usize) -> Self {
        Folds { strategy: Strategy::KFold, k, seed: 42 }
    }
    /// Stratified k-fold.
    pub fn stratified(k: usize) -> Self {
        Folds { strategy: Strategy::Stratified, k, seed: 42 }
    }
    /// Group k-fold on `column`.
    pub fn group(k: usize, column: impl Into<String>) -> Self {
        Folds { strategy: Strategy::Group(column.into()), k, seed: 42 }
    }
    /// The seed of the shuffle.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The folds of `data`. Fails, before anything is trained, when there are fewer rows
    /// (or groups) than folds, or when stratifying without a target.
    pub fn split(&self, data: &Dataset) -> Result<Vec<Split>> {
        let n = data.n_rows();
        if self.k < 2 {
            return Err(WharfError::invalid("folds", format!("need at least 2 folds, got {}", self.k)));
        }
        if n < self.k {
            return Err(WharfError::invalid(
                "folds",
                format!("{} has {n} rows, fewer than the {} folds asked for", data.name, self.k),
            ));
        }
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(self.seed);
        let mut fold_of = vec![0usize; n];
        match &self.strategy {
            Strategy::KFold => {
                let mut idx: Vec<usize> = (0..n).collect();
                idx.shuffle(&mut rng);
                // The first n % k folds get one row more, as scikit-learn's KFold.
                let (base, extra) = (n / self.k, n % self.k);
                let mut at = 0;
                for f in 0..self.k {
                    let size = base + usize::from(f < extra);
                    for &i in &idx[at..at + size] {
                        fold_of[i] = f;
                    }
                    at += size;
                }
            }
            Strategy::Stratified => {
                let (name, column) = data
                    .target
                    .as_ref()
                    .ok_or_else(|| WharfError::invalid("folds", "stratified folds need a target column"))?;
                let mut by_class: BTreeMap<String, Vec<usize>> = BTreeMap::new();
                for i in 0..column.len() {
                    let label = column.text_at(i);
                    if label.is_empty() {
                        return Err(WharfError::invalid(format!("{name}[{i}]"), "target value is missing"));
                    }
                    by_class.entry(label).or_default().push(i);
                }
                // Dealing continues round the folds from class to class, so fold sizes stay
                // within one row of each other.
                let mut next = 0;
                for rows in by_class.values_mut() {
                    rows.shuffle(&mut rng);
                    for &i in rows.iter() {
                        fold_of[i] = next % self.k;
                        next += 1;
                    }
                }
            }
            Strategy::Group(column) => {
                let values = group_column(data, column)?;
                let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
                for (i, v) in values.into_iter().enumerate() {
                    groups.entry(v).or_default().push(i);
                }
                if groups.len() < self.k {
                    return Err(WharfError::invalid(
                        column.as_str(),
                        format!("{} distinct groups, fewer than the {} folds asked for", groups.len(), self.k),
                    ));
                }
                let mut groups: Vec<Vec<usize>> = groups.into_values().collect();
                // Shuffled first so equal-sized groups land by seed, then largest first.
                groups.shuffle(&mut rng);
                groups.sort_by_key(|g| std::cmp::Reverse(g.len()));
                let mut sizes = vec![0usize; self.k];
                for g in groups {
                    let f = (0..self.k).min_by_key(|&f| (sizes[f], f)).unwrap_or(0);
                    sizes[f] += g.len();
                    for i in g {
                        fold_of[i] = f;
                    }
                }
            }
        }
        Ok((0..self.k)
            .map(|f| {
                let (test, train): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| fold_of[i] == f);
                Split { train, test }
            })
            .collect())
    }
}

/// The values of the group column, from the ids or the features (missing values form a
/// group of their own).
fn group_column(data: &Dataset, column: &str) -> Result<Vec<String>> {
    let found: Option<&Column> = data.ids.column(column).or_else(|| data.features.column(column));
    let found = found.ok_or_else(|| {
        WharfError::invalid(column, format!("no group column '{column}' among the ids or features of {}", data.name))
    })?;
    Ok((0..found.len()).map(|i| found.text_at(i)).collect())
}
