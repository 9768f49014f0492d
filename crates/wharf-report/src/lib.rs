//! # wharf-report
//!
//! The model card: one self-contained HTML file (inline SVG and CSS, no JavaScript, nothing
//! fetched) that shows a registered model at a glance — its summary, signature, parameters,
//! holdout metrics and plots. Plots are drawn by `plotters`' SVG backend.
//!
//! A [`ModelReport`] is built from a model and, when there are any, its registry entry
//! ([`VersionInfo`](wharf_core::VersionInfo)), labelled holdout rows and the tracked run that
//! made it ([`RunRecord`](wharf_core::RunRecord), for the learning curve). Whatever is
//! missing shows as a message in the card, never as a failure.
//!
//! ```no_run
//! use wharf_report::ModelReport;
//! # fn card(model: &wharf_core::Model, holdout: &wharf_ml::Dataset) -> wharf_core::Result<()> {
//! let report = ModelReport::builder(model).holdout(holdout).build()?;
//! report.write("card.html")?;
//! # Ok(()) }
//! ```
//!
//! Every plot is a `<figure data-plot="ID" data-points="N">`, `N` being the number of data
//! points drawn (curve vertices, scatter markers, bars or cells), so scripts and tests can
//! find a plot and check it.
#![warn(missing_docs)]

mod analysis;
mod drift;
mod html;
pub mod plots;
mod report;

pub use drift::drift_html;
pub use report::{ModelReport, Plot, ReportBuilder, ReportOptions, Section};
