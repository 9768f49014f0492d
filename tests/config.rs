//! Configuration precedence and errors (ported from the Python original's config tests):
//! defaults < wharf.toml < profile files < WHARF_* environment < code.

use std::path::Path;

use wharf::container::Reason;
use wharf::prelude::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[cfg(feature = "mlflow")]
fn mlflow(c: &WharfConfig) -> wharf::mlflow::MlflowConfig {
    wharf::mlflow::MlflowConfig::tracking(c).expect("tracking.mlflow")
}

#[cfg(feature = "bentoml")]
fn bentoml(c: &WharfConfig) -> wharf::bentoml::BentoMlConfig {
    wharf::bentoml::BentoMlConfig::from_wharf(c).expect("serving.bentoml")
}

#[cfg(feature = "openlineage")]
fn openlineage(c: &WharfConfig) -> wharf::Result<wharf::openlineage::OpenLineageConfig> {
    wharf::openlineage::OpenLineageConfig::from_wharf(c)
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write");
}

#[test]
fn defaults_without_files_or_env() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = WharfConfig::load_from(dir.path(), env(&[])).expect("load");
    assert_eq!(c, WharfConfig::default());
    assert_eq!(c.tracking.backend, "file");
    assert_eq!(c.registry.dir, Path::new("wharf-registry"));
    assert_eq!(c.tracking.dir, Path::new("wharf-runs"));
    assert_eq!(c.lineage.path, Path::new("wharf-lineage.jsonl"));
    assert_eq!(c.serving.backend, "local");
}

#[cfg(all(feature = "mlflow", feature = "bentoml"))]
#[test]
fn file_then_profile_then_env_then_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "wharf.toml",
        "[tracking]\nbackend = \"noop\"\n[tracking.mlflow]\nexperiment = \"base\"\n[registry]\ndir = \"base-reg\"\n",
    );
    write(dir.path(), "wharf.prod.toml", "[tracking.mlflow]\nexperiment = \"prod\"\nuri = \"http://127.0.0.1:5000\"\n");
    let c = WharfConfig::load_from(dir.path(), env(&[])).expect("base");
    assert_eq!(c.tracking.backend, "noop");
    assert_eq!(mlflow(&c).experiment, "base");

    let c = WharfConfig::load_from(dir.path(), env(&[("WHARF_PROFILE", "prod")])).expect("profile");
    assert_eq!(mlflow(&c).experiment, "prod", "the profile beats the base file");
    assert_eq!(c.tracking.backend, "noop", "keys the profile leaves alone keep the base value");
    assert_eq!(c.registry.dir, Path::new("base-reg"));

    let mut c = WharfConfig::load_from(
        dir.path(),
        env(&[
            ("WHARF_PROFILE", "prod"),
            ("WHARF_TRACKING__MLFLOW__EXPERIMENT", "from-env"),
            ("WHARF_SERVING__BENTOML__MAX_BATCH", "64"),
            ("WHARF_TRACKING__BACKEND", "noop"),
            ("HOME", "/x"),
        ]),
    )
    .expect("env");
    assert_eq!(mlflow(&c).experiment, "from-env", "the environment beats files");
    assert_eq!(bentoml(&c).max_batch, 64, "numbers parse from environment text");
    assert_eq!(c.tracking.backend, "noop", "the environment chose the tracker");

    // Code has the last word: what a program sets on the loaded struct is what the context
    // it builds uses, over the file and the environment that chose otherwise.
    let runs = dir.path().join("runs-from-code");
    c.tracking.backend = "file".into();
    c.tracking.dir = runs.clone();
    let mut set = mlflow(&c);
    set.experiment = "from-code".into();
    c.set_adapter(wharf::mlflow::config::TRACKING_KEY, &set).expect("set");
    c.registry.dir = dir.path().join("registry-from-code");
    c.lineage.path = dir.path().join("lineage-from-code.jsonl");
    let ctx = Wharf::from_config(c).expect("build");
    assert_eq!(ctx.tracker().name(), "file", "code's tracker, not the environment's noop");
    let choice = ctx.report().choices.iter().find(|c| c.port == "tracker").expect("tracker line");
    assert_eq!(choice.reason, Reason::Configured { key: "tracking.backend", value: "file".into() });
    assert_eq!(mlflow(ctx.config()).experiment, "from-code", "code has the last word");
    assert_eq!(ctx.config().registry.dir, dir.path().join("registry-from-code"), "code beats the base file");
    let run = ctx.tracker().start_run(Some("precedence")).expect("start");
    run.finish().expect("finish");
    let written = std::fs::read_dir(&runs).map(|d| d.count()).unwrap_or(0);
    assert!(written > 0, "the run went to the directory set in code ({})", runs.display());
}

#[test]
fn later_profiles_win() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "wharf.a.toml", "[lineage]\nbackend = \"noop\"\npath = \"a.jsonl\"\n");
    write(dir.path(), "wharf.b.toml", "[lineage]\npath = \"b.jsonl\"\n");
    let c = WharfConfig::load_from(dir.path(), env(&[("WHARF_PROFILE", "a, b")])).expect("load");
    assert_eq!(c.lineage.path, Path::new("b.jsonl"));
    assert_eq!(c.lineage.backend, "noop");
}

