//! The file registry's edge cases: version numbers running out, one damaged version among
//! many, an alias on a name that does not exist, and temporary files a killed writer left.

use std::fs;

use wharf_core::{FileRegistry, RegistryExt, RegistryPort, Selector, Version, WharfError};
use wharf_ml::{datasets, Trainer};

fn model() -> wharf_core::Model {
    Trainer::logistic_regression().fit(&datasets::iris()).expect("fit")
}

#[test]
fn the_last_version_number_is_a_typed_error_and_the_name_stays_usable() {
    let dir = tempfile::tempdir().expect("dir");
    let registry = FileRegistry::new(dir.path());
    let model = model();
    assert_eq!(registry.register(&model, "full").expect("first"), Version(1));
    // Version numbers up to u64::MAX - 1 can be handed out; the one after cannot.
    fs::write(dir.path().join("full/next"), (u64::MAX - 1).to_string()).expect("next");
    assert_eq!(registry.register(&model, "full").expect("the last number"), Version(u64::MAX - 1));
    match registry.register(&model, "full") {
        Err(WharfError::InvalidInput { path: field, message }) => {
            assert_eq!(field, "full");
            assert!(message.contains("version number"), "{message}");
        }
        other => panic!("expected a typed error, got {other:?}"),
    }
    fs::write(dir.path().join("full/next"), u64::MAX.to_string()).expect("next");
    assert!(matches!(registry.register(&model, "full"), Err(WharfError::InvalidInput { .. })));
    // Nothing half-done: the name still lists, loads and takes aliases.
    let listed = registry.list().expect("list");
    assert_eq!(listed[0].versions.iter().map(|v| v.version).collect::<Vec<_>>(), [Version(1), Version(u64::MAX - 1)]);
    registry.load_selected("full", &Selector::Latest).expect("load the last version");
    registry.set_alias("full", "champion", &Version(1)).expect("alias");
}

#[test]
fn one_damaged_version_does_not_hide_the_others() {
    let dir = tempfile::tempdir().expect("dir");
    let registry = FileRegistry::new(dir.path());
    let model = model();
    for name in ["alpha", "beta"] {
        registry.register(&model, name).expect("register");
        registry.register(&model, name).expect("register");
    }
    fs::write(dir.path().join("alpha/versions/2/meta.json"), b"{ not json").expect("damage");
    fs::write(dir.path().join("beta/aliases.json"), b"[").expect("damage");
    let listed = registry.list().expect("the list still works");
    let names: Vec<&str> = listed.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["alpha", "beta"]);
    let alpha = &listed[0];
    assert_eq!(alpha.versions.iter().map(|v| v.version).collect::<Vec<_>>(), [Version(1)]);
    assert_eq!(alpha.unreadable.len(), 1);
    assert_eq!(alpha.unreadable[0].version, Version(2));
    assert!(alpha.unreadable[0].reason.contains("meta.json"), "{}", alpha.unreadable[0].reason);
    // Unreadable aliases: the versions are listed, without aliases, and the problem named.
    let beta = &listed[1];
    assert_eq!(beta.versions.len(), 2);
    assert!(beta.unreadable.iter().any(|u| u.reason.contains("aliases")), "{:?}", beta.unreadable);
    // Loading the damaged version itself is still an error naming the file.
    let err = registry.load_selected("alpha", &Selector::Version(Version(2))).expect_err("damaged");
    assert!(err.to_string().contains("meta.json"), "{err}");
}

#[test]
fn aliases_on_unknown_names_leave_nothing_behind() {
    let dir = tempfile::tempdir().expect("dir");
    let registry = FileRegistry::new(dir.path().join("registry"));
    assert!(matches!(registry.set_alias("ghost", "champion", &Version(1)), Err(WharfError::NotFound { .. })));
    assert!(matches!(registry.delete_alias("ghost", "champion"), Err(WharfError::NotFound { .. })));
    assert!(matches!(registry.delete_version("ghost", &Version(1)), Err(WharfError::NotFound { .. })));
    assert!(!dir.path().join("registry/ghost").exists(), "no directory for a name never registered");
    assert!(registry.list().expect("list").is_empty());
}

#[test]
fn temporary_files_of_a_killed_writer_are_cleaned() {
    let dir = tempfile::tempdir().expect("dir");
    let registry = FileRegistry::new(dir.path());
    let model = model();
    registry.register(&model, "m").expect("register");
    // What a writer killed between writing and renaming leaves (see fsutil::write_atomic).
    let stale = [".next.tmp-0190a0b0c0d0e0f0a0b0c0d0e0f0a0b0", ".aliases.json.tmp-0190a0b0c0d0e0f0a0b0c0d0e0f0a0b1"];
    for name in stale {
        fs::write(dir.path().join("m").join(name), b"7").expect("stale");
    }
    registry.register(&model, "m").expect("register");
    for name in stale {
        assert!(!dir.path().join("m").join(name).exists(), "{name} is cleaned by the next writer");
    }
    // Alias writers clean them too.
    fs::write(dir.path().join("m").join(stale[0]), b"7").expect("stale");
    registry.set_alias("m", "champion", &Version(2)).expect("alias");
    assert!(!dir.path().join("m").join(stale[0]).exists());
    assert_eq!(registry.load("m", "champion").map(|m| m.kind_id().to_string()).expect("load"), "wharf.estimator");
}

#[test]
fn an_undefined_metric_does_not_make_a_version_unreadable() {
    // JSON has no NaN: meta.json holds null for an undefined metric (ROC AUC on a one-class
    // holdout), which must read back.
    let dir = tempfile::tempdir().expect("dir");
    let registry = FileRegistry::new(dir.path());
    let model = model().with_metrics([("roc_auc".to_string(), f64::NAN)]);
    registry.register(&model, "nan").expect("register");
    let listed = registry.list().expect("list");
    assert!(listed[0].unreadable.is_empty(), "{:?}", listed[0].unreadable);
    assert!(listed[0].versions[0].metrics["roc_auc"].is_nan());
}
