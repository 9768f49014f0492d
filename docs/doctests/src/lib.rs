//! The README's and the guide's Rust blocks, compiled and run as doctests so they cannot
//! drift from the code.
//!
//! One item per page of `docs/src/SUMMARY.md` that has Rust blocks, and the README. The
//! pages are shared by every crate of the workspace, and a published crate may contain only
//! files from its own directory, so they are tested here, in a crate that is never
//! published and depends on all the others. A page whose blocks need an adapter or an
//! engine is included only with that feature; the tests run with `--all-features`.

#[cfg(doctest)]
pub mod guide {
    #[doc = include_str!("../../../README.md")]
    pub struct Readme;
    #[doc = include_str!("../../src/quickstart.md")]
    pub struct Quickstart;
    #[doc = include_str!("../../src/concepts.md")]
    pub struct Concepts;
    #[doc = include_str!("../../src/ports.md")]
    pub struct Ports;
    #[doc = include_str!("../../src/port-model-server.md")]
    pub struct PortModelServer;
    #[cfg(feature = "bentoml")]
    #[doc = include_str!("../../src/bentoml.md")]
    pub struct Bentoml;
    #[doc = include_str!("../../src/port-tracker.md")]
    pub struct PortTracker;
    #[cfg(feature = "mlflow")]
    #[doc = include_str!("../../src/mlflow.md")]
    pub struct Mlflow;
    #[doc = include_str!("../../src/port-registry.md")]
    pub struct PortRegistry;
    #[cfg(feature = "openlineage")]
    #[doc = include_str!("../../src/port-lineage.md")]
    pub struct PortLineage;
    #[cfg(feature = "openlineage")]
    #[doc = include_str!("../../src/lineage.md")]
    pub struct Lineage;
    #[doc = include_str!("../../src/boosting.md")]
    pub struct Boosting;
    #[doc = include_str!("../../src/tuning.md")]
    pub struct Tuning;
    #[doc = include_str!("../../src/reports.md")]
    pub struct Reports;
    #[cfg(feature = "serve")]
    #[doc = include_str!("../../src/serving.md")]
    pub struct Serving;
    #[doc = include_str!("../../src/scoring.md")]
    pub struct Scoring;
    #[doc = include_str!("../../src/examples.md")]
    pub struct Examples;
    #[doc = include_str!("../../src/bring-your-model.md")]
    pub struct BringYourModel;
    #[doc = include_str!("../../src/python.md")]
    pub struct Python;
    #[doc = include_str!("../../src/security.md")]
    pub struct Security;
    #[doc = include_str!("../../src/performance.md")]
    pub struct Performance;
    #[doc = include_str!("../../src/migrating.md")]
    pub struct Migrating;
    #[doc = include_str!("../../src/cli.md")]
    pub struct Cli;
    #[doc = include_str!("../../src/configuration.md")]
    pub struct Configuration;
    #[doc = include_str!("../../src/contributing.md")]
    pub struct Contributing;
    #[doc = include_str!("../../src/pipelines.md")]
    pub struct Pipelines;
    #[doc = include_str!("../../src/runner.md")]
    pub struct Runner;
    #[doc = include_str!("../../src/batch.md")]
    pub struct Batch;
    #[doc = include_str!("../../src/streaming.md")]
    pub struct Streaming;
    #[doc = include_str!("../../src/scaleout.md")]
    pub struct ScaleOut;
    #[cfg(feature = "datafusion")]
    #[doc = include_str!("../../src/datafusion.md")]
    pub struct Datafusion;
    #[cfg(feature = "ballista")]
    #[doc = include_str!("../../src/ballista.md")]
    pub struct Ballista;
}