#[test]
fn unknown_key_in_file_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "wharf.toml", "[tracking]\nbackendd = \"noop\"\n");
    match WharfConfig::load_from(dir.path(), env(&[])) {
        Err(WharfError::Config { key, .. }) => assert_eq!(key, "tracking.backendd"),
        other => panic!("{other:?}"),
    }
    write(dir.path(), "wharf.toml", "[trackin]\nbackend = \"noop\"\n");
    match WharfConfig::load_from(dir.path(), env(&[])) {
        Err(WharfError::Config { key, .. }) => assert_eq!(key, "trackin"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_env_key_names_the_variable() {
    let dir = tempfile::tempdir().expect("tempdir");
    match WharfConfig::load_from(dir.path(), env(&[("WHARF_TRACKING__BACKEN", "noop")])) {
        Err(WharfError::Config { key, .. }) => assert_eq!(key, "WHARF_TRACKING__BACKEN"),
        other => panic!("{other:?}"),
    }
}

#[cfg(feature = "openlineage")]
#[test]
fn bad_values_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    // An adapter's table is read by the adapter: its bad values are named when it reads them.
    match WharfConfig::load_from(dir.path(), env(&[("WHARF_LINEAGE__OPENLINEAGE__TIMEOUT_MS", "soon")]))
        .and_then(|c| openlineage(&c))
    {
        Err(WharfError::Config { key, message }) => {
            assert_eq!(key, "WHARF_LINEAGE__OPENLINEAGE__TIMEOUT_MS");
            assert!(message.contains("soon"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    write(dir.path(), "wharf.toml", "[serving]\nbackend = 3\n");
    match WharfConfig::load_from(dir.path(), env(&[])) {
        Err(WharfError::Config { key, .. }) => assert_eq!(key, "serving.backend"),
        other => panic!("{other:?}"),
    }
    write(dir.path(), "wharf.toml", "[serving\n");
    assert!(matches!(WharfConfig::load_from(dir.path(), env(&[])), Err(WharfError::Config { .. })), "broken TOML");
}

#[test]
fn missing_profile_or_config_file_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    match WharfConfig::load_from(dir.path(), env(&[("WHARF_PROFILE", "staging")])) {
        Err(WharfError::Config { key, message }) => {
            assert_eq!(key, "WHARF_PROFILE");
            assert!(message.contains("staging"));
        }
        other => panic!("{other:?}"),
    }
    assert!(WharfConfig::load_from(dir.path(), env(&[("WHARF_CONFIG", "nope.toml")])).is_err());
    write(dir.path(), "other.toml", "[registry]\ndir = \"elsewhere\"\n");
    let c = WharfConfig::load_from(dir.path(), env(&[("WHARF_CONFIG", "other.toml")])).expect("WHARF_CONFIG");
    assert_eq!(c.registry.dir, Path::new("elsewhere"));
}

#[cfg(feature = "openlineage")]
#[test]
fn masked_toml_hides_api_keys() {
    let mut c = WharfConfig::default();
    let mut ol = wharf::openlineage::OpenLineageConfig::default();
    ol.api_key = Some("secret-key".into());
    c.set_adapter(wharf::openlineage::config::KEY, &ol).expect("set");
    let text = c.to_toml_masked();
    assert!(!text.contains("secret-key"));
    assert!(text.contains("***"));
}

#[cfg(feature = "openlineage")]
#[test]
fn openlineage_variables_sit_below_wharf_variables() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "wharf.toml", "[lineage.openlineage]\nurl = \"http://file:1\"\nnamespace = \"from-file\"\n");
    let c = WharfConfig::load_from(
        dir.path(),
        env(&[
            ("OPENLINEAGE_URL", "http://127.0.0.1:5000"),
            ("OPENLINEAGE_NAMESPACE", "from-ol-env"),
            ("OPENLINEAGE_API_KEY", "s3cret"),
            ("WHARF_LINEAGE__OPENLINEAGE__NAMESPACE", "from-wharf-env"),
        ]),
    )
    .expect("load");
    let ol = &openlineage(&c).expect("openlineage table");
    assert_eq!(ol.url.as_deref(), Some("http://127.0.0.1:5000"), "OPENLINEAGE_URL beats the file");
    assert_eq!(ol.namespace, "from-wharf-env", "WHARF_* beats OPENLINEAGE_*");
    assert_eq!(ol.api_key.as_deref(), Some("s3cret"));

    match WharfConfig::load_from(dir.path(), env(&[("WHARF_LINEAGE__OPENLINEAGE__STRICT", "maybe")]))
        .and_then(|c| openlineage(&c))
    {
        Err(WharfError::Config { key, .. }) => assert_eq!(key, "WHARF_LINEAGE__OPENLINEAGE__STRICT"),
        other => panic!("expected a config error, got {other:?}"),
    }
    let c = WharfConfig::load_from(dir.path(), env(&[("WHARF_LINEAGE__OPENLINEAGE__STRICT", "true")])).expect("bool");
    assert!(openlineage(&c).expect("openlineage table").strict);
}
