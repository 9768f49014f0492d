//! Container semantics (ported from the Python original's container and application tests,
//! with its override flaw fixed): a caller's adapter always wins, missing features fail at
//! build time, and the report says what was chosen and why.

use std::sync::Arc;

use wharf::container::Reason;
use wharf::prelude::*;
use wharf::{FileRegistry, NoOpLineage, NoOpTracker};

fn config(toml: &str) -> WharfConfig {
    WharfConfig::from_toml_str(toml).expect("config")
}

#[test]
fn defaults_need_no_server() {
    let ctx = Wharf::from_config(WharfConfig::default()).expect("build");
    assert_eq!(ctx.model_server().name(), "local");
    assert_eq!(ctx.tracker().name(), "file");
    assert_eq!(ctx.registry().name(), "file");
    assert_eq!(ctx.lineage().name(), "file");
}

#[test]
fn config_selects_backends() {
    let ctx =
        Wharf::from_config(config("[tracking]\nbackend = \"noop\"\n[lineage]\nbackend = \"noop\"")).expect("build");
    assert_eq!(ctx.tracker().name(), "noop");
    assert_eq!(ctx.lineage().name(), "noop");
    let tracker = ctx.report().choices.iter().find(|c| c.port == "tracker").expect("tracker line");
    assert_eq!(tracker.reason, Reason::Configured { key: "tracking.backend", value: "noop".into() });
}

/// The Python original lets a framework default silently beat a user adapter registered
/// after it. Here registration order cannot matter: pass one takes the caller's adapters.
#[test]
fn registered_adapter_wins_over_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = Wharf::builder()
        .tracker(NoOpTracker::new())
        .registry(FileRegistry::new(dir.path()))
        .build(config("[tracking]\nbackend = \"file\""))
        .expect("build");
    assert_eq!(ctx.tracker().name(), "noop");
    let line = ctx.report().choices.iter().find(|c| c.port == "tracker").expect("line");
    assert_eq!(line.reason, Reason::Registered);
    assert!(ctx.report().to_string().contains("registered in code"));
}

/// A registered adapter wins even when the configuration names an adapter this build lacks.
#[test]
fn registered_adapter_wins_over_unavailable_config() {
    let ctx = Wharf::builder()
        .lineage(NoOpLineage::new())
        .build(config("[lineage]\nbackend = \"openlineage\""))
        .expect("a registered lineage sink means the configured one is never built");
    assert_eq!(ctx.lineage().name(), "noop");
}

#[cfg(not(feature = "mlflow"))]
#[test]
fn missing_feature_fails_at_build_with_its_name() {
    match Wharf::from_config(config("[tracking]\nbackend = \"mlflow\"")) {
        Err(WharfError::AdapterUnavailable { adapter, feature }) => {
            assert_eq!(adapter, "mlflow");
            assert_eq!(feature, "mlflow");
        }
        other => panic!("expected AdapterUnavailable, got {other:?}"),
    }
}

#[cfg(not(feature = "openlineage"))]
#[test]
fn missing_openlineage_feature_is_named() {
    let err = Wharf::from_config(config("[lineage]\nbackend = \"openlineage\"")).expect_err("unavailable");
    assert!(err.to_string().contains("Cargo feature 'openlineage'"), "{err}");
}

#[test]
fn unknown_backend_names_the_key_and_choices() {
    match Wharf::from_config(config("[registry]\nbackend = \"s3\"")) {
        Err(WharfError::Config { key, message }) => {
            assert_eq!(key, "registry.backend");
            assert!(message.contains("file") && message.contains("mlflow"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn services_resolve_by_type_and_duplicates_are_wiring_errors() {
    #[derive(Debug, PartialEq)]
    struct FeatureCache(u32);
    let ctx = Wharf::builder().service(FeatureCache(7)).build(WharfConfig::default()).expect("build");
    assert_eq!(ctx.container().service::<FeatureCache>().as_deref(), Some(&FeatureCache(7)));
    assert!(ctx.container().service::<String>().is_none(), "absent service resolves to None");
    let err = Wharf::builder()
        .service(FeatureCache(1))
        .service(FeatureCache(2))
        .build(WharfConfig::default())
        .expect_err("duplicate");
    assert!(matches!(err, WharfError::Wiring(_)), "{err:?}");
}

#[test]
fn the_container_hands_out_shared_instances() {
    let ctx = Wharf::from_config(WharfConfig::default()).expect("build");
    let a = ctx.model_server().clone();
    let b = ctx.clone();
    assert!(Arc::ptr_eq(&a, b.model_server()), "the same server instance (a singleton per container)");
}

#[test]
fn the_core_names_no_optional_adapter_and_the_facade_lists_each_once() {
    let core: Vec<&str> = wharf::AdapterCatalog::defaults().entries().iter().map(|e| e.1).collect();
    assert!(core.iter().all(|b| ["local", "file", "noop"].contains(b)), "{core:?}");
    let entries = wharf::adapter_catalog().entries();
    for (port, backend, compiled_in) in [
        ("tracker", "mlflow", cfg!(feature = "mlflow")),
        ("registry", "mlflow", cfg!(feature = "mlflow")),
        ("lineage", "openlineage", cfg!(feature = "openlineage")),
        ("model_server", "bentoml", cfg!(feature = "bentoml")),
    ] {
        let rows: Vec<_> = entries.iter().filter(|e| e.0 == port && e.1 == backend).collect();
        assert_eq!(rows.len(), 1, "{port}/{backend}: {entries:?}");
        assert_eq!(rows[0].2, Some(backend), "the entry names its feature");
        assert_eq!(rows[0].3, compiled_in, "{port}/{backend}");
    }
}

#[test]
fn an_adapter_table_no_adapter_owns_is_named() {
    match Wharf::from_config(config("[tracking.mlfow]\nuri = \"http://127.0.0.1:5000\"")) {
        Err(WharfError::Config { key, message }) => {
            assert_eq!(key, "tracking.mlfow");
            assert!(message.contains("mlflow"), "{message}");
        }
        other => panic!("expected a config error, got {:?}", other.map(|_| ())),
    }
}

#[cfg(feature = "mlflow")]
#[test]
fn the_effective_configuration_fills_in_compiled_in_adapters_defaults() {
    let set = config("[tracking.mlflow]\nexperiment = \"mine\"");
    let shown = wharf::adapter_catalog().effective_config(&set).expect("effective");
    let mlflow = wharf::mlflow::MlflowConfig::tracking(&shown).expect("table");
    assert_eq!(mlflow.experiment, "mine", "what was set wins");
    assert_eq!(mlflow.timeout_ms, 30_000, "the rest is the adapter's defaults");
    assert!(shown.to_toml_masked().contains("[tracking.mlflow]"));
}
