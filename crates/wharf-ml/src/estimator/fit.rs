//! Fitting: linfa and smartcore do most of the learning, the results are copied into
//! [`Estimator`]; trees are Wharf's own CART (see [`cart`] for why).
//!
//! Which library for what: linfa for logistic regression (binary and multinomial, L-BFGS)
//! and k-means; smartcore for linear regression, because its SVD solver
//! copes with the rank-deficient design matrices one-hot encoding produces (all levels plus
//! an intercept), where a plain normal-equations solve fails.

use linfa::prelude::*;
use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use super::{cart, Estimator, FlatTree};
use wharf_core::{Result, WharfError};

/// Hyper-parameters shared by the built-in algorithms; each uses the ones that apply.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Hyper {
    pub(crate) max_iterations: u64,
    pub(crate) l2: f64,
    pub(crate) max_depth: Option<usize>,
    pub(crate) min_samples_leaf: usize,
    pub(crate) n_trees: usize,
    pub(crate) max_features: Option<usize>,
    pub(crate) k: usize,
    pub(crate) seed: u64,
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

fn fit_tree(x: ArrayView2<'_, f64>, y: &[usize], features: &[usize], n_classes: usize, h: &Hyper) -> Result<FlatTree> {
    let limits = cart::Limits { max_depth: h.max_depth, min_samples_leaf: h.min_samples_leaf };
    cart::fit(x, y, features, n_classes, limits)
}

pub(crate) fn decision_tree(x: &Array2<f64>, y: &Array1<usize>, n_classes: usize, h: &Hyper) -> Result<Estimator> {
    let all: Vec<usize> = (0..x.ncols()).collect();
    Ok(Estimator::Tree(fit_tree(x.view(), y.as_slice().unwrap_or(&y.to_vec()), &all, n_classes, h)?))
}

/// Bagging with random feature subspaces: each tree sees a bootstrap sample of the rows
/// and `max_features` (default √width) of the columns. Trees are fitted on all cores; each
/// tree's randomness comes from `seed + index` and tree fitting is deterministic, so a
/// seed gives the same forest in every process and on any machine.
pub(crate) fn random_forest(x: &Array2<f64>, y: &Array1<usize>, n_classes: usize, h: &Hyper) -> Result<Estimator> {
    if h.n_trees == 0 {
        return Err(WharfError::invalid("n_trees", "a forest needs at least one tree"));
    }
    let (n, width) = x.dim();
    let max_features =
        h.max_features.unwrap_or_else(|| ((width as f64).sqrt().ceil() as usize).max(1)).clamp(1, width.max(1));
    let labels = y.to_vec();
    let fit_one = |t: usize| -> Result<FlatTree> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(h.seed.wrapping_add(t as u64));
        let rows: Vec<usize> = (0..n).map(|_| rng.gen_range(0..n)).collect();
        let mut features: Vec<usize> = (0..width).collect();
        features.shuffle(&mut rng);
        features.truncate(max_features);
        features.sort_unstable();
        let sample = x.select(Axis(0), &rows);
        let sample_y: Vec<usize> = rows.iter().map(|&r| labels[r]).collect();
        fit_tree(sample.view(), &sample_y, &features, n_classes, h)
    };
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(h.n_trees);
    let results: Vec<Result<FlatTree>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|w| {
                let fit_one = &fit_one;
                scope.spawn(move || (w..h.n_trees).step_by(threads).map(|t| (t, fit_one(t))).collect::<Vec<_>>())
            })
            .collect();
        let mut all: Vec<(usize, Result<FlatTree>)> = handles
            .into_iter()
            .flat_map(|handle| match handle.join() {
                Ok(v) => v,
                Err(_) => vec![(usize::MAX, Err(WharfError::Training("a tree-fitting thread panicked".into())))],
            })
            .collect();
        all.sort_by_key(|(t, _)| *t);
        all.into_iter().map(|(_, r)| r).collect()
    });
    let trees = results.into_iter().collect::<Result<Vec<_>>>()?;
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
