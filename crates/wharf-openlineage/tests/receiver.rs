//! The emitter against a real HTTP receiver on loopback that validates every event against
//! the official OpenLineage 2-0-2 schemas (see `common`).

mod common;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use common::{spec_dir_or_skip, Receiver, Schemas};
use serde_json::{json, Value};
use wharf::prelude::*;
use wharf_core::{LineageEventType, WharfError};
use wharf_openlineage::mapping::dataset_name;
use wharf_openlineage::OpenLineageConfig;
use wharf_openlineage::OpenLineageEmitter;

/// The schemas and a receiver, or `None` when the spec is missing (the test is skipped).
fn setup(test: &str, token: Option<&str>) -> Option<(Arc<Schemas>, Receiver)> {
    let dir = spec_dir_or_skip(test)?;
    let schemas = Arc::new(Schemas::load(&dir));
    let receiver = Receiver::start(schemas.clone(), token);
    Some((schemas, receiver))
}

/// A strict emitter config for `url` whose spool lives in `dir`.
fn config(url: &str, dir: &Path) -> OpenLineageConfig {
    with(OpenLineageConfig::default(), |c| {
        c.url = Some(url.to_string());
        c.strict = true;
        c.spool_path = dir.join("spool.jsonl");
    })
}

/// `base` changed by `change` (the config is `#[non_exhaustive]`: no struct literals).
fn with(mut base: OpenLineageConfig, change: impl FnOnce(&mut OpenLineageConfig)) -> OpenLineageConfig {
    change(&mut base);
    base
}

fn emitter(config: &OpenLineageConfig) -> OpenLineageEmitter {
    OpenLineageEmitter::from_config(config).expect("emitter")
}

/// A URL where nothing listens: a port bound then released.
fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

#[test]
fn the_validator_accepts_the_specs_own_examples_and_rejects_broken_events() {
    let Some(dir) = spec_dir_or_skip("spec examples") else { return };
    let schemas = Schemas::load(&dir);
    let mut checked = 0;
    for entry in std::fs::read_dir(dir.join("tests")).expect("tests dir") {
        let folder = entry.expect("entry").path();
        let facet_file =
            dir.join("facets").join(format!("{}.json", folder.file_name().and_then(|n| n.to_str()).unwrap_or("")));
        for example in std::fs::read_dir(&folder).expect("examples") {
            let path = example.expect("entry").path();
            let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
            let errors: Vec<String> = if facet_file.is_file() {
                // A facet example: `{"<facet name>": {...}}`, valid against the facet file's root.
                let facet: Value =
                    serde_json::from_str(&std::fs::read_to_string(&facet_file).expect("read")).expect("json");
                let id = facet["$id"].as_str().expect("$id");
                schemas.validator(id).iter_errors(&doc).map(|e| e.to_string()).collect()
            } else {
                schemas.run_event_errors(&doc)
            };
            assert!(errors.is_empty(), "{} should be valid: {errors:?}", path.display());
            checked += 1;
        }
    }
    assert!(checked > 30, "only {checked} examples found");

    let good = json!({
        "eventType": "START", "eventTime": "2026-11-22T11:30:00.123Z",
        "run": {"runId": "0190a5b8-6c1e-7b7e-9d3f-2a1b3c4d5e6f"},
        "job": {"namespace": "ns", "name": "job"},
        "producer": "https://github.com/wharf-rs/wharf/tree/v0.1.0",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
    });
    assert_eq!(schemas.run_event_errors(&good), Vec::<String>::new());
    for (pointer, bad) in [
        ("/run/runId", json!("not-a-uuid")),
        ("/eventTime", json!("2026-11-22T11:30:00")),
        ("/eventType", json!("DONE")),
        ("/producer", json!("wharf")),
    ] {
        let mut event = good.clone();
        *event.pointer_mut(pointer).expect("pointer") = bad;
        assert!(!schemas.run_event_errors(&event).is_empty(), "{pointer} should be refused");
    }
    let mut no_language = good.clone();
    no_language["run"]["facets"] = json!({"errorMessage": {
        "_producer": "https://github.com/wharf-rs/wharf/tree/v0.1.0",
        "_schemaURL": wharf_openlineage::facets::ERROR_MESSAGE_RUN_FACET, "message": "boom"}});
    assert!(!schemas.run_event_errors(&no_language).is_empty(), "facet schemas are checked");
    let mut bad_model = good;
    bad_model["run"]["facets"] = json!({"wharf_model": {
        "_producer": "https://github.com/wharf-rs/wharf/tree/v0.1.0",
        "_schemaURL": wharf_openlineage::facets::WHARF_MODEL_RUN_FACET, "name": "m", "sha256": "xyz"}});
    assert!(!schemas.run_event_errors(&bad_model).is_empty(), "the wharf_model schema is checked");
}

