//! Model selection: cross-validation, hyper-parameter search and the comparison that gates a
//! promotion.
//!
//! A model is chosen on measured improvement only: [`cross_validate`] measures a trainer on
//! folds it never trained on, [`search`](crate::select) ranks trainers by that measure, and
//! [`compare`](crate::select) decides whether a challenger beats a champion on the same
//! held-out rows by more than noise.

mod compare;
mod cv;
mod folds;
mod metric;
mod search;
mod space;

pub use compare::{compare, metric_value, Bootstrap, Comparison, Outputs, Truth};
pub use cv::{cross_validate, plan, CvReport};
pub use folds::{Folds, Split, Strategy};
pub use metric::Metric;
pub use search::{search, Outcome, SearchOptions, SearchReport, Strategy as Search, Trial};
pub use space::{Domain, ParamSpace, Params};

#[cfg(test)]
mod tests;
