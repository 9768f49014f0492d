//! Fitting: linfa and smartcore do most of the learning, the results are copied into
//! [`Estimator`]; trees are Wharf's own CART (see [`cart`] for why).
//!
//! Which library for what: linfa for logistic regression (binary and multinomial, L-BFGS)
//! and k-means; smartcore for linear regression, because its SVD solver
//! copes with the rank-deficient design matrices one-hot encoding produces (all levels plus
//! an intercept), where a plain normal-equations solve fails.

use linfa::prelude::*;
use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use super::{cart, Estimator, FlatTree};
use crate::MaxFeatures;
use wharf_core::{Result, WharfError};

/// Hyper-parameters shared by the built-in algorithms; each uses the ones that apply.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Hyper {
    pub(crate) max_iterations: u64,
    pub(crate) l2: f64,
    pub(crate) max_depth: Option<usize>,
    pub(crate) min_samples_leaf: usize,
    pub(crate) n_trees: usize,
    pub(crate) max_features: MaxFeatures,
    pub(crate) k: usize,
    pub(crate) seed: u64,
    pub(crate) learning_rate: f64,
    pub(crate) max_leaves: usize,
    pub(crate) max_bins: usize,
    pub(crate) subsample: f64,
    pub(crate) colsample: f64,
    pub(crate) class_weight: super::gbdt::ClassWeight,
    pub(crate) validation_fraction: f64,
    pub(crate) patience: usize,
    pub(crate) loss: super::gbdt::RegressionLoss,
    pub(crate) huber_delta: f64,
    pub(crate) quantized_gradients: bool,
}

fn training_error(e: impl std::fmt::Display) -> WharfError {
    WharfError::Training(e.to_string())
}

pub(crate) fn logistic(x: &Array2<f64>, y: &Array1<usize>, n_classes: usize, h: &Hyper) -> Result<Estimator> {
    let data = DatasetBase::new(x.clone(), y.clone());
    if n_classes == 2 {
        let fitted = linfa_logistic::LogisticRegression::default()
            .alpha(h.l2)
            .max_iterations(h.max_iterations)
            .fit(&data)
            .map_err(training_error)?;
        // linfa reports P(its "positive" label), which is whichever label it chose as
        // positive, not necessarily class 1: record which one it is.
        let positive = fitted.labels().pos.class as u32;
        Ok(Estimator::LogisticBinary { weights: fitted.params().to_vec(), intercept: fitted.intercept(), positive })
    } else {
        let fitted = linfa_logistic::MultiLogisticRegression::default()
            .alpha(h.l2)
            .max_iterations(h.max_iterations)
            .fit(&data)
            .map_err(training_error)?;
        // linfa's params are width × (classes it saw, in its own order); reorder into ours.
        let width = x.ncols();
        let mut weights = vec![0.0; n_classes * width];
        let mut intercept = vec![f64::NEG_INFINITY; n_classes];
        for (col, &class) in fitted.classes().iter().enumerate() {
            for f in 0..width {
                weights[class * width + f] = fitted.params()[(f, col)];
            }
            intercept[class] = fitted.intercept()[col];
        }
        if intercept.iter().any(|v| !v.is_finite()) {
            return Err(WharfError::Training("a class has no training rows".into()));
        }
        Ok(Estimator::LogisticMulti { weights, intercept })
    }
}

pub(crate) fn linear(x: &Array2<f64>, y: &[f64]) -> Result<Estimator> {
    use smartcore::linalg::basic::matrix::DenseMatrix;
    use smartcore::linear::linear_regression::{
        LinearRegression, LinearRegressionParameters, LinearRegressionSolverName,
    };
    let (n, width) = x.dim();
    let values: Vec<f64> = x.iter().copied().collect();
    let matrix = DenseMatrix::new(n, width, values, false).map_err(training_error)?;
    let target = y.to_vec();
    let params = LinearRegressionParameters::default().with_solver(LinearRegressionSolverName::SVD);
    let fitted: LinearRegression<f64, f64, DenseMatrix<f64>, Vec<f64>> =
        LinearRegression::fit(&matrix, &target, params).map_err(training_error)?;
    use smartcore::linalg::basic::arrays::Array;
    let coefficients = fitted.coefficients();
    let weights: Vec<f64> = (0..width).map(|f| *coefficients.get((f, 0))).collect();
    let intercept = *fitted.intercept();
    if weights.iter().any(|w| !w.is_finite()) || !intercept.is_finite() {
        return Err(WharfError::Training("linear regression did not converge to finite weights".into()));
    }
    Ok(Estimator::Linear { weights, intercept })
}

fn limits(h: &Hyper) -> cart::Limits {
    cart::Limits { max_depth: h.max_depth, min_samples_leaf: h.min_samples_leaf }
}

pub(crate) fn decision_tree(x: &Array2<f64>, y: &Array1<usize>, n_classes: usize, h: &Hyper) -> Result<Estimator> {
    let all: Vec<usize> = (0..x.ncols()).collect();
    let labels = y.to_vec();
    Ok(Estimator::Tree(cart::fit(x.view(), &labels, &all, n_classes, limits(h))?))
}

/// Breiman's random forest, as scikit-learn fits it: each tree sees a bootstrap sample of
/// the rows (`n` draws with replacement) and each split chooses among `max_features`
/// features drawn afresh at that split. Trees are fitted on rayon's pool; each tree's
/// randomness comes from its own generator seeded with `seed + index` and is consumed in
/// the tree's own (fixed) node order, so a seed gives the same forest, bit for bit, in
/// every process, on any machine and with any number of threads.
pub(crate) fn random_forest(x: &Array2<f64>, y: &Array1<usize>, n_classes: usize, h: &Hyper) -> Result<Estimator> {
    if h.n_trees == 0 {
        return Err(WharfError::invalid("n_trees", "a forest needs at least one tree"));
    }
    let (n, width) = x.dim();
    let count = h.max_features.resolve(width)?;
    let labels = y.to_vec();
    let columns = cart::Columns::new(x.view());
    let fit_one = |t: usize| -> Result<FlatTree> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(h.seed.wrapping_add(t as u64));
        // How often the bootstrap drew each row: the tree weighs rows instead of copying them.
        let mut weights = vec![0u32; n];
        for _ in 0..n {
            weights[rng.gen_range(0..n)] += 1;
        }
        let candidates = cart::Candidates::Sample { count, rng: &mut rng };
        cart::fit_weighted(&columns, &labels, &weights, n_classes, limits(h), candidates)
    };
    let trees = (0..h.n_trees).into_par_iter().map(fit_one).collect::<Result<Vec<_>>>()?;
    Ok(Estimator::Forest { trees })
}

pub(crate) fn kmeans(x: &Array2<f64>, h: &Hyper) -> Result<Estimator> {
    if h.k == 0 || h.k > x.nrows() {
        return Err(WharfError::invalid("k", format!("k must be between 1 and the number of rows ({})", x.nrows())));
    }
    let rng = Xoshiro256PlusPlus::seed_from_u64(h.seed);
    let data = DatasetBase::from(x.clone());
    let fitted = linfa_clustering::KMeans::params_with_rng(h.k, rng)
        .max_n_iterations(h.max_iterations)
        .tolerance(1e-6)
        .fit(&data)
        .map_err(training_error)?;
    Ok(Estimator::KMeans { centroids: fitted.centroids().iter().copied().collect() })
}
