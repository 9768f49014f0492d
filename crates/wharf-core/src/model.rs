//! The model: metadata (with its signature) + fitted preprocessing + fitted estimator.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use crate::estimator::fit::{self, Hyper};
use crate::estimator::kernel::Compiled;
use crate::estimator::{Estimator, RawOutput};
use crate::preprocess::Preprocessor;
use crate::records::{format_number, Column, Records, Row};
use crate::signature::{Signature, Task};
use crate::{Dataset, Result, WharfError};

/// Everything known about a model besides its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMetadata {
    /// Inputs, task and classes.
    pub signature: Signature,
    /// `logistic`, `linear`, `tree`, `random-forest` or `kmeans`.
    pub algorithm: String,
    /// Training parameters, as text.
    pub params: BTreeMap<String, String>,
    /// Evaluation metrics (holdout metrics when the trainer had a holdout).
    pub metrics: BTreeMap<String, f64>,
    /// Free-form tags.
    pub tags: BTreeMap<String, String>,
    /// When the model was fitted.
    pub created_at: DateTime<Utc>,
    /// SHA-256 of the training data (see [`Dataset::fingerprint`]).
    pub data_fingerprint: String,
    /// The training data's name.
    pub data_source: String,
    /// Versions of wharf and the learning libraries that produced the model.
    pub library_versions: BTreeMap<String, String>,
    /// A few training rows (features only): a real input that readiness probes and smoke
    /// tests can predict without the caller inventing one. Stored as JSON text because the
    /// artifact codec cannot carry self-describing JSON values.
    #[serde(with = "rows_as_json")]
    pub sample_input: Vec<Row>,
}

/// A trained model, ready to predict. Cheap to share behind an `Arc`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub(crate) metadata: ModelMetadata,
    pub(crate) preprocessor: Preprocessor,
    pub(crate) estimator: Estimator,
    /// The scoring kernel derived from the two above on first use (never saved).
    #[serde(skip)]
    pub(crate) kernel: Compiled,
}

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

impl Model {
    /// The model's metadata.
    pub fn metadata(&self) -> &ModelMetadata {
        &self.metadata
    }

    /// The signature records are checked against.
    pub fn signature(&self) -> &Signature {
        &self.metadata.signature
    }

    /// What it predicts.
    pub fn task(&self) -> Task {
        self.metadata.signature.task
    }

    /// Class labels (empty unless a classifier).
    pub fn classes(&self) -> &[String] {
        &self.metadata.signature.classes
    }

    /// Returns the model with `metrics` merged into its metadata.
    pub fn with_metrics(mut self, metrics: impl IntoIterator<Item = (String, f64)>) -> Self {
        self.metadata.metrics.extend(metrics);
        self
    }

