//! # wharf-ml
//!
//! Wharf's own machine learning: the built-in estimators (logistic and linear regression, a
//! CART decision tree, a random forest, k-means), the [`Trainer`] that fits them on linfa and
//! smartcore, preprocessing, the compiled scoring kernels, bundled [`datasets`], [`metrics`]
//! (with the [`curves`] and [`importance`] a model card draws) and [`import`]ers for models
//! fitted in scikit-learn.
//!
//! Every model this crate produces is a [`wharf_core::Model`] of kind
//! [`wharf.estimator`](wharf_core::kind::BUILTIN_ESTIMATOR_KIND), whose scoring behaviour is
//! [`FittedEstimator`]. The ports, records, the artifact container and the scoring path live
//! in `wharf-core`, which knows nothing of this crate: [`register`] tells it how to decode
//! this crate's models. The `wharf` facade re-exports this crate and registers it.
#![warn(missing_docs)]

mod boost;
mod builtin;
pub mod curves;
mod dataset;
mod estimator;
pub mod import;
pub mod importance;
mod max_features;
pub mod metrics;
mod preprocess;
pub mod select;
mod train;

pub use builtin::{register, FittedEstimator};
pub use dataset::{datasets, read_csv, CsvOptions, Dataset};
pub use max_features::MaxFeatures;
pub use metrics::{evaluate, Metrics};
pub use train::{library_versions, Algorithm, ClassWeight, Iteration, RegressionLoss, Trainer};