#[test]
fn facet_schema_urls_name_known_schemas() {
    let Some(dir) = spec_dir_or_skip("facet urls") else { return };
    let schemas = Schemas::load(&dir);
    use wharf_openlineage::facets::*;
    for url in [
        SCHEMA_DATASET_FACET,
        DATASOURCE_DATASET_FACET,
        SOURCE_CODE_LOCATION_JOB_FACET,
        JOB_TYPE_JOB_FACET,
        PARENT_RUN_FACET,
        ERROR_MESSAGE_RUN_FACET,
        PROCESSING_ENGINE_RUN_FACET,
        WHARF_MODEL_RUN_FACET,
    ] {
        let base = url.split('#').next().unwrap_or_default();
        assert!(schemas.facets.contains_key(base), "{url} is not a known facet schema");
    }
    let own: Value = serde_json::from_str(WHARF_MODEL_FACET_SCHEMA).expect("json");
    assert_eq!(own["$id"], WHARF_MODEL_FACET_ID);
}

#[test]
fn the_emitter_passes_the_lineage_conformance_suite() {
    let Some((_, receiver)) = setup("conformance", None) else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let emitter = emitter(&config(&receiver.url, dir.path()));
    wharf_core::conformance::run_lineage_suite(&emitter);
    assert_eq!(receiver.statuses(), [201], "the valid event was accepted, the invalid one never sent");
}

fn ctx_for(url: &str, dir: &Path) -> Wharf {
    let mut config = WharfConfig::default();
    config.registry.dir = dir.join("registry");
    config.tracking.dir = dir.join("runs");
    config.lineage.backend = "openlineage".into();
    let mut ol = self::config(url, dir);
    ol.namespace = "wharf-tests".into();
    config.set_adapter(wharf_openlineage::config::KEY, &ol).expect("set");
    Wharf::from_config(config).expect("build")
}

#[test]
fn a_training_run_emits_valid_start_and_complete_with_the_model_schema() {
    let Some((_, receiver)) = setup("train job", None) else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = ctx_for(&receiver.url, dir.path());
    assert_eq!(ctx.lineage().name(), "openlineage");
    let data = datasets::breast_cancer();
    let outcome = TrainJob::new(data.clone(), Trainer::logistic_regression(), "cancer").run(&ctx, |_| {}).expect("job");

    assert_eq!(receiver.statuses(), [201, 201]);
    let events = receiver.events();
    let (start, complete) = (&events[0], &events[1]);
    assert_eq!(start["eventType"], "START");
    assert_eq!(complete["eventType"], "COMPLETE");
    assert_eq!(start["run"]["runId"], complete["run"]["runId"]);
    assert_eq!(complete["job"], start["job"]);
    assert_eq!(complete["job"]["namespace"], "wharf-tests");
    assert_eq!(complete["job"]["name"], "train-cancer");

    let (input_ns, input_name) = dataset_name(&data.name, "wharf-tests");
    for event in [start, complete] {
        assert_eq!(event["inputs"][0]["namespace"], input_ns.as_str());
        assert_eq!(event["inputs"][0]["name"], input_name.as_str());
    }
    let output = &complete["outputs"][0];
    assert_eq!((output["namespace"].as_str(), output["name"].as_str()), (Some("registry"), Some("cancer/1")));

    // The model's schema facet: its input features, in order, as DOUBLE.
    let features: Vec<&str> = outcome.model.signature().feature_names().collect();
    let fields = output["facets"]["schema"]["fields"].as_array().expect("schema facet");
    assert_eq!(fields.iter().map(|f| f["name"].as_str().unwrap_or("")).collect::<Vec<_>>(), features);
    assert!(fields.iter().all(|f| f["type"] == "DOUBLE"));
    let input_fields = complete["inputs"][0]["facets"]["schema"]["fields"].as_array().expect("input schema");
    assert_eq!(input_fields.len(), features.len() + 1, "the training data also has the target");

    let model = &complete["run"]["facets"]["wharf_model"];
    assert_eq!(model["name"], "cancer");
    assert_eq!(model["version"], 1);
    let info = ctx.registry().version_info("cancer", &Selector::Version(Version(1))).expect("info");
    assert_eq!(model["sha256"], info.sha256.as_str());
    assert_eq!(model["metrics"]["accuracy"], json!(outcome.metrics["accuracy"]));
    assert_eq!(complete["run"]["facets"]["processing_engine"]["name"], "wharf");
    assert!(complete["eventTime"].as_str().is_some_and(|t| t.ends_with("+00:00") || t.ends_with('Z')));
}

