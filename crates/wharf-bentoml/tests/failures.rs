//! Failure policy without a BentoML service: unreachable and silent services, the breaker,
//! and the configuration errors. These need no backend.

mod common;

use std::time::{Duration, Instant};

use wharf_bentoml::BentoMlConfig;
use wharf_bentoml::BentoMlModelServer;
use wharf_core::{ModelServerPort, Records, WharfError};

fn records() -> Records<'static> {
    Records::Rows(common::iris_model().metadata().sample_input.clone())
}

#[test]
fn an_unreachable_service_is_a_clear_backend_error_then_the_breaker_fails_fast() {
    let url = format!("http://127.0.0.1:{}", common::closed_port());
    let config = common::with(BentoMlConfig::default(), |c| {
        c.url = Some(url);
        c.timeout_ms = 2_000;
        c.retries = 1;
        c.breaker_failures = 4;
        c.breaker_cooldown_ms = 60_000;
    });
    let server = BentoMlModelServer::from_config(&config).expect("server");
    server.load(common::iris_model()).expect("load");
    for _ in 0..2 {
        let start = Instant::now();
        match server.predict(&records()) {
            Err(WharfError::Backend { adapter, message, .. }) => {
                assert_eq!(adapter, "bentoml");
                assert!(message.contains("cannot reach BentoML") && message.contains("/predict"), "{message}");
            }
            other => panic!("expected a Backend error, got {other:?}"),
        }
        assert!(start.elapsed() < Duration::from_secs(2), "no hang past the timeout: {:?}", start.elapsed());
    }
    // Two calls × (1 try + 1 retry) = 4 consecutive failures: the breaker is open now.
    let records = records();
    let start = Instant::now();
    for _ in 0..100 {
        match server.predict_proba(&records) {
            Err(WharfError::Backend { message, .. }) => assert!(message.contains("circuit open"), "{message}"),
            other => panic!("expected a fast circuit-open error, got {other:?}"),
        }
    }
    assert!(start.elapsed() < Duration::from_millis(200), "fail fast without network: {:?}", start.elapsed());
    assert!(!server.ready(), "an open breaker is not ready");
}

#[test]
fn the_breaker_closes_again_after_the_cool_down() {
    let url = format!("http://127.0.0.1:{}", common::closed_port());
    let config = common::with(BentoMlConfig::default(), |c| {
        c.url = Some(url);
        c.retries = 0;
        c.breaker_failures = 1;
        c.breaker_cooldown_ms = 200;
    });
    let server = BentoMlModelServer::from_config(&config).expect("server");
    server.load(common::iris_model()).expect("load");
    let first = server.predict(&records()).expect_err("down").to_string();
    assert!(first.contains("cannot reach"), "{first}");
    let second = server.predict(&records()).expect_err("open").to_string();
    assert!(second.contains("circuit open"), "{second}");
    std::thread::sleep(Duration::from_millis(250));
    let third = server.predict(&records()).expect_err("half-open: tried again").to_string();
    assert!(third.contains("cannot reach"), "after the cool-down the network is tried again: {third}");
}

#[test]
fn a_silent_service_times_out_without_retries() {
    // Accepts connections but never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let config = common::with(BentoMlConfig::default(), |c| {
        c.url = Some(format!("http://127.0.0.1:{port}"));
        c.timeout_ms = 300;
        c.retries = 3;
    });
    let server = BentoMlModelServer::from_config(&config).expect("server");
    server.load(common::iris_model()).expect("load");
    let start = Instant::now();
    match server.predict(&records()) {
        Err(WharfError::Backend { message, .. }) => assert!(message.contains("no answer within"), "{message}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_millis(1_000), "one timeout, not four: {elapsed:?}");
    drop(listener);
}

#[test]
fn predict_before_load_and_categorical_models() {
    let config = common::with(BentoMlConfig::default(), |c| {
        c.url = Some("http://127.0.0.1:9".into());
    });
    let server = BentoMlModelServer::from_config(&config).expect("server");
    assert!(matches!(server.predict(&records()), Err(WharfError::NoModelLoaded)));
    assert!(!server.ready());
    assert!(!server.capabilities().in_process);
    let tips = wharf_ml::Trainer::logistic_regression().fit(&categorical_data()).expect("train");
    assert!(matches!(server.load(tips), Err(WharfError::Unsupported(_))));
}

fn categorical_data() -> wharf_ml::Dataset {
    let csv = "colour,size,label\nred,1,a\nblue,2,b\nred,3,a\nblue,4,b\n";
    let options = wharf_ml::CsvOptions { target: Some("label".into()), ..Default::default() };
    wharf_ml::Dataset::from_csv_reader(csv.as_bytes(), "inline", &options).expect("csv")
}

#[test]
fn configuration_errors_name_their_key() {
    let cases: Vec<(BentoMlConfig, &str)> = vec![
        (BentoMlConfig::default(), "serving.bentoml.url"),
        (
            common::with(BentoMlConfig::default(), |c| {
                c.url = Some("not a url".into());
            }),
            "serving.bentoml.url",
        ),
        (
            common::with(BentoMlConfig::default(), |c| {
                c.url = Some("ftp://x".into());
            }),
            "serving.bentoml.url",
        ),
        (
            common::with(BentoMlConfig::default(), |c| {
                c.url = Some("http://x".into());
                c.max_batch = 0;
            }),
            "serving.bentoml.max_batch",
        ),
        (
            common::with(BentoMlConfig::default(), |c| {
                c.url = Some("http://x".into());
                c.auth_header = Some("nocolon".into());
            }),
            "serving.bentoml.auth_header",
        ),
    ];
    for (config, key) in cases {
        match BentoMlModelServer::from_config(&config) {
            Err(WharfError::Config { key: got, .. }) => assert_eq!(got, key),
            other => panic!("expected a Config error at {key}, got {other:?}"),
        }
    }
}