    /// Returns the model with a tag set.
    pub fn with_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.tags.insert(key.into(), value.into());
        self
    }

    fn design(&self, records: &Records) -> Result<Array2<f64>> {
        self.preprocessor.transform(&self.metadata.signature, records)
    }

    /// Class probabilities straight from a numeric matrix through the compiled kernel,
    /// without building a design matrix; `None` when the records or the model need the
    /// general path (which also words any error).
    fn fast_probabilities(&self, records: &Records) -> Option<Array2<f64>> {
        let Records::Matrix(m) = records else { return None };
        let width = self.metadata.signature.features.len();
        if m.ncols() != width || m.nrows() == 0 || self.task() != Task::Classification {
            return None;
        }
        let values = self.kernel.get(&self.preprocessor, &self.estimator).probabilities(m.as_slice()?, width)?;
        let n_classes = values.len() / m.nrows();
        Array2::from_shape_vec((m.nrows(), n_classes), values).ok()
    }

    /// A rough count of the basic steps (multiply-adds, tree levels) scoring one row takes:
    /// a size, not a time. A server uses it to score small requests on the spot and hand big
    /// ones to a worker pool.
    pub fn work_per_row(&self) -> usize {
        self.estimator.work_per_row().max(1)
    }

    /// Checks `records` against the signature exactly as [`predict`](Self::predict) does,
    /// without scoring. For model servers that compute elsewhere (a proxy to a remote
    /// service) but must still refuse bad records locally, before any request is sent.
    pub fn validate(&self, records: &Records) -> Result<()> {
        self.design(records).map(|_| ())
    }

    /// Predicts one value per record, after checking the records against the signature.
    pub fn predict(&self, records: &Records) -> Result<Predictions> {
        let sig = &self.metadata.signature;
        if let Some(values) = self.fast_probabilities(records) {
            let indices = Probabilities { classes: Vec::new(), values }.argmax();
            return Ok(Predictions::Classes { classes: sig.classes.clone(), indices });
        }
        let x = self.design(records)?;
        Ok(match self.estimator.run(x.view(), sig.classes.len()) {
            RawOutput::Probabilities(p) => Predictions::Classes {
                classes: sig.classes.clone(),
                indices: Probabilities { classes: Vec::new(), values: p }.argmax(),
            },
            RawOutput::Values(v) => Predictions::Values(v),
            RawOutput::Clusters(c) => Predictions::Clusters(c),
        })
    }

    /// Class probabilities per record; [`WharfError::Unsupported`] unless a classifier.
    pub fn predict_proba(&self, records: &Records) -> Result<Probabilities> {
        if self.task() != Task::Classification {
            return Err(WharfError::Unsupported(format!(
                "predict_proba on a {} model ({})",
                self.task(),
                self.metadata.algorithm
            )));
        }
        if let Some(values) = self.fast_probabilities(records) {
            return Ok(Probabilities { classes: self.classes().to_vec(), values });
        }
        let x = self.design(records)?;
        match self.estimator.run(x.view(), self.classes().len()) {
            RawOutput::Probabilities(values) => Ok(Probabilities { classes: self.classes().to_vec(), values }),
            _ => Err(WharfError::Unsupported("predict_proba".into())),
        }
    }

    /// Checks the parts agree with each other. Called on every artifact load, so a payload
    /// that decodes but is inconsistent is refused instead of panicking later in predict.
    pub(crate) fn check(&self) -> std::result::Result<(), String> {
        let sig = &self.metadata.signature;
        self.preprocessor.check(sig)?;
        let width = Preprocessor::width(sig);
        let n_classes = sig.classes.len();
        match (sig.task, &self.estimator) {
            (Task::Classification, Estimator::LogisticBinary { .. })
            | (Task::Classification, Estimator::LogisticMulti { .. })
            | (Task::Classification, Estimator::Tree(_))
            | (Task::Classification, Estimator::Forest { .. }) => {
                if n_classes < 2 {
                    return Err("a classifier needs at least two classes".into());
                }
            }
            (Task::Regression, Estimator::Linear { .. }) | (Task::Clustering, Estimator::KMeans { .. }) => {}
            _ => return Err("estimator does not match the task".into()),
        }
        for (i, feature) in sig.features.iter().enumerate() {
            if sig.features[..i].iter().any(|f| f.name == feature.name) {
                return Err(format!("duplicate feature '{}'", feature.name));
            }
        }
        self.estimator.check(width, n_classes)
    }

    /// Saves the model as a `.wharf` artifact (atomically: a crash leaves the old file or
    /// none, never half of one).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let bytes = crate::artifact::encode(self)?;
        crate::fsutil::write_atomic(path.as_ref(), &bytes)
    }

    /// Loads a `.wharf` artifact, verifying header, checksum and consistency.
    pub fn load(path: impl AsRef<Path>) -> Result<Model> {
        crate::artifact::read_file(path.as_ref())
    }
}

/// Which estimator a [`Trainer`] fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    /// Logistic regression (binary or multinomial), via linfa.
    Logistic,
    /// Ordinary least squares, via smartcore.
    Linear,
    /// A CART decision tree (Gini), fitted by Wharf: deterministic for given data.
    Tree,
    /// A bagged forest of CART trees on random feature subspaces, the same for a given seed.
    RandomForest,
    /// k-means clustering, via linfa.
    KMeans,
}

impl Algorithm {
    /// What the algorithm predicts.
    pub fn task(self) -> Task {
        match self {
            Algorithm::Logistic | Algorithm::Tree | Algorithm::RandomForest => Task::Classification,
            Algorithm::Linear => Task::Regression,
            Algorithm::KMeans => Task::Clustering,
        }
    }

    /// The name used in configs, the CLI and metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Logistic => "logistic",
            Algorithm::Linear => "linear",
            Algorithm::Tree => "tree",
            Algorithm::RandomForest => "random-forest",
            Algorithm::KMeans => "kmeans",
        }
    }
}

impl std::str::FromStr for Algorithm {
    type Err = WharfError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "logistic" | "logistic-regression" => Algorithm::Logistic,
            "linear" | "linear-regression" => Algorithm::Linear,
            "tree" | "decision-tree" => Algorithm::Tree,
            "random-forest" | "forest" | "rf" => Algorithm::RandomForest,
            "kmeans" | "k-means" => Algorithm::KMeans,
            other => {
                return Err(WharfError::invalid(
                    "algorithm",
                    format!("unknown algorithm '{other}' (logistic, linear, tree, random-forest, kmeans)"),
                ))
            }
        })
    }
}