#[test]
fn a_failing_run_emits_fail_with_the_error() {
    let Some((_, receiver)) = setup("failing job", None) else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = ctx_for(&receiver.url, dir.path());
    let job = TrainJob::new(datasets::lead_scoring(), Trainer::linear_regression(), "bad");
    let err = job.run(&ctx, |_| {}).expect_err("linear regression on a text target fails");
    let events = receiver.events();
    assert_eq!(events.len(), 2, "START and FAIL: {:?}", receiver.statuses());
    let fail = &events[1];
    assert_eq!(fail["eventType"], "FAIL");
    assert_eq!(fail["run"]["runId"], events[0]["run"]["runId"]);
    assert_eq!(fail["run"]["facets"]["errorMessage"]["message"], err.to_string().as_str());
    assert_eq!(fail["run"]["facets"]["errorMessage"]["programmingLanguage"], "RUST");
}

#[test]
fn a_503_is_retried_and_a_4xx_is_not() {
    let Some((_, receiver)) = setup("retry", None) else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let emitter = emitter(&config(&receiver.url, dir.path()));
    receiver.fail_next.store(1, Ordering::SeqCst);
    emitter.emit(&LineageEvent::new("retried")).expect("delivered on the second attempt");
    assert_eq!(receiver.statuses(), [503, 201]);

    receiver.fail_next.store(5, Ordering::SeqCst);
    let err = emitter.emit(&LineageEvent::new("given-up")).expect_err("retries are bounded");
    assert!(matches!(err, WharfError::Backend { .. }), "{err}");
    assert_eq!(receiver.statuses().len(), 2 + 3, "one attempt plus two retries");
}

#[test]
fn the_bearer_token_is_sent_and_a_wrong_one_is_refused() {
    let Some((_, receiver)) = setup("bearer", Some("s3cret")) else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(&receiver.url, dir.path());
    cfg.api_key = Some("s3cret".into());
    emitter(&cfg).emit(&LineageEvent::new("authorized")).expect("accepted");
    assert_eq!(receiver.requests.lock().expect("lock")[0].authorization.as_deref(), Some("Bearer s3cret"));

    cfg.api_key = Some("wrong".into());
    let err = emitter(&cfg).emit(&LineageEvent::new("refused")).expect_err("401");
    assert!(err.to_string().contains("401"), "{err}");
    assert_eq!(receiver.statuses(), [201, 401], "a 401 is not retried");
}

#[test]
fn gzip_bodies_are_accepted() {
    let Some((_, receiver)) = setup("gzip", None) else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(&receiver.url, dir.path());
    cfg.compression = "gzip".into();
    emitter(&cfg).emit(&LineageEvent::new("zipped").input("file:data/x.csv")).expect("accepted");
    assert_eq!(receiver.requests.lock().expect("lock")[0].content_encoding.as_deref(), Some("gzip"));
    assert_eq!(receiver.events()[0]["inputs"][0]["name"], "data/x.csv");
}

#[test]
fn the_receiver_answers_like_a_real_backend() {
    let Some((_, receiver)) = setup("receiver", None) else { return };
    let client = reqwest::blocking::Client::new();
    let url = format!("{}/api/v1/lineage", receiver.url);
    let post = |content_type: &str, body: String| {
        client.post(&url).header("Content-Type", content_type).body(body).send().expect("post").status().as_u16()
    };
    assert_eq!(post("text/plain", "{}".into()), 415);
    assert_eq!(post("application/json", "{not json".into()), 400);
    // Wharf's own event type names, forwarded raw (what the Python original did), are refused.
    let raw = serde_json::to_string(&LineageEvent::new("raw")).expect("json");
    assert_eq!(post("application/json", raw), 400);
    assert!(receiver.events().is_empty());
}

