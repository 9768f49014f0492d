//! Training: which estimator to fit ([`Algorithm`]) and the [`Trainer`] that fits it.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use ndarray::Array1;
use serde::{Deserialize, Serialize};
use wharf_core::drift::{with_profile, with_profile_of};
use wharf_core::{Column, Model, ModelMetadata, Predictions, Records, Result, Signature, Task, WharfError};

use crate::builtin::FittedEstimator;
use crate::estimator::fit::{self, Hyper};
use crate::estimator::gbdt;
pub use crate::estimator::gbdt::{ClassWeight, Iteration, RegressionLoss};
use crate::preprocess::Preprocessor;
use crate::{Dataset, MaxFeatures};

/// Which estimator a [`Trainer`] fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Algorithm {
    /// Logistic regression (binary or multinomial), via linfa.
    Logistic,
    /// Ordinary least squares, via smartcore.
    Linear,
    /// A CART decision tree (Gini), fitted by Wharf: deterministic for given data.
    Tree,
    /// A random forest: bagged CART trees, each split choosing among a fresh random draw of
    /// features ([`MaxFeatures`]); the same for a given seed.
    RandomForest,
    /// k-means clustering, via linfa.
    KMeans,
    /// Gradient-boosted trees for classification (binary log-loss, multiclass softmax),
    /// Wharf's own histogram booster: the model is a `wharf.tree-ensemble`.
    GradientBoosting,
    /// Gradient-boosted trees for regression (squared error).
    GradientBoostingRegressor,
}

impl Algorithm {
    /// What the algorithm predicts.
    pub fn task(self) -> Task {
        match self {
            Algorithm::Logistic | Algorithm::Tree | Algorithm::RandomForest | Algorithm::GradientBoosting => {
                Task::Classification
            }
            Algorithm::Linear | Algorithm::GradientBoostingRegressor => Task::Regression,
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
            Algorithm::GradientBoosting => "gbdt",
            Algorithm::GradientBoostingRegressor => "gbdt-regressor",
        }
    }
}

impl Algorithm {
    /// True for the gradient-boosted trees.
    pub fn is_boosting(self) -> bool {
        matches!(self, Algorithm::GradientBoosting | Algorithm::GradientBoostingRegressor)
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
            "gbdt" | "gradient-boosting" => Algorithm::GradientBoosting,
            "gbdt-regressor" | "gradient-boosting-regressor" => Algorithm::GradientBoostingRegressor,
            other => {
                return Err(WharfError::invalid(
                    "algorithm",
                    format!(
                    "unknown algorithm '{other}' (logistic, linear, tree, random-forest, kmeans, gbdt, gbdt-regressor)"
                ),
                ))
            }
        })
    }
}

/// The booster's hyper-parameters by [`Trainer::set_param`] name; the last two (the loss) are
/// the regressor's only.
const BOOST_PARAMS: &[&str] = &[
    "n_trees",
    "learning_rate",
    "max_leaves",
    "max_depth",
    "min_samples_leaf",
    "l2",
    "max_bins",
    "subsample",
    "colsample",
    "class_weight",
    "validation_fraction",
    "patience",
    "quantized_gradients",
    "loss",
    "huber_delta",
];

/// Fits a [`Model`] on a [`Dataset`]: learns the preprocessing, then the estimator.
#[derive(Debug, Clone)]
pub struct Trainer {
    algorithm: Algorithm,
    hyper: Hyper,
    observer: Option<Observer>,
}

/// Hears each boosting round (a progress bar, a learning curve).
#[derive(Clone)]
struct Observer(Arc<dyn Fn(&Iteration) + Send + Sync>);

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer")
    }
}