/// Fits a [`Model`] on a [`Dataset`]: learns the preprocessing, then the estimator.
#[derive(Debug, Clone)]
pub struct Trainer {
    algorithm: Algorithm,
    hyper: Hyper,
}

impl Trainer {
    /// A trainer for `algorithm` with sensible defaults.
    pub fn new(algorithm: Algorithm) -> Self {
        let max_depth = match algorithm {
            Algorithm::RandomForest => Some(10),
            _ => None,
        };
        Trainer {
            algorithm,
            hyper: Hyper {
                max_iterations: if algorithm == Algorithm::KMeans { 300 } else { 200 },
                l2: 1.0,
                max_depth,
                min_samples_leaf: 1,
                n_trees: 100,
                max_features: None,
                k: 3,
                seed: 42,
            },
        }
    }

    /// Logistic regression (binary or multinomial).
    pub fn logistic_regression() -> Self {
        Self::new(Algorithm::Logistic)
    }
    /// Linear regression.
    pub fn linear_regression() -> Self {
        Self::new(Algorithm::Linear)
    }
    /// A decision tree classifier.
    pub fn decision_tree() -> Self {
        Self::new(Algorithm::Tree)
    }
    /// A random forest classifier.
    pub fn random_forest() -> Self {
        Self::new(Algorithm::RandomForest)
    }
    /// k-means with `k` clusters.
    pub fn kmeans(k: usize) -> Self {
        Self::new(Algorithm::KMeans).clusters(k)
    }

    /// The algorithm this trainer fits.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
    /// Seed for every random choice (bootstrap, feature subsets, k-means init).
    pub fn seed(mut self, seed: u64) -> Self {
        self.hyper.seed = seed;
        self
    }
    /// Maximum depth of trees.
    pub fn max_depth(mut self, depth: Option<usize>) -> Self {
        self.hyper.max_depth = depth;
        self
    }
    /// Number of trees in a forest.
    pub fn trees(mut self, n: usize) -> Self {
        self.hyper.n_trees = n;
        self
    }
    /// Columns each forest tree sees (default √width).
    pub fn max_features(mut self, n: usize) -> Self {
        self.hyper.max_features = Some(n);
        self
    }
    /// Minimum rows in a tree leaf.
    pub fn min_samples_leaf(mut self, n: usize) -> Self {
        self.hyper.min_samples_leaf = n.max(1);
        self
    }
    /// L2 regularisation strength of logistic regression.
    pub fn l2(mut self, alpha: f64) -> Self {
        self.hyper.l2 = alpha;
        self
    }
    /// Iteration cap of iterative solvers.
    pub fn max_iterations(mut self, n: u64) -> Self {
        self.hyper.max_iterations = n;
        self
    }
    /// Number of clusters for k-means.
    pub fn clusters(mut self, k: usize) -> Self {
        self.hyper.k = k;
        self
    }

    /// The parameters recorded in the model's metadata and logged to trackers.
    pub fn params(&self) -> BTreeMap<String, String> {
        let h = &self.hyper;
        let mut p = BTreeMap::new();
        p.insert("algorithm".into(), self.algorithm.as_str().into());
        p.insert("seed".into(), h.seed.to_string());
        match self.algorithm {
            Algorithm::Logistic => {
                p.insert("l2".into(), h.l2.to_string());
                p.insert("max_iterations".into(), h.max_iterations.to_string());
            }
            Algorithm::Linear => {
                p.insert("solver".into(), "svd".into());
            }
            Algorithm::Tree | Algorithm::RandomForest => {
                let depth = h.max_depth.map(|d| d.to_string()).unwrap_or_else(|| "none".into());
                p.insert("max_depth".into(), depth);
                p.insert("min_samples_leaf".into(), h.min_samples_leaf.to_string());
                if self.algorithm == Algorithm::RandomForest {
                    p.insert("n_trees".into(), h.n_trees.to_string());
                    let mf = h.max_features.map(|d| d.to_string()).unwrap_or_else(|| "sqrt".into());
                    p.insert("max_features".into(), mf);
                }
            }
            Algorithm::KMeans => {
                p.insert("k".into(), h.k.to_string());
                p.insert("max_iterations".into(), h.max_iterations.to_string());
            }
        }
        p
    }

