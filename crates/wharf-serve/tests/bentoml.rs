//! Serving through BentoML model servers made by the factory: the HTTP answers are the
//! BentoML service's own, and a record that breaks the signature is refused with the usual
//! 4xx before any request leaves (proved with the service's port closed).
//!
//! Needs the BentoML test service (`cargo xtask backends` prints `WHARF_TEST_BENTOML_URL`);
//! without it each test says `skipped:`, and fails under `WHARF_TEST_REQUIRE_BACKENDS=1`.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use wharf_bentoml::BentoMlConfig;
use wharf_bentoml::BentoMlModelServer;
use wharf_core::{FileRegistry, Model, ModelServerPort, ModelServers, Records, RegistryPort};
use wharf_ml::{datasets, Trainer};
use wharf_serve::{MicroBatch, ModelsBuilder, RunningServer, ServeOptions};

const CLASSES: [&str; 3] = ["setosa", "versicolor", "virginica"];

/// The service's URL, or `None` (with a `skipped:` line) when the backend is not running.
fn bentoml_url() -> Option<String> {
    match std::env::var("WHARF_TEST_BENTOML_URL").ok().filter(|v| !v.trim().is_empty()) {
        Some(url) => Some(url.trim_end_matches('/').to_string()),
        None if std::env::var("WHARF_TEST_REQUIRE_BACKENDS").as_deref() == Ok("1") => {
            panic!(
                "WHARF_TEST_BENTOML_URL is not set but WHARF_TEST_REQUIRE_BACKENDS=1: the BentoML backend is missing"
            )
        }
        None => {
            let _ = writeln!(std::io::stderr(), "skipped: WHARF_TEST_BENTOML_URL not set (run cargo xtask backends)");
            None
        }
    }
}

/// BentoML model servers for the test service at `url`, as the container makes them for
/// `serving.backend = "bentoml"`.
fn bentoml_servers(url: &str) -> ModelServers {
    let mut config = BentoMlConfig::default();
    config.url = Some(url.to_string());
    config.timeout_ms = 30_000;
    ModelServers::new("bentoml", move || {
        Ok(Arc::new(BentoMlModelServer::from_config(&config)?) as Arc<dyn ModelServerPort>)
    })
}

/// A registry holding an iris classifier trained here: the service's signature (features in
/// its order, classes setosa/versicolor/virginica = the service's ids 0/1/2), but weights of
/// its own, so an answer equal to the service's cannot have come from this process.
fn registry_with_iris() -> (tempfile::TempDir, Arc<FileRegistry>, Model) {
    let dir = tempfile::tempdir().unwrap();
    let registry = Arc::new(FileRegistry::new(dir.path()));
    let model = Trainer::logistic_regression().fit(&datasets::iris()).unwrap();
    assert_eq!(model.classes(), CLASSES);
    registry.register(&model, "iris").unwrap();
    (dir, registry, model)
}

fn serve(registry: Arc<FileRegistry>, servers: ModelServers, options: ServeOptions) -> RunningServer {
    let models = ModelsBuilder::new().registry(registry).servers(servers).model("iris".parse().unwrap()).build();
    wharf_serve::spawn(models.expect("the model loads and self-tests through BentoML"), options, "127.0.0.1:0").unwrap()
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
}

fn post(url: &str, body: &Value) -> (u16, Value) {
    let response = client().post(url).json(body).send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

/// Iris measurements in the service's feature order.
fn instances(model: &Model) -> Vec<Vec<f64>> {
    let names: Vec<&str> = model.signature().feature_names().collect();
    let iris = datasets::iris();
    (0..iris.features.n_rows())
        .map(|i| names.iter().map(|n| iris.features.row(i)[*n].as_f64().unwrap()).collect())
        .collect()
}

fn rows_of(value: &Value) -> Vec<Vec<f64>> {
    value
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| row.as_array().expect("row").iter().map(|p| p.as_f64().expect("number")).collect())
        .collect()
}