#[test]
fn an_unreachable_receiver_spools_and_replay_sends_later() {
    let Some((_, receiver)) = setup("spool", None) else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(&dead_url(), dir.path());
    cfg.retries = 0;
    cfg.timeout_ms = 2_000;

    let strict = emitter(&cfg);
    assert!(matches!(strict.emit(&LineageEvent::new("strict")), Err(WharfError::Backend { .. })));
    assert!(!cfg.spool_path.exists(), "strict mode does not spool");

    cfg.strict = false;
    let lenient = emitter(&cfg);
    let first = LineageEvent::new("spooled-1");
    lenient.emit(&first).expect("the job goes on");
    lenient.emit(&LineageEvent::new("spooled-2")).expect("the job goes on");
    let spooled = std::fs::read_to_string(&cfg.spool_path).expect("spool");
    assert_eq!(spooled.lines().count(), 2);

    // Replaying while the receiver is still down keeps everything.
    assert_eq!(lenient.replay().expect("replay").remaining, 2);
    assert_eq!(std::fs::read_to_string(&cfg.spool_path).expect("spool").lines().count(), 2);

    cfg.url = Some(receiver.url.clone());
    let report = emitter(&cfg).replay().expect("replay");
    assert_eq!((report.sent, report.remaining), (2, 0));
    let events = receiver.events();
    assert_eq!(events[0]["job"]["name"], "spooled-1");
    assert_eq!(events[0]["run"]["runId"], first.run_id.as_str());
    assert!(!cfg.spool_path.exists() || std::fs::read_to_string(&cfg.spool_path).expect("spool").is_empty());
    assert_eq!(emitter(&cfg).replay().expect("empty replay"), Default::default());
}

#[test]
fn the_file_transport_writes_valid_run_events() {
    let Some((schemas, _receiver)) = setup("file transport", None) else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = with(Default::default(), |c| {
        c.transport = "file".into();
        c.path = dir.path().join("ol.jsonl");
    });
    let emitter = emitter(&cfg);
    emitter.emit(&LineageEvent::new("a").event_type(LineageEventType::Start).input("bundled:iris")).expect("a");
    emitter.emit(&LineageEvent::new("a").parent("pipeline", "not-a-uuid")).expect("b");
    let text = std::fs::read_to_string(&cfg.path).expect("file");
    assert_eq!(text.lines().count(), 2);
    for line in text.lines() {
        let event: Value = serde_json::from_str(line).expect("json");
        assert_eq!(schemas.run_event_errors(&event), Vec::<String>::new(), "{line}");
    }
    let console = with(Default::default(), |c| c.transport = "console".into());
    OpenLineageEmitter::from_config(&console).expect("console").emit(&LineageEvent::new("printed")).expect("stdout");
}

#[test]
fn invalid_configs_are_errors_naming_the_key() {
    let key_of = |cfg: OpenLineageConfig| match OpenLineageEmitter::from_config(&cfg) {
        Err(WharfError::Config { key, .. }) => key,
        other => panic!("expected a config error, got {other:?}"),
    };
    let http = |url: Option<&str>| with(Default::default(), |c| c.url = url.map(String::from));
    assert_eq!(key_of(http(None)), "lineage.openlineage.url");
    assert_eq!(key_of(http(Some("not a url"))), "lineage.openlineage.url");
    assert_eq!(key_of(http(Some("ftp://example.com"))), "lineage.openlineage.url");
    let transport = with(http(Some("http://127.0.0.1:1")), |c| c.transport = "kafka".into());
    assert_eq!(key_of(transport), "lineage.openlineage.transport");
    let gz = with(http(Some("http://127.0.0.1:1")), |c| c.compression = "brotli".into());
    assert_eq!(key_of(gz), "lineage.openlineage.compression");
    let ns = with(http(Some("http://127.0.0.1:1")), |c| c.namespace = " ".into());
    assert_eq!(key_of(ns), "lineage.openlineage.namespace");

    // Through the facade: the container fails when it is built.
    let config =
        WharfConfig::from_toml_str("[lineage]\nbackend = \"openlineage\"\n[lineage.openlineage]\nurl = \"nope\"\n")
            .expect("parses");
    match Wharf::from_config(config) {
        Err(WharfError::Config { key, .. }) => assert_eq!(key, "lineage.openlineage.url"),
        other => panic!("expected a config error, got {:?}", other.map(|_| ())),
    }
}