    /// Fits the model. Classification targets become text labels (sorted; probability
    /// column `i` is the `i`-th label); regression targets must be numeric; k-means ignores
    /// any target.
    pub fn fit(&self, data: &Dataset) -> Result<Model> {
        if data.n_rows() < 2 {
            return Err(WharfError::invalid(&data.name, "need at least two rows to train"));
        }
        let task = self.algorithm.task();
        let (features, preprocessor) = Preprocessor::fit(&data.features, &data.levels)?;
        let target_name = data.target.as_ref().map(|(n, _)| n.clone());
        let mut signature = Signature {
            features,
            target: if task == Task::Clustering { None } else { target_name },
            task,
            classes: Vec::new(),
        };
        let records = Records::Columns(data.features.clone());
        let x = preprocessor.transform(&signature, &records)?;
        let target = || {
            data.target.as_ref().map(|(n, c)| (n.as_str(), c)).ok_or_else(|| {
                WharfError::invalid(&data.name, format!("{} needs a target column", self.algorithm.as_str()))
            })
        };
        let estimator = match task {
            Task::Classification => {
                let (name, column) = target()?;
                let (classes, y) = encode_classes(name, column)?;
                if classes.len() < 2 {
                    return Err(WharfError::invalid(name, "a classifier needs at least two distinct classes"));
                }
                let n_classes = classes.len();
                signature.classes = classes;
                let y = Array1::from(y);
                match self.algorithm {
                    Algorithm::Logistic => fit::logistic(&x, &y, n_classes, &self.hyper)?,
                    Algorithm::Tree => fit::decision_tree(&x, &y, n_classes, &self.hyper)?,
                    _ => fit::random_forest(&x, &y, n_classes, &self.hyper)?,
                }
            }
            Task::Regression => {
                let (name, column) = target()?;
                let y = match column {
                    Column::Numeric(v) => v.clone(),
                    Column::Text(_) => return Err(WharfError::invalid(name, "a regression target must be numeric")),
                };
                if let Some(i) = y.iter().position(|v| !v.is_finite()) {
                    return Err(WharfError::invalid(format!("{name}[{i}]"), "target value is missing"));
                }
                fit::linear(&x, &y)?
            }
            Task::Clustering => fit::kmeans(&x, &self.hyper)?,
        };
        let sample_input = (0..data.n_rows().min(3)).map(|i| data.features.row(i)).collect();
        let model = Model {
            metadata: ModelMetadata {
                signature,
                algorithm: self.algorithm.as_str().into(),
                params: self.params(),
                metrics: BTreeMap::new(),
                tags: BTreeMap::new(),
                created_at: Utc::now(),
                data_fingerprint: data.fingerprint(),
                data_source: data.name.clone(),
                library_versions: library_versions(),
                sample_input,
            },
            preprocessor,
            estimator,
            kernel: Compiled::default(),
        };
        model.check().map_err(|e| WharfError::Training(format!("fitted model is inconsistent: {e}")))?;
        Ok(model)
    }
}

/// Versions of the libraries that produce and read models.
pub fn library_versions() -> BTreeMap<String, String> {
    // The learning libraries' versions are the ones pinned in the workspace manifest.
    [("wharf", env!("CARGO_PKG_VERSION")), ("linfa", "0.8.1"), ("smartcore", "0.4.10")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain([("artifact_format".to_string(), crate::artifact::FORMAT_VERSION.to_string())])
        .collect()
}

/// Sorted class labels and each row's class index. Numeric labels sort numerically.
pub(crate) fn encode_classes(name: &str, column: &Column) -> Result<(Vec<String>, Vec<usize>)> {
    let labels: Vec<String> = (0..column.len()).map(|i| column.text_at(i)).collect();
    if let Some(i) = labels.iter().position(|l| l.is_empty()) {
        return Err(WharfError::invalid(format!("{name}[{i}]"), "target value is missing"));
    }
    let mut classes: Vec<String> = labels.clone();
    classes.sort();
    classes.dedup();
    if matches!(column, Column::Numeric(_)) {
        classes.sort_by(|a, b| {
            let (x, y) = (a.parse::<f64>().unwrap_or(0.0), b.parse::<f64>().unwrap_or(0.0));
            x.total_cmp(&y)
        });
    }
    let y = labels.iter().map(|l| classes.iter().position(|c| c == l).unwrap_or(0)).collect();
    Ok((classes, y))
}

/// Serialises rows as one JSON string, so non-self-describing codecs can carry them.
mod rows_as_json {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::records::Row;

    pub(super) fn serialize<S: Serializer>(rows: &[Row], s: S) -> Result<S::Ok, S::Error> {
        let text = serde_json::to_string(rows).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Row>, D::Error> {
        let text = String::deserialize(d)?;
        serde_json::from_str(&text).map_err(serde::de::Error::custom)
    }
}