#[test]
fn served_answers_are_the_bentoml_services_own() {
    let Some(url) = bentoml_url() else { return };
    let (_dir, registry, model) = registry_with_iris();
    let instances = instances(&model);

    // What the service itself answers, asked directly.
    let (status, own_proba) = post(&format!("{url}/predict_proba"), &json!({"input_data": instances}));
    assert_eq!(status, 200, "{own_proba}");
    assert_eq!(own_proba["classes"], json!([0, 1, 2]));
    let own_proba = rows_of(&own_proba["probabilities"]);
    let (status, own_ids) = post(&format!("{url}/predict"), &json!({"input_data": instances}));
    assert_eq!(status, 200, "{own_ids}");
    let own_labels: Vec<Value> =
        own_ids.as_array().unwrap().iter().map(|id| json!(CLASSES[id.as_u64().unwrap() as usize])).collect();

    for micro_batch in [None, Some(MicroBatch { max_rows: 8, wait: Duration::from_millis(20) })] {
        let server = serve(registry.clone(), bentoml_servers(&url), ServeOptions { micro_batch, ..Default::default() });
        let base = format!("{}/models/iris", server.url());

        let (status, answer) =
            post(&format!("{base}/predict_proba?probabilities=array"), &json!({"instances": instances}));
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["classes"], json!(CLASSES));
        assert!(answer.get("predictions").is_none(), "predict_proba answers probabilities only");
        assert_eq!(rows_of(&answer["probabilities"]), own_proba, "probabilities are the service's, unchanged");

        let (status, answer) = post(&format!("{base}/predict"), &json!({"instances": instances}));
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["predictions"], json!(own_labels), "labels are the service's classes");

        // Named records, one at a time (each its own request, micro-batched when on).
        let names: Vec<&str> = model.signature().feature_names().collect();
        let singles: Vec<_> = instances
            .iter()
            .enumerate()
            .step_by(7)
            .map(|(i, row)| {
                let record: serde_json::Map<String, Value> =
                    names.iter().zip(row).map(|(n, x)| (n.to_string(), json!(x))).collect();
                let url = format!("{base}/predict");
                std::thread::spawn(move || (i, post(&url, &json!({"records": [record]}))))
            })
            .collect();
        for handle in singles {
            let (i, (status, answer)) = handle.join().unwrap();
            assert_eq!(status, 200, "{answer}");
            assert_eq!(answer["predictions"], json!([own_labels[i]]), "record {i}");
            // scikit-learn's arithmetic for a row depends, in the last bit, on the batch it is
            // in (the service saw 150 rows above, here one or a micro-batch of a few).
            let labelled = &answer["probabilities"][0];
            for (j, class) in CLASSES.iter().enumerate() {
                let p = labelled[class].as_f64().expect("a probability per class");
                assert!((p - own_proba[i][j]).abs() <= 1e-12, "record {i}, class {class}: {p} vs {}", own_proba[i][j]);
            }
        }
    }

    // The model trained here answers differently: the served answers did not come from it.
    let local = model.predict_proba(&Records::Columns(datasets::iris().features)).unwrap();
    let differs = own_proba
        .iter()
        .enumerate()
        .any(|(i, row)| row.iter().enumerate().any(|(j, p)| (local.values[(i, j)] - p).abs() > 1e-6));
    assert!(differs, "the local model must differ from the service for this test to prove anything");
}

/// A TCP relay to the service that can be closed: models load and self-test through it,
/// then it stops listening and cuts every connection, so nothing can reach the service.
struct Relay {
    port: u16,
    stopped: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    fn to(url: &str) -> Relay {
        let upstream = url.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stopped = Arc::new(AtomicBool::new(false));
        let streams = Arc::new(Mutex::new(Vec::new()));
        let (stop, open) = (stopped.clone(), streams.clone());
        let thread = std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let (Ok(client), Ok(server)) = (client, TcpStream::connect(&upstream)) else { continue };
                let mut open = open.lock().unwrap();
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (mut from, mut to) = (from.try_clone().unwrap(), to.try_clone().unwrap());
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Write);
                    });
                }
                open.extend([client, server]);
            }
        });
        Relay { port, stopped, streams, thread: Some(thread) }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops listening (the port is closed from here on) and cuts open connections.
    fn close(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        for stream in self.streams.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

#[test]
fn a_record_breaking_the_signature_is_refused_before_any_request_leaves() {
    let Some(url) = bentoml_url() else { return };
    let (_dir, registry, model) = registry_with_iris();
    let mut relay = Relay::to(&url);
    let server = serve(registry, bentoml_servers(&relay.url()), ServeOptions::default());
    relay.close();
    assert!(TcpStream::connect(("127.0.0.1", relay.port)).is_err(), "the relay's port is closed");
    let base = format!("{}/models/iris", server.url());

    let row = datasets::iris().features.row(0);
    let mut missing = row.clone();
    missing.remove("petal_width");
    let mut labelled = missing.clone();
    labelled.insert(model.signature().target.clone().unwrap(), "setosa".into());
    let mut text = row.clone();
    text.insert("sepal_length".into(), "wide".into());
    for endpoint in ["predict", "predict_proba", "score"] {
        let url = format!("{base}/{endpoint}");
        let (status, problem) = if endpoint == "score" {
            post(&url, &json!({"records": [labelled]}))
        } else {
            post(&url, &json!({"records": [missing]}))
        };
        assert_eq!(status, 422, "{endpoint}: {problem}");
        assert_eq!(problem["path"], "records[0].petal_width", "{endpoint}: {problem}");
        if endpoint != "score" {
            let (status, problem) = post(&url, &json!({"records": [text]}));
            assert_eq!(status, 422, "{endpoint}: {problem}");
            assert_eq!(problem["path"], "records[0].sepal_length", "{endpoint}: {problem}");
            let (status, problem) = post(&url, &json!({"instances": [[5.1, 3.5, 1.4]]}));
            assert_eq!(status, 422, "{endpoint}: {problem}");
            assert_eq!(problem["path"], "instances[0]", "{endpoint}: {problem}");
        }
    }

    // A good record does try to leave, and finds the port closed: a server error, not a 4xx.
    let (status, problem) = post(&format!("{base}/predict"), &json!({"records": [row]}));
    assert!(status >= 500, "{status}: {problem}");
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "still serving: {answer}");
}