impl Trainer {
    /// A trainer for `algorithm` with sensible defaults.
    pub fn new(algorithm: Algorithm) -> Self {
        let max_depth = match algorithm {
            Algorithm::RandomForest => Some(10),
            _ => None,
        };
        let boosting = algorithm.is_boosting();
        Trainer {
            algorithm,
            hyper: Hyper {
                max_iterations: if algorithm == Algorithm::KMeans { 300 } else { 200 },
                // LightGBM's and scikit-learn's defaults for a booster: no L2, 20 rows a leaf.
                l2: if boosting { 0.0 } else { 1.0 },
                max_depth,
                min_samples_leaf: if boosting { 20 } else { 1 },
                n_trees: 100,
                max_features: MaxFeatures::default(),
                k: 3,
                seed: 42,
                learning_rate: 0.1,
                max_leaves: 31,
                max_bins: 255,
                subsample: 1.0,
                colsample: 1.0,
                class_weight: ClassWeight::None,
                validation_fraction: 0.0,
                patience: 10,
                loss: RegressionLoss::SquaredError,
                huber_delta: 1.0,
                quantized_gradients: true,
            },
            observer: None,
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
    /// A gradient-boosted tree classifier (Wharf's histogram booster).
    ///
    /// ```
    /// use wharf_ml::{datasets, Trainer};
    ///
    /// let data = datasets::breast_cancer();
    /// let model = Trainer::gradient_boosting().trees(20).learning_rate(0.2).max_leaves(15).fit(&data)?;
    /// assert_eq!(model.metadata().algorithm, "gbdt");
    /// # Ok::<(), wharf_core::WharfError>(())
    /// ```
    pub fn gradient_boosting() -> Self {
        Self::new(Algorithm::GradientBoosting)
    }
    /// A gradient-boosted tree regressor (squared error unless [`loss`](Self::loss) says
    /// otherwise).
    pub fn gradient_boosting_regressor() -> Self {
        Self::new(Algorithm::GradientBoostingRegressor)
    }

    /// What a boosted regressor minimises (default: squared error). Absolute error and
    /// Huber's loss keep a few wild targets from dragging every prediction towards them.
    /// Other algorithms refuse anything but the default when fitted.
    ///
    /// ```
    /// use wharf_ml::{datasets, RegressionLoss, Trainer};
    ///
    /// let data = datasets::diabetes();
    /// let model = Trainer::gradient_boosting_regressor().loss(RegressionLoss::AbsoluteError).trees(20).fit(&data)?;
    /// assert_eq!(model.metadata().params["loss"], "absolute_error");
    /// # Ok::<(), wharf_core::WharfError>(())
    /// ```
    pub fn loss(mut self, loss: RegressionLoss) -> Self {
        self.hyper.loss = loss;
        self
    }
    /// Where Huber's loss turns from squared to absolute, in the target's units (default 1,
    /// as LightGBM's `alpha` is 0.9: choose it from the residuals you expect).
    pub fn huber_delta(mut self, delta: f64) -> Self {
        self.hyper.huber_delta = delta;
        self
    }

    /// Whether a booster chooses its splits on gradients quantized to 8 bits (default:
    /// yes), LightGBM's `use_quantized_grad`: histograms of small packed integers take a
    /// quarter of the bytes and add exactly, and a fit takes about two thirds of the time.
    /// Each leaf's value is still the step of its rows' exact gradients, and the holdout
    /// scores stay within 0.003 of exact ones on the guide's tables. `false` sums the exact
    /// gradients, for a model to compare against.
    pub fn quantized_gradients(mut self, quantized: bool) -> Self {
        self.hyper.quantized_gradients = quantized;
        self
    }

    /// Shrinkage of each boosting round's trees (default 0.1).
    pub fn learning_rate(mut self, rate: f64) -> Self {
        self.hyper.learning_rate = rate;
        self
    }
    /// Most leaves of a boosted tree (default 31); trees grow best-leaf first.
    pub fn max_leaves(mut self, n: usize) -> Self {
        self.hyper.max_leaves = n;
        self
    }
    /// Most bins per feature, 2 to 255 (default 255); missing values get a bin of their own.
    pub fn max_bins(mut self, n: usize) -> Self {
        self.hyper.max_bins = n;
        self
    }
    /// Fraction of rows each boosting round draws, without replacement (default 1).
    pub fn subsample(mut self, fraction: f64) -> Self {
        self.hyper.subsample = fraction;
        self
    }
    /// Fraction of features each boosted tree draws (default 1).
    pub fn colsample(mut self, fraction: f64) -> Self {
        self.hyper.colsample = fraction;
        self
    }
    /// How a booster weighs classes (default: every row counts once).
    pub fn class_weight(mut self, weight: ClassWeight) -> Self {
        self.hyper.class_weight = weight;
        self
    }
    /// Early stopping: hold out this fraction of the training rows and stop boosting when
    /// their loss has not improved for [`patience`](Self::patience) rounds; the model keeps
    /// the best round. 0 (the default) boosts all `n_trees` rounds.
    pub fn validation_fraction(mut self, fraction: f64) -> Self {
        self.hyper.validation_fraction = fraction;
        self
    }
    /// Rounds without improvement before early stopping ends boosting (default 10).
    pub fn patience(mut self, rounds: usize) -> Self {
        self.hyper.patience = rounds;
        self
    }
    /// Calls `observer` after each boosting round with its losses (a progress bar, a
    /// learning curve). Other algorithms never call it.
    pub fn on_iteration(mut self, observer: impl Fn(&Iteration) + Send + Sync + 'static) -> Self {
        self.observer = Some(Observer(Arc::new(observer)));
        self
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
    /// How many features each split of a forest's trees draws as candidates: `sqrt` of
    /// the design width by default, as in scikit-learn's `RandomForestClassifier`. A count
    /// (`usize`) converts into [`MaxFeatures::Count`].
    pub fn max_features(mut self, max_features: impl Into<MaxFeatures>) -> Self {
        self.hyper.max_features = max_features.into();
        self
    }
    /// Minimum training rows in a tree leaf. In a forest a row the bootstrap drew twice
    /// counts once, as in scikit-learn. A booster's default is 20, as LightGBM's.
    pub fn min_samples_leaf(mut self, n: usize) -> Self {
        self.hyper.min_samples_leaf = n.max(1);
        self
    }
    /// L2 regularisation strength of logistic regression, or of a booster's leaf values
    /// (default 0 for a booster).
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

    /// The hyper-parameters a search may set for this algorithm, by [`set_param`](Self::set_param) name.
    pub fn param_names(&self) -> &'static [&'static str] {
        match self.algorithm {
            Algorithm::Logistic => &["l2", "max_iterations"],
            Algorithm::Linear => &[],
            Algorithm::Tree => &["max_depth", "min_samples_leaf"],
            Algorithm::RandomForest => &["n_trees", "max_depth", "min_samples_leaf", "max_features"],
            Algorithm::KMeans => &["k", "max_iterations"],
            // The regressor also takes the last two: its loss.
            Algorithm::GradientBoosting => &BOOST_PARAMS[..BOOST_PARAMS.len() - 2],
            Algorithm::GradientBoostingRegressor => BOOST_PARAMS,
        }
    }

    /// Sets hyper-parameter `name` from its text (as in a search space or a TOML file):
    /// `l2`, `max_iterations`, `max_depth` (a number or `none`), `min_samples_leaf`,
    /// `n_trees`, `max_features` (as [`MaxFeatures`] parses it), `k`, `seed`. A name the
    /// algorithm does not take, or a value that does not parse, is an error naming both.
    /// Ranges are the estimator's to judge when it is fitted (a negative `l2` fails there).
    pub fn set_param(mut self, name: &str, value: &str) -> Result<Self> {
        let value = value.trim();
        let bad = |what: &str| WharfError::invalid(format!("params.{name}"), format!("'{value}' is not {what}"));
        let positive = || value.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| bad("a whole number above 0"));
        let fraction = || value.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| bad("a number"));
        if name != "seed" && !self.param_names().contains(&name) {
            let known = self.param_names().join(", ");
            return Err(WharfError::invalid(
                format!("params.{name}"),
                format!(
                    "not a parameter of {} (it takes: {})",
                    self.algorithm.as_str(),
                    if known.is_empty() { "none" } else { &known }
                ),
            ));
        }
        match name {
            "seed" => self.hyper.seed = value.parse().map_err(|_| bad("a whole number"))?,
            "l2" => {
                self.hyper.l2 = value.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| bad("a number"))?
            }
            "max_iterations" => self.hyper.max_iterations = positive()? as u64,
            "max_depth" => {
                self.hyper.max_depth = match value {
                    "none" | "None" | "" => None,
                    _ => Some(positive()?),
                }
            }
            "min_samples_leaf" => self.hyper.min_samples_leaf = positive()?,
            "n_trees" => self.hyper.n_trees = positive()?,
            "max_features" => self.hyper.max_features = value.parse()?,
            "k" => self.hyper.k = positive()?,
            "learning_rate" => self.hyper.learning_rate = fraction()?,
            "max_leaves" => self.hyper.max_leaves = positive()?,
            "max_bins" => self.hyper.max_bins = positive()?,
            "subsample" => self.hyper.subsample = fraction()?,
            "colsample" => self.hyper.colsample = fraction()?,
            "class_weight" => self.hyper.class_weight = value.parse()?,
            "validation_fraction" => self.hyper.validation_fraction = fraction()?,
            "patience" => self.hyper.patience = positive()?,
            "loss" => self.hyper.loss = value.parse()?,
            "huber_delta" => self.hyper.huber_delta = fraction()?,
            "quantized_gradients" => {
                self.hyper.quantized_gradients = match value.trim() {
                    "true" | "True" | "1" | "yes" => true,
                    "false" | "False" | "0" | "no" => false,
                    _ => return Err(bad("true or false")),
                }
            }
            _ => unreachable!("checked against param_names above"),
        }
        Ok(self)
    }

    /// Sets every parameter in `params` ([`set_param`](Self::set_param)).
    pub fn with_params<'a>(self, params: impl IntoIterator<Item = (&'a String, &'a String)>) -> Result<Self> {
        params.into_iter().try_fold(self, |t, (k, v)| t.set_param(k, v))
    }

    /// The space a search explores when it is given none: a few values of each
    /// hyper-parameter around the defaults, on the scales that matter (powers of ten for a
    /// penalty, doublings for a depth), as scikit-learn users would grid them.
    pub fn param_space(&self) -> crate::select::ParamSpace {
        use crate::select::{Domain, ParamSpace};
        let list = |v: &[&str]| Domain::Values(v.iter().map(|s| s.to_string()).collect());
        let mut space = ParamSpace::new();
        match self.algorithm {
            Algorithm::Logistic => {
                space.insert("l2", list(&["0.001", "0.01", "0.1", "1", "10", "100"]));
            }
            Algorithm::Tree => {
                space.insert("max_depth", list(&["2", "4", "6", "8", "none"]));
                space.insert("min_samples_leaf", list(&["1", "5", "20"]));
            }
            Algorithm::RandomForest => {
                space.insert("n_trees", list(&["50", "100", "200"]));
                space.insert("max_depth", list(&["4", "8", "12", "none"]));
                space.insert("min_samples_leaf", list(&["1", "3", "10"]));
                space.insert("max_features", list(&["sqrt", "log2", "0.5"]));
            }
            Algorithm::KMeans => {
                space.insert("k", list(&["2", "3", "4", "5", "6", "8"]));
            }
            Algorithm::GradientBoosting | Algorithm::GradientBoostingRegressor => {
                space.insert("learning_rate", list(&["0.03", "0.1", "0.3"]));
                space.insert("max_leaves", list(&["15", "31", "63"]));
                space.insert("min_samples_leaf", list(&["5", "20", "50"]));
                space.insert("n_trees", list(&["100", "300"]));
            }
            Algorithm::Linear => {}
        }
        space
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
                    p.insert("max_features".into(), h.max_features.to_string());
                }
            }
            Algorithm::KMeans => {
                p.insert("k".into(), h.k.to_string());
                p.insert("max_iterations".into(), h.max_iterations.to_string());
            }
            Algorithm::GradientBoosting | Algorithm::GradientBoostingRegressor => {
                let g = self.boost_params();
                let depth = g.max_depth.map(|d| d.to_string()).unwrap_or_else(|| "none".into());
                for (k, v) in [
                    ("n_trees", g.n_trees.to_string()),
                    ("learning_rate", g.learning_rate.to_string()),
                    ("max_leaves", g.max_leaves.to_string()),
                    ("max_depth", depth),
                    ("min_samples_leaf", g.min_samples_leaf.to_string()),
                    ("l2", g.l2.to_string()),
                    ("max_bins", g.max_bins.to_string()),
                    ("subsample", g.subsample.to_string()),
                    ("colsample", g.colsample.to_string()),
                    ("class_weight", g.class_weight.to_string()),
                    ("validation_fraction", g.validation_fraction.to_string()),
                    ("patience", g.patience.to_string()),
                    ("quantized_gradients", g.quantized.to_string()),
                ] {
                    p.insert(k.into(), v);
                }
                if self.algorithm == Algorithm::GradientBoostingRegressor {
                    p.insert("loss".into(), g.loss.to_string());
                    if g.loss == RegressionLoss::Huber {
                        p.insert("huber_delta".into(), g.huber_delta.to_string());
                    }
                }
            }
        }
        p
    }

    /// The booster's parameters.
    pub(crate) fn boost_params(&self) -> gbdt::Params {
        let h = &self.hyper;
        gbdt::Params {
            n_trees: h.n_trees,
            learning_rate: h.learning_rate,
            max_leaves: h.max_leaves,
            max_depth: h.max_depth,
            min_samples_leaf: h.min_samples_leaf,
            l2: h.l2,
            max_bins: h.max_bins,
            subsample: h.subsample,
            colsample: h.colsample,
            class_weight: h.class_weight,
            validation_fraction: h.validation_fraction,
            patience: h.patience,
            seed: h.seed,
            loss: h.loss,
            huber_delta: h.huber_delta,
            quantized: h.quantized_gradients,
        }
    }

    /// Fits the model. Classification targets become text labels (sorted; probability
    /// column `i` is the `i`-th label); regression targets must be numeric; k-means ignores
    /// any target.
    pub fn fit(&self, data: &Dataset) -> Result<Model> {
        self.fit_inner(data, None)
    }

    /// [`fit`](Self::fit), telling `observer` of each boosting round too (after the
    /// trainer's own [`on_iteration`](Self::on_iteration) observer): a training job logs
    /// the learning curve to its tracker run this way.
    pub fn fit_observed(&self, data: &Dataset, observer: &mut dyn FnMut(&Iteration)) -> Result<Model> {
        self.fit_inner(data, Some(observer))
    }

    fn fit_inner(&self, data: &Dataset, observer: Option<&mut dyn FnMut(&Iteration)>) -> Result<Model> {
        crate::register();
        if data.n_rows() < 2 {
            return Err(WharfError::invalid(&data.name, "need at least two rows to train"));
        }
        let (model, predictions) = self.fit_estimator(data, observer)?;
        // The training data's profile, kept with the model for drift monitoring.
        let records = Records::Columns(data.features.clone());
        match predictions {
            Some(p) => with_profile_of(model, &records, &p),
            None => with_profile(model, &records),
        }
    }

    /// The model, and its predictions on `data` when the fit already knows them.
    fn fit_estimator(
        &self,
        data: &Dataset,
        mut observer: Option<&mut dyn FnMut(&Iteration)>,
    ) -> Result<(Model, Option<Predictions>)> {
        if self.algorithm.is_boosting() {
            let own = self.observer.clone();
            // Each round's training loss is a pass over every row: computed only for someone
            // who listens (a progress bar, a tracker), as LightGBM computes no metric it is
            // not asked for.
            let observed = own.is_some() || observer.is_some();
            let mut both = |it: &Iteration| {
                if let Some(o) = &own {
                    (o.0)(it);
                }
                if let Some(o) = observer.as_mut() {
                    o(it);
                }
            };
            return crate::boost::fit(self, data, observed, &mut both);
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
            other => return Err(WharfError::Training(format!("no estimator is fitted for {other} models"))),
        };
        let sample_input = (0..data.n_rows().min(3)).map(|i| data.features.row(i)).collect();
        let metadata = ModelMetadata {
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
        };
        let model = Model::new(metadata, Arc::new(FittedEstimator::new(preprocessor, estimator)))
            .map_err(|e| WharfError::Training(format!("fitted model is inconsistent: {e}")))?;
        Ok((model, None))
    }
}

/// Versions of the libraries that produce and read models.
pub fn library_versions() -> BTreeMap<String, String> {
    // The learning libraries' versions are the ones pinned in the workspace manifest.
    let mut versions = wharf_core::library_versions();
    versions.extend([("linfa", "0.8.1"), ("smartcore", "0.4.10")].map(|(k, v)| (k.to_string(), v.to_string())));
    versions
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
