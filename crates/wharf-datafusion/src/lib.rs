//! # wharf-datafusion
//!
//! Registered Wharf models as [DataFusion](https://datafusion.apache.org) SQL functions, so
//! a model scores Parquet and CSV files (or any DataFusion table) inside a query:
//!
//! ```sql
//! SELECT lead_id,
//!        wharf_predict('lead@champion', source, industry, pages_viewed, minutes_on_site,
//!                      emails_opened, company_size, days_since_signup) AS prediction,
//!        get_field(wharf_predict_proba('lead@champion', source, industry, pages_viewed,
//!                  minutes_on_site, emails_opened, company_size, days_since_signup), 'yes') AS p_yes
//! FROM 'leads.parquet'
//! ```
//!
//! - `wharf_predict('model', feature, ...)` returns the class label (`Utf8`) of a classifier,
//!   the value (`Float64`) of a regression, the cluster index (`UInt32`) of a clustering.
//! - `wharf_predict_proba('model', feature, ...)` returns a struct with one `Float64` field per
//!   class, named by the class label; a classifier only.
//!
//! The first argument is a text literal naming the model as the CLI does: `name`
//! (the latest version), `name@3` or `name@alias`. The remaining arguments are the model's
//! features **in the order of its signature** (`wharf models show NAME` lists them): any
//! numeric type for a numeric feature (cast to `Float64`), text for a categorical one.
//!
//! **Plan-time checks.** An unknown model, a wrong number of arguments, a wrong argument type
//! (naming the argument's position and the feature), or probabilities asked of a model that
//! is not a classifier fail when the query is planned, before any data is read.
//!
//! **Nulls.** A row with a null in any feature argument gets a null result (and a null struct,
//! whose fields are null too, from `wharf_predict_proba`). This is stricter than the model's
//! own handling of a missing value (imputation), on purpose: in SQL a null usually means
//! "unknown", and a score silently computed from a training mean would look like a real one.
//! Use `COALESCE` to impute explicitly. A `NaN` in a numeric column is not null: the model
//! imputes it as it does for any missing number. A categorical value the model was not
//! trained on fails the query, naming the feature and the value.
//!
//! **Model versions.** Each reference is resolved through the [`RegistryPort`] the first time
//! a query names it, and then kept for the life of the [`WharfUdfs`] (usually the session):
//! all queries in a session see one version per reference, even if the alias moves. Call
//! [`WharfUdfs::refresh`] (or start a new session) to pick up a moved alias or a new latest
//! version.
//!
//! **Scoring** builds the model's input straight from the Arrow buffers of each batch (one
//! matrix per batch, nothing allocated per row) and scores it through `wharf_core::score`,
//! the scoring path every Wharf job shares, so DataFusion scores each file partition on its
//! own core. Each model is loaded onto a model server from a
//! [`ModelServers`] factory: in process with [`WharfUdfs::new`],
//! the container's with [`WharfUdfs::with_model_servers`] (so `serving.backend = "bentoml"`
//! sends the rows to BentoML, after the signature check here).
//!
//! The crate re-exports the [`datafusion`] it is built with; use that one, since a DataFusion
//! of another version has types that do not mix with these.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

use std::sync::Arc;

use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::SessionContext;
use wharf_core::{ModelRef, ModelServers, RegistryPort};

pub use datafusion;

mod input;
mod models;
pub mod sql;
mod udf;

use models::ModelCache;
use udf::{Output, ScoringFunction};

/// The name of the prediction function in SQL.
pub const PREDICT: &str = "wharf_predict";
/// The name of the probabilities function in SQL.
pub const PREDICT_PROBA: &str = "wharf_predict_proba";

/// Wharf's scoring functions over one registry, sharing one cache of loaded models.
///
/// Cloning is cheap and shares the cache. Build one per session (see [`register`]) so that
/// its queries agree on model versions; build the functions of a distributed engine's
/// processes from the same registry.
#[derive(Debug, Clone)]
pub struct WharfUdfs {
    models: Arc<ModelCache>,
}

impl WharfUdfs {
    /// Functions that resolve models through `registry` and score them in this process.
    pub fn new(registry: Arc<dyn RegistryPort>) -> Self {
        Self::with_model_servers(registry, ModelServers::local())
    }

    /// Functions that resolve models through `registry` and load each onto a server from
    /// `servers` (the container's factory, so `serving.backend` decides where they score).
    pub fn with_model_servers(registry: Arc<dyn RegistryPort>, servers: ModelServers) -> Self {
        WharfUdfs { models: Arc::new(ModelCache::new(registry, servers)) }
    }

    /// `wharf_predict`.
    pub fn predict(&self) -> ScalarUDF {
        ScalarUDF::new_from_impl(ScoringFunction::new(Output::Prediction, Arc::clone(&self.models)))
    }

    /// `wharf_predict_proba`.
    pub fn predict_proba(&self) -> ScalarUDF {
        ScalarUDF::new_from_impl(ScoringFunction::new(Output::Probabilities, Arc::clone(&self.models)))
    }

    /// Both functions.
    pub fn udfs(&self) -> Vec<ScalarUDF> {
        vec![self.predict(), self.predict_proba()]
    }

    /// Registers both functions with `registry`: a [`SessionContext`], or the `SessionState`
    /// a session builder makes (as a distributed scheduler needs).
    pub fn register_with(&self, registry: &mut dyn FunctionRegistry) -> datafusion::common::Result<()> {
        for udf in self.udfs() {
            registry.register_udf(Arc::new(udf))?;
        }
        Ok(())
    }

    /// Forgets the loaded models, so the next query resolves each reference again: how a
    /// long-lived session picks up a moved alias or a new latest version. A query running
    /// across a refresh scores its later batches with the new version, but fails rather than
    /// return a column of another type than it planned (other classes, say).
    pub fn refresh(&self) {
        self.models.clear();
    }

    /// The references resolved so far, for reports.
    pub fn loaded(&self) -> Vec<ModelRef> {
        self.models.references()
    }
}

/// Registers `wharf_predict` and `wharf_predict_proba` on `ctx`, resolving models through
/// `registry` and scoring them in this process. Returns the functions' handle, for
/// [`WharfUdfs::refresh`].
pub fn register(ctx: &SessionContext, registry: Arc<dyn RegistryPort>) -> WharfUdfs {
    register_udfs(ctx, WharfUdfs::new(registry))
}

/// Registers `udfs` (made with [`WharfUdfs::with_model_servers`], say) on `ctx` and returns
/// them.
pub fn register_udfs(ctx: &SessionContext, udfs: WharfUdfs) -> WharfUdfs {
    for udf in udfs.udfs() {
        ctx.register_udf(udf);
    }
    udfs
}
