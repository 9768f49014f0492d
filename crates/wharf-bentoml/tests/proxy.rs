//! The proxy against the real BentoML test service: answers equal sklearn's known outputs,
//! batching, payload shapes, error mapping and readiness.

mod common;

use std::time::{Duration, Instant};

use wharf_bentoml::BentoMlPayload;
use wharf_core::{Column, Frame, ModelServerPort, Predictions, Records, Row, WharfError};

fn assert_known(predictions: &Predictions, proba: Option<&wharf_core::Probabilities>, known: &common::Known) {
    match predictions {
        Predictions::Classes { classes, indices } => {
            assert_eq!(classes, &["setosa", "versicolor", "virginica"]);
            assert_eq!(indices, &known.predictions, "class ids map to the same labels, in order");
        }
        other => panic!("expected classes, got {other:?}"),
    }
    if let Some(proba) = proba {
        assert_eq!(proba.values.dim(), known.probabilities.dim());
        for ((i, j), expected) in known.probabilities.indexed_iter() {
            let got = proba.values[(i, j)];
            assert!((got - expected).abs() <= 1e-9, "probability [{i}][{j}]: {got} vs sklearn's {expected}");
        }
    }
}

#[test]
fn answers_equal_the_models_known_outputs_in_every_record_shape() {
    let Some(url) = common::bentoml_url() else { return };
    let known = common::known();
    let server = common::server(&common::config(&url));
    server.load(common::iris_model()).expect("load");
    let names = ["sepal_length", "sepal_width", "petal_length", "petal_width"];

    let matrix = Records::Matrix(known.inputs.clone().into());
    let predictions = server.predict(&matrix).expect("predict");
    let proba = server.predict_proba(&matrix).expect("predict_proba");
    assert_known(&predictions, Some(&proba), &known);

    let rows: Vec<Row> = known
        .inputs
        .rows()
        .into_iter()
        .map(|r| names.iter().zip(r.iter()).map(|(n, x)| (n.to_string(), (*x).into())).collect())
        .collect();
    let rows = Records::Rows(rows);
    assert_known(&server.predict(&rows).expect("rows"), Some(&server.predict_proba(&rows).expect("rows")), &known);

    let mut frame = Frame::new();
    frame.push("id", Column::Text(vec![Some("x".into()); known.inputs.nrows()])).expect("id column rides along");
    for (j, name) in names.iter().enumerate() {
        frame.push(*name, Column::Numeric(known.inputs.column(j).to_vec())).expect("column");
    }
    let columns = Records::Columns(frame);
    assert_known(
        &server.predict(&columns).expect("columns"),
        Some(&server.predict_proba(&columns).expect("columns")),
        &known,
    );
}

#[test]
fn records_payload_and_bare_probability_arrays() {
    let Some(url) = common::bentoml_url() else { return };
    let known = common::known();
    let records = Records::Matrix(known.inputs.clone().into());

    // `list[Features]` parameter: objects keyed by feature name.
    let mut config = common::config(&url);
    config.api = "predict_records".into();
    config.input_field = "records".into();
    config.payload = BentoMlPayload::Records;
    config.proba_api = String::new();
    let server = common::server(&config);
    server.load(common::iris_model()).expect("load");
    assert!(!server.capabilities().predict_proba);
    assert_known(&server.predict(&records).expect("predict"), None, &known);
    assert!(matches!(server.predict_proba(&records), Err(WharfError::Unsupported(_))));

    // `list[list[float]]` parameter, and probabilities as a bare n×k array.
    let mut config = common::config(&url);
    config.api = "predict_list".into();
    config.input_field = "instances".into();
    config.proba_api = "predict_proba_array".into();
    let server = common::server(&config);
    server.load(common::iris_model()).expect("load");
    // predict_proba_array takes `input_data`; predict_list `instances`: only predict works here.
    assert_known(&server.predict(&records).expect("predict"), None, &known);
    let mut config = common::config(&url);
    config.proba_api = "predict_proba_array".into();
    let server = common::server(&config);
    server.load(common::iris_model()).expect("load");
    assert_known(
        &server.predict(&records).expect("predict"),
        Some(&server.predict_proba(&records).expect("proba")),
        &known,
    );
}

