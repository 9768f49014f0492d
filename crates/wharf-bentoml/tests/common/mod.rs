//! What every BentoML test shares: finding the service, its known outputs, the iris model.
#![allow(dead_code)]

use std::io::Write;

use ndarray::Array2;
use wharf_bentoml::BentoMlConfig;
use wharf_bentoml::BentoMlModelServer;
use wharf_core::Model;
use wharf_ml::{datasets, Trainer};

/// The test service's URL from `WHARF_TEST_BENTOML_URL`. Without it the test is skipped with
/// a message, except under `cargo xtask test` (`WHARF_TEST_REQUIRE_BACKENDS=1`), where a
/// missing backend is a failure rather than a silent pass.
pub fn bentoml_url() -> Option<String> {
    // Every test starts here; the models they load are built-in estimators.
    wharf_ml::register();
    match std::env::var("WHARF_TEST_BENTOML_URL").ok().filter(|v| !v.trim().is_empty()) {
        Some(url) => Some(url),
        None if std::env::var("WHARF_TEST_REQUIRE_BACKENDS").as_deref() == Ok("1") => {
            panic!(
                "WHARF_TEST_BENTOML_URL is not set but WHARF_TEST_REQUIRE_BACKENDS=1: the BentoML backend is missing"
            )
        }
        None => {
            // Straight to stderr: the harness captures `eprintln!`, and a skip must be seen.
            let _ = writeln!(std::io::stderr(), "skipped: WHARF_TEST_BENTOML_URL not set (run cargo xtask test)");
            None
        }
    }
}

/// What the fixture's `save_model.py` wrote: the inputs and sklearn's own answers.
pub struct Known {
    pub inputs: Array2<f64>,
    pub predictions: Vec<u32>,
    pub probabilities: Array2<f64>,
}

/// Reads the known outputs from `WHARF_TEST_BENTOML_KNOWN` (set with the URL).
pub fn known() -> Known {
    let path = std::env::var("WHARF_TEST_BENTOML_KNOWN").expect("WHARF_TEST_BENTOML_KNOWN is set with the URL");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let json: serde_json::Value = serde_json::from_str(&text).expect("known outputs are JSON");
    let features: Vec<&str> =
        json["features"].as_array().expect("features").iter().filter_map(|v| v.as_str()).collect();
    assert_eq!(features, ["sepal_length", "sepal_width", "petal_length", "petal_width"], "fixture feature order");
    let matrix = |key: &str| {
        let rows = json[key].as_array().expect(key);
        let width = rows[0].as_array().expect("row").len();
        let flat: Vec<f64> =
            rows.iter().flat_map(|r| r.as_array().expect("row").iter().map(|x| x.as_f64().expect("number"))).collect();
        Array2::from_shape_vec((rows.len(), width), flat).expect("rectangular")
    };
    let predictions =
        json["predictions"].as_array().expect("predictions").iter().map(|v| v.as_u64().expect("id") as u32).collect();
    Known { inputs: matrix("inputs"), predictions, probabilities: matrix("probabilities") }
}

/// A Wharf model with the iris signature the service expects (features in that order,
/// classes setosa/versicolor/virginica = sklearn's ids 0/1/2). Its own weights are unused.
pub fn iris_model() -> Model {
    let model = Trainer::logistic_regression().fit(&datasets::iris()).expect("train");
    let names: Vec<&str> = model.signature().feature_names().collect();
    assert_eq!(names, ["sepal_length", "sepal_width", "petal_length", "petal_width"]);
    assert_eq!(model.classes(), ["setosa", "versicolor", "virginica"]);
    model
}

/// The test service's default wiring: `predict` and `predict_proba` on `input_data`.
pub fn config(url: &str) -> BentoMlConfig {
    with(BentoMlConfig::default(), |c| {
        c.url = Some(url.to_string());
        c.timeout_ms = 30_000;
    })
}

pub fn server(config: &BentoMlConfig) -> BentoMlModelServer {
    BentoMlModelServer::from_config(config).expect("server from config")
}

/// A loopback port nothing listens on.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// `base` changed by `change` (the config is `#[non_exhaustive]`: no struct literals).
#[allow(dead_code)]
pub fn with(mut base: BentoMlConfig, change: impl FnOnce(&mut BentoMlConfig)) -> BentoMlConfig {
    change(&mut base);
    base
}