#[test]
fn batches_larger_than_max_batch_are_split_and_kept_in_order() {
    let Some(url) = common::bentoml_url() else { return };
    let known = common::known();
    let mut config = common::config(&url);
    config.max_batch = 7;
    let server = common::server(&config);
    server.load(common::iris_model()).expect("load");
    let records = Records::Matrix(known.inputs.clone().into());
    assert_eq!(records.len(), 150);
    let predictions = server.predict(&records).expect("predict in 22 requests");
    assert_eq!(predictions.len(), 150);
    let proba = server.predict_proba(&records).expect("predict_proba in 22 requests");
    assert_known(&predictions, Some(&proba), &known);
    // Empty input needs no request at all (BentoML would answer 500 to an empty array).
    let empty = Records::Rows(Vec::new());
    assert!(server.predict(&empty).expect("empty").is_empty());
    assert_eq!(server.predict_proba(&empty).expect("empty").values.nrows(), 0);
}

#[test]
fn bad_records_are_refused_locally_and_bentoml_rejections_are_invalid_input() {
    let Some(url) = common::bentoml_url() else { return };
    let model = common::iris_model();

    // Locally: a missing field never reaches the service.
    let server = common::server(&common::config(&url));
    server.load(model.clone()).expect("load");
    let mut row = model.metadata().sample_input[0].clone();
    row.remove("petal_width");
    match server.predict(&Records::Rows(vec![row.clone()])) {
        Err(WharfError::SchemaMismatch { path, .. }) => assert!(path.contains("petal_width"), "{path}"),
        other => panic!("expected SchemaMismatch, got {other:?}"),
    }
    row.insert("petal_width".into(), serde_json::Value::Null);
    match server.predict(&Records::Rows(vec![row])) {
        Err(WharfError::InvalidInput { path, message }) => {
            assert!(path.contains("petal_width") && message.contains("missing"), "{path}: {message}")
        }
        other => panic!("a null cannot be sent as a float, expected InvalidInput, got {other:?}"),
    }

    // Remotely: the payload does not match the API's parameters → BentoML 400 → InvalidInput.
    let mut config = common::config(&url);
    config.input_field = "wrong_field".into();
    let server = common::server(&config);
    server.load(model.clone()).expect("load");
    let records = Records::Rows(model.metadata().sample_input.clone());
    match server.predict(&records) {
        Err(WharfError::InvalidInput { path, message }) => {
            assert_eq!(path, "input_data", "the path is BentoML's `loc`");
            assert!(message.contains("Field required") && message.contains("HTTP 400"), "{message}");
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    // A matrix sent to a `list[Features]` parameter: pydantic refuses each row.
    // (Objects sent to an ndarray parameter are BentoML's 500, not a 400: numpy fails after
    // validation, so that mismatch surfaces as a Backend error.)
    let mut config = common::config(&url);
    config.api = "predict_records".into();
    config.input_field = "records".into();
    let server = common::server(&config);
    server.load(model.clone()).expect("load");
    match server.predict(&records) {
        Err(WharfError::InvalidInput { path, message }) => {
            assert_eq!(path, "records.0");
            assert!(message.contains("Input should be an object"), "{message}");
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

#[test]
fn server_errors_and_unknown_apis_are_backend_errors() {
    let Some(url) = common::bentoml_url() else { return };
    let model = common::iris_model();
    let records = Records::Rows(model.metadata().sample_input.clone());
    for (api, status, words) in [("fail", "500", "unexpected error"), ("no_such_api", "404", "Not Found")] {
        let mut config = common::config(&url);
        config.api = api.into();
        let server = common::server(&config);
        server.load(model.clone()).expect("load");
        match server.predict(&records) {
            Err(WharfError::Backend { adapter, message, .. }) => {
                assert_eq!(adapter, "bentoml");
                assert!(message.contains(status) && message.contains(words) && message.contains(api), "{message}");
            }
            other => panic!("{api}: expected a Backend error, got {other:?}"),
        }
    }
    // A 500 is not retried, and is not a connection failure: the breaker stays closed.
    let mut config = common::config(&url);
    config.api = "fail".into();
    config.breaker_failures = 1;
    let server = common::server(&config);
    server.load(model).expect("load");
    for _ in 0..3 {
        let err = server.predict(&records).expect_err("500");
        assert!(!err.to_string().contains("circuit open"), "{err}");
    }
    assert!(server.ready(), "a failing API does not make the service unready");
}

#[test]
fn readiness_follows_the_model_and_readyz() {
    let Some(url) = common::bentoml_url() else { return };
    let server = common::server(&common::config(&url));
    assert!(!server.ready(), "no model loaded yet");
    server.load(common::iris_model()).expect("load");
    assert!(server.ready(), "/readyz answers 200");
    let down = common::server(&common::config(&format!("http://127.0.0.1:{}", common::closed_port())));
    down.load(common::iris_model()).expect("load");
    let start = Instant::now();
    assert!(!down.ready(), "an unreachable service is not ready");
    assert!(start.elapsed() < Duration::from_secs(3));
}
