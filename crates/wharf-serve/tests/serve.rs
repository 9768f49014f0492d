//! wharf-serve against a real socket on 127.0.0.1:0, with models trained on the bundled
//! data sets and registered in a temporary file registry: one test per part of the HTTP
//! contract (probes, catalog, predict, score, bad inputs, failing models, OpenAPI).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::blocking::Client;
use serde_json::{json, Value};
use wharf_core::{
    FileRegistry, Model, ModelRef, ModelServerPort, Predictions, Probabilities, Records, RegistryExt, RegistryPort,
    Selector, ServerCapabilities, WharfError,
};
use wharf_ml::{datasets, Trainer};
use wharf_serve::{ModelsBuilder, RunningServer, ServeOptions};

/// A registry with `lead` (v1, v2; alias champion → 1), `iris` (v1) and `diabetes` (v1).
fn shared_registry() -> &'static (tempfile::TempDir, Arc<FileRegistry>) {
    static REGISTRY: OnceLock<(tempfile::TempDir, Arc<FileRegistry>)> = OnceLock::new();
    REGISTRY.get_or_init(fresh_registry)
}

fn fresh_registry() -> (tempfile::TempDir, Arc<FileRegistry>) {
    let dir = tempfile::tempdir().unwrap();
    let registry = Arc::new(FileRegistry::new(dir.path()));
    let lead = datasets::lead_scoring();
    let v1 = registry.register(&Trainer::logistic_regression().fit(&lead).unwrap(), "lead").unwrap();
    registry.register(&Trainer::decision_tree().max_depth(Some(4)).fit(&lead).unwrap(), "lead").unwrap();
    registry.set_alias("lead", "champion", &v1).unwrap();
    registry.register(&Trainer::logistic_regression().fit(&datasets::iris()).unwrap(), "iris").unwrap();
    registry.register(&Trainer::linear_regression().fit(&datasets::diabetes()).unwrap(), "diabetes").unwrap();
    (dir, registry)
}

fn start_with(builder: ModelsBuilder, options: ServeOptions) -> RunningServer {
    wharf_serve::spawn(builder.build().unwrap(), options, "127.0.0.1:0").unwrap()
}

fn start() -> RunningServer {
    let registry = shared_registry().1.clone();
    let builder = ModelsBuilder::new()
        .registry(registry)
        .model("lead@champion".parse().unwrap())
        .model("lead@2".parse().unwrap())
        .model("iris".parse().unwrap())
        .model("diabetes@1".parse().unwrap());
    start_with(builder, ServeOptions::default())
}

fn client() -> Client {
    Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
}

fn lead_row() -> Value {
    json!({"source": "organic", "industry": "health", "pages_viewed": 9, "minutes_on_site": 23.7,
           "emails_opened": 7, "company_size": 210, "days_since_signup": 49})
}

fn get(server: &RunningServer, path: &str) -> (u16, Value) {
    let response = client().get(format!("{}{path}", server.url())).send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

fn post(server: &RunningServer, path: &str, body: &Value) -> (u16, Value) {
    let response = client().post(format!("{}{path}", server.url())).json(body).send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

/// Sends a raw body and checks the answer is a problem+json with `status`; returns it.
fn refused(server: &RunningServer, path: &str, content_type: Option<&str>, body: Vec<u8>, status: u16) -> Value {
    let mut request = client().post(format!("{}{path}", server.url())).body(body);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    let response = request.send().unwrap();
    assert_eq!(response.status().as_u16(), status, "{path}");
    let ct = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert_eq!(ct, "application/problem+json");
    let problem: Value = response.json().unwrap();
    assert_eq!(problem["status"], status);
    assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()), "{problem}");
    problem
}

#[test]
fn health_probes_answer_live_ready_and_summary() {
    let server = start();
    for path in ["/livez", "/livez/", "/health/live"] {
        assert_eq!(get(&server, path), (200, json!("LIVE")), "{path}");
    }
    assert_eq!(get(&server, "/readyz"), (200, json!("READY")));
    assert_eq!(get(&server, "/models/lead/readyz"), (200, json!("READY")));
    let (status, health) = get(&server, "/healthz");
    assert_eq!(status, 200);
    assert_eq!(health["live"], true);
    assert_eq!(health["ready"], json!({"diabetes": true, "iris": true, "lead": true}));
    let (_, first) = get(&server, "/health/uptime");
    std::thread::sleep(Duration::from_millis(20));
    let (_, second) = get(&server, "/health/uptime/");
    assert!(first.as_f64().unwrap() >= 0.0 && second.as_f64().unwrap() > first.as_f64().unwrap());
    let (status, problem) = get(&server, "/models/nope/readyz");
    assert_eq!(status, 404);
    assert_eq!(problem["path"], "name");
}

#[test]
fn catalog_lists_models_in_order_with_metadata_and_schemas() {
    let server = start();
    let (status, list) = get(&server, "/models");
    assert_eq!(status, 200);
    let models = list["models"].as_array().unwrap();
    let names: Vec<&str> = models.iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["lead", "iris", "diabetes"], "in the order given");
    assert_eq!(models[0]["version"], 1);
    assert_eq!(models[0]["aliases"], json!(["champion"]));
    assert_eq!(models[0]["served_versions"], json!([1, 2]));
    assert_eq!(models[0]["task"], "classification");
    assert_eq!(models[0]["classes"], json!(["no", "yes"]));
    assert!(models[0]["created"].as_str().is_some());
    assert_eq!(models[2]["task"], "regression");

    let (status, info) = get(&server, "/models/lead/");
    assert_eq!(status, 200);
    assert_eq!(info["signature"]["target"], "converted");
    assert_eq!(info["algorithm"], "logistic");
    let (_, v2) = get(&server, "/models/lead?version=2");
    assert_eq!((v2["version"].clone(), v2["algorithm"].clone()), (json!(2), json!("tree")));
    assert_eq!(get(&server, "/models/lead?version=7").0, 404);
    assert_eq!(get(&server, "/models/nope").0, 404);

    // The schemas are real JSON Schemas: the model's own sample validates, a broken one not.
    let (status, schema) = get(&server, "/models/lead/predict_schema");
    assert_eq!(status, 200);
    let validator = jsonschema::validator_for(&schema).unwrap();
    let sample = json!({"records": info["sample_input"].clone()});
    assert!(validator.is_valid(&sample), "sample input validates");
    assert!(validator.is_valid(&json!({"records": [lead_row()]})));
    let mut extra = lead_row();
    extra["colour"] = json!("red");
    assert!(!validator.is_valid(&json!({"records": [extra]})), "additionalProperties false");
    let mut unknown_level = lead_row();
    unknown_level["source"] = json!("carrier-pigeon");
    assert!(!validator.is_valid(&json!({"records": [unknown_level]})), "categorical is an enum");
    let mut text = lead_row();
    text["pages_viewed"] = json!("9");
    assert!(!validator.is_valid(&json!({"records": [text]})), "numeric is a number");
    assert!(!validator.is_valid(&json!({"records": []})), "at least one record");

    let (status, score_schema) = get(&server, "/models/lead/score_schema/");
    assert_eq!(status, 200);
    let validator = jsonschema::validator_for(&score_schema).unwrap();
    let mut labelled = lead_row();
    labelled["converted"] = json!("yes");
    assert!(validator.is_valid(&json!({"records": [labelled]})));
    assert!(!validator.is_valid(&json!({"records": [lead_row()]})), "the target is required");
}

#[test]
fn predict_answers_with_model_version_and_labelled_probabilities() {
    let server = start();
    let (status, body) = post(&server, "/models/lead/predict", &json!({"records": [lead_row(), lead_row()]}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model"], "lead");
    assert_eq!(body["version"], 1);
    assert_eq!(body["predictions"].as_array().unwrap().len(), 2);
    let p = &body["probabilities"][0];
    let sum = p["no"].as_f64().unwrap() + p["yes"].as_f64().unwrap();
    assert!((sum - 1.0).abs() < 1e-9);
    let predicted = body["predictions"][0].as_str().unwrap();
    let other = if predicted == "yes" { "no" } else { "yes" };
    assert!(p[predicted].as_f64().unwrap() >= p[other].as_f64().unwrap(), "the prediction is the likelier class");

    // More rows than are scored inline go through the blocking pool: same answer shape.
    let (status, many) = post(&server, "/models/lead/predict", &json!({"records": vec![lead_row(); 10]}));
    assert_eq!(status, 200);
    assert_eq!(many["predictions"].as_array().unwrap().len(), 10);
    assert_eq!(many["predictions"][9], body["predictions"][0]);

    // Both spellings, another served version by number and by alias.
    let (status, v2) = post(&server, "/models/lead/predict/?version=2", &json!({"records": [lead_row()]}));
    assert_eq!((status, v2["version"].clone()), (200, json!(2)));
    let (_, champion) = post(&server, "/models/lead/predict?version=champion", &json!({"records": [lead_row()]}));
    assert_eq!(champion["version"], 1);
    let (_, by_path) = post(&server, "/models/lead@2/predict", &json!({"records": [lead_row()]}));
    assert_eq!((by_path["model"].clone(), by_path["version"].clone()), (json!("lead"), json!(2)));
    let (_, by_alias) = post(&server, "/models/lead@champion/predict?version=2", &json!({"records": [lead_row()]}));
    assert_eq!(by_alias["version"], 1, "the path's selector wins");
    assert_eq!(post(&server, "/models/lead@9/predict", &json!({"records": [lead_row()]})).0, 404);

    let (status, proba) = post(&server, "/models/iris/predict_proba", &json!({"instances": [[5.1, 3.5, 1.4, 0.2]]}));
    assert_eq!(status, 200, "{proba}");
    assert_eq!(proba["classes"], json!(["setosa", "versicolor", "virginica"]));
    assert!(proba["probabilities"][0]["setosa"].as_f64().unwrap() > 0.5);
    assert!(proba.get("predictions").is_none());
    let (_, iris) =
        post(&server, "/models/iris/predict", &json!({"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}));
    assert_eq!(iris["predictions"], json!(["setosa", "virginica"]));

    // Instances may name categorical levels.
    let (status, _) =
        post(&server, "/models/lead/predict", &json!({"instances": [["organic", "health", 9, 23.7, 7, 210, 49]]}));
    assert_eq!(status, 200);

    let row = json!({"age": 59, "sex": 2, "bmi": 32.1, "bp": 101.0, "s1": 157, "s2": 93.2, "s3": 38.0, "s4": 4.0, "s5": 4.8598, "s6": 87});
    let (status, reg) = post(&server, "/models/diabetes/predict", &json!({"records": [row]}));
    assert_eq!(status, 200);
    assert!(reg["predictions"][0].as_f64().unwrap().is_finite());
    assert!(reg.get("probabilities").is_none());
    let problem = refused(
        &server,
        "/models/diabetes/predict_proba",
        Some("application/json"),
        json!({"records": [row]}).to_string().into_bytes(),
        400,
    );
    assert!(problem["detail"].as_str().unwrap().contains("regression"));
}

#[test]
fn score_reports_metrics_on_labelled_records() {
    let server = start();
    let data = datasets::iris();
    let records: Vec<Value> = (0..data.n_rows())
        .map(|i| {
            let mut row = Value::Object(data.features.row(i));
            row["species"] = json!(data.target.as_ref().unwrap().1.text_at(i));
            row
        })
        .collect();
    let (status, body) = post(&server, "/models/iris/score", &json!({"records": records}));
    assert_eq!(status, 200, "{body}");
    let accuracy = body["metrics"]["accuracy"].as_f64().unwrap();
    assert!((0.9..=1.0).contains(&accuracy), "{body}");
    assert!(body["metrics"]["f1"].as_f64().is_some());
    assert_eq!(body["rows"], 150);

    let mut lead = lead_row();
    lead["converted"] = json!("no");
    let mut lead2 = lead_row();
    lead2["converted"] = json!("yes");
    let (status, body) = post(&server, "/models/lead/score", &json!({"records": [lead, lead2]}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["metrics"]["accuracy"], 0.5, "identical rows, two labels: one is right");
    assert!(body["metrics"].get("roc_auc").is_some());

    let row = json!({"age": 59, "sex": 2, "bmi": 32.1, "bp": 101.0, "s1": 157, "s2": 93.2, "s3": 38.0, "s4": 4.0, "s5": 4.8598, "s6": 87, "progression": 151});
    let (status, body) = post(&server, "/models/diabetes/score", &json!({"records": [row]}));
    assert_eq!(status, 200, "{body}");
    assert!(body["metrics"]["rmse"].as_f64().is_some() && body["metrics"]["mae"].as_f64().is_some());

    let problem = refused(
        &server,
        "/models/lead/score",
        Some("application/json"),
        json!({"records": [lead_row()]}).to_string().into_bytes(),
        422,
    );
    assert_eq!(problem["path"], "records[0].converted");
    let mut bad_label = lead_row();
    bad_label["converted"] = json!("maybe");
    let problem = refused(
        &server,
        "/models/lead/score",
        Some("application/json"),
        json!({"records": [bad_label]}).to_string().into_bytes(),
        422,
    );
    assert_eq!(problem["path"], "records[0].converted");
}

#[test]
fn every_bad_input_is_a_4xx_problem_naming_the_field_and_the_server_stays_up() {
    // A payload that breaks the schema is a 422 naming the path, never a 500.
    let server = start();
    let path = "/models/lead/predict";
    let json_ct = Some("application/json");
    let with = |field: &str, value: Value| {
        let mut row = lead_row();
        row[field] = value;
        json!({"records": [row]}).to_string().into_bytes()
    };

    let p = refused(&server, path, json_ct, b"{\"records\": [".to_vec(), 400);
    assert_eq!(p["title"], "Malformed JSON");
    refused(&server, path, Some("text/plain"), json!({"records": [lead_row()]}).to_string().into_bytes(), 415);
    refused(&server, path, None, json!({"records": [lead_row()]}).to_string().into_bytes(), 415);
    let p = refused(&server, path, json_ct, b"{\"records\": []}".to_vec(), 422);
    assert_eq!(p["path"], "records");
    let p = refused(&server, path, json_ct, b"{\"rows\": []}".to_vec(), 422);
    assert_eq!(p["path"], "rows");
    let p = refused(&server, path, json_ct, b"[1, 2]".to_vec(), 422);
    assert_eq!(p["path"], "");

    let mut missing = lead_row();
    missing.as_object_mut().unwrap().remove("pages_viewed");
    let p = refused(&server, path, json_ct, json!({"records": [missing]}).to_string().into_bytes(), 422);
    assert_eq!(p["path"], "records[0].pages_viewed");
    assert!(p["detail"].as_str().unwrap().contains("missing"));

    let p = refused(&server, path, json_ct, with("colour", json!("red")), 422);
    assert_eq!(p["path"], "records[0].colour");
    let p = refused(&server, path, json_ct, with("pages_viewed", json!([1])), 422);
    assert_eq!(p["path"], "records[0].pages_viewed");
    let p = refused(&server, path, json_ct, with("pages_viewed", json!("9")), 422);
    assert_eq!(p["path"], "records[0].pages_viewed");
    assert!(p["detail"].as_str().unwrap().contains("number"));
    let p = refused(&server, path, json_ct, with("pages_viewed", json!("NaN")), 422);
    assert_eq!(p["path"], "records[0].pages_viewed");
    let p = refused(&server, path, json_ct, with("source", json!("carrier-pigeon")), 422);
    assert_eq!(p["path"], "records[0].source");
    assert!(p["detail"].as_str().unwrap().contains("carrier-pigeon"));

    // NaN and Infinity are not JSON: the body is malformed, said with line and column.
    for literal in ["NaN", "Infinity", "-Infinity", "1e999"] {
        let body = format!("{{\"records\": [{{\"pages_viewed\": {literal}}}]}}");
        let p = refused(&server, path, json_ct, body.into_bytes(), 400);
        assert!(p["line"].as_u64().is_some(), "{literal}: {p}");
    }

    // Instances: wrong width, wrong type, unknown level.
    let p = refused(&server, "/models/iris/predict", json_ct, b"{\"instances\": [[1, 2, 3]]}".to_vec(), 422);
    assert_eq!(p["path"], "instances[0]");
    let p = refused(&server, "/models/iris/predict", json_ct, b"{\"instances\": [[1, 2, \"x\", 4]]}".to_vec(), 422);
    assert_eq!(p["path"], "instances[0][2]");
    let p = refused(
        &server,
        path,
        json_ct,
        json!({"instances": [["pigeon", "health", 9, 23.7, 7, 210, 49]]}).to_string().into_bytes(),
        422,
    );
    assert_eq!(p["path"], "instances[0][0]");

    let p = refused(
        &server,
        "/models/nope/predict",
        json_ct,
        json!({"records": [lead_row()]}).to_string().into_bytes(),
        404,
    );
    assert_eq!(p["path"], "name");
    let p = refused(
        &server,
        "/models/lead/predict?version=9",
        json_ct,
        json!({"records": [lead_row()]}).to_string().into_bytes(),
        404,
    );
    assert_eq!(p["path"], "version");
    refused(
        &server,
        "/models/lead/predict?version=nobody",
        json_ct,
        json!({"records": [lead_row()]}).to_string().into_bytes(),
        404,
    );

    let response = client().get(format!("{}{path}", server.url())).send().unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    assert_eq!(get(&server, "/no/such/endpoint").0, 404);
    let p = refused(&server, "/models/lead/predict?version=1&version=9&x=%FF", json_ct, b"{}".to_vec(), 404);
    assert_eq!(p["path"], "version", "a repeated parameter: the last one counts");

    assert_eq!(get(&server, "/livez").0, 200, "still up");
    let (status, _) = post(&server, path, &json!({"records": [lead_row()]}));
    assert_eq!(status, 200, "still answering");
}

#[test]
fn bodies_over_the_limit_are_413_and_a_million_rows_does_not_hurt() {
    let registry = shared_registry().1.clone();
    let builder = ModelsBuilder::new().registry(registry).model("iris".parse().unwrap());
    let server = start_with(builder, ServeOptions { body_limit: 64 * 1024, ..ServeOptions::default() });
    let rows = |n: usize| {
        let cells = vec!["[5.1,3.5,1.4,0.2]"; n].join(",");
        format!("{{\"instances\": [{cells}]}}").into_bytes()
    };
    // 10,000 rows (about 180 kB) fit in the socket buffers, so the client always reads the answer.
    let p = refused(&server, "/models/iris/predict", Some("application/json"), rows(10_000), 413);
    assert_eq!(p["title"], "Payload too large");
    // A million rows (about 18 MB): the server answers 413 and closes the connection without
    // reading the rest, so the client may see the answer or a reset while still writing.
    // Either way the body was refused and the server keeps answering.
    let big = client()
        .post(format!("{}/models/iris/predict", server.url()))
        .header("content-type", "application/json")
        .body(rows(1_000_000))
        .send();
    if let Ok(response) = big {
        assert_eq!(response.status().as_u16(), 413);
    }
    let (status, _) = post(&server, "/models/iris/predict", &json!({"instances": [[5.1, 3.5, 1.4, 0.2]]}));
    assert_eq!(status, 200, "still answering");
}

/// A model server that can be made to fail, or to be slow, on demand.
struct Faulty {
    inner: wharf_core::LocalModelServer,
    broken: Arc<AtomicBool>,
    delay: Duration,
}

impl ModelServerPort for Faulty {
    fn name(&self) -> &str {
        "faulty"
    }
    fn load(&self, model: Model) -> wharf_core::Result<()> {
        self.inner.load(model)
    }
    fn model(&self) -> Option<Arc<Model>> {
        self.inner.model()
    }
    fn predict(&self, records: &Records) -> wharf_core::Result<Predictions> {
        std::thread::sleep(self.delay);
        if self.broken.load(Ordering::SeqCst) {
            return Err(WharfError::backend("faulty", "the model broke", None));
        }
        self.inner.predict(records)
    }
    fn predict_proba(&self, records: &Records) -> wharf_core::Result<Probabilities> {
        std::thread::sleep(self.delay);
        if self.broken.load(Ordering::SeqCst) {
            return Err(WharfError::backend("faulty", "the model broke", None));
        }
        self.inner.predict_proba(records)
    }
    fn capabilities(&self) -> ServerCapabilities {
        // Like a remote server: the HTTP layer must treat it as slow and keep it off the reactor.
        let mut capabilities = self.inner.capabilities();
        capabilities.in_process = false;
        capabilities
    }
}

fn faulty_builder(broken: &Arc<AtomicBool>, delay: Duration) -> wharf_core::Result<ModelsBuilder> {
    let registry = shared_registry().1.clone();
    let info = registry.version_info("iris", &Selector::Latest).unwrap();
    let model = registry.load("iris", "latest").unwrap();
    let server =
        Faulty { inner: wharf_core::LocalModelServer::with_model(model.clone()), broken: broken.clone(), delay };
    ModelsBuilder::new().registry(registry).model("lead@champion".parse().unwrap()).model_server(
        info,
        model,
        Arc::new(server),
    )
}

#[test]
fn a_failing_model_is_refused_at_start_and_reported_not_ready_later() {
    // A model whose self-test fails is not served.
    let broken = Arc::new(AtomicBool::new(true));
    let err = faulty_builder(&broken, Duration::ZERO).err().expect("refused");
    assert!(err.to_string().contains("self-test failed"), "{err}");

    // Readiness is checked at request time.
    broken.store(false, Ordering::SeqCst);
    let server = start_with(faulty_builder(&broken, Duration::ZERO).unwrap(), ServeOptions::default());
    assert_eq!(get(&server, "/readyz"), (200, json!("READY")));
    broken.store(true, Ordering::SeqCst);
    let (status, problem) = get(&server, "/readyz");
    assert_eq!(status, 503);
    assert_eq!(problem["detail"], "Predictor(s) not ready");
    assert_eq!(problem["not_ready"], json!(["iris"]));
    let (status, problem) = get(&server, "/models/iris/readyz");
    assert_eq!((status, problem["detail"].clone()), (503, json!("NOT_READY")));
    assert_eq!(get(&server, "/models/lead/readyz").0, 200);
    let (status, health) = get(&server, "/healthz");
    assert_eq!(status, 200);
    assert_eq!(health["ready"], json!({"iris": false, "lead": true}));
    assert_eq!(get(&server, "/livez"), (200, json!("LIVE")), "live even when a model fails");
    // A failure inside the model is a 500 with a JSON body.
    let p = refused(
        &server,
        "/models/iris/predict",
        Some("application/json"),
        b"{\"instances\":[[1,2,3,4]]}".to_vec(),
        500,
    );
    assert!(p["detail"].as_str().unwrap().contains("broke"));
}

#[test]
fn the_same_version_twice_is_refused() {
    // Refused when the server is built, not when the model is looked up, so the mistake
    // shows before any request is served.
    let registry = shared_registry().1.clone();
    let err = ModelsBuilder::new()
        .registry(registry)
        .model("lead@1".parse().unwrap())
        .model("lead@champion".parse().unwrap())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("already served"), "{err}");
    assert!(ModelsBuilder::new().build().is_err(), "nothing to serve");
    let missing = ModelsBuilder::new()
        .registry(shared_registry().1.clone())
        .model("ghost".parse::<ModelRef>().unwrap())
        .build()
        .unwrap_err();
    assert!(matches!(missing, WharfError::NotFound { .. }), "{missing}");
}

#[test]
fn slow_requests_time_out_and_shutdown_lets_in_flight_requests_finish() {
    let broken = Arc::new(AtomicBool::new(false));
    let builder = faulty_builder(&broken, Duration::from_millis(400)).unwrap();
    let server =
        start_with(builder, ServeOptions { request_timeout: Duration::from_millis(100), ..Default::default() });
    let response = client()
        .post(format!("{}/models/iris/predict", server.url()))
        .json(&json!({"instances": [[5.1, 3.5, 1.4, 0.2]]}))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 408);
    let kind = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert_eq!(kind, "application/problem+json", "a timeout is a problem like every refusal");
    let problem: serde_json::Value = response.json().unwrap();
    assert_eq!(problem["status"], 408, "{problem}");

    let builder = faulty_builder(&broken, Duration::from_millis(400)).unwrap();
    let server = start_with(builder, ServeOptions::default());
    let url = format!("{}/models/iris/predict", server.url());
    let in_flight = std::thread::spawn(move || {
        client().post(url).json(&json!({"instances": [[5.1, 3.5, 1.4, 0.2]]})).send().map(|r| r.status().as_u16())
    });
    std::thread::sleep(Duration::from_millis(150));
    server.shutdown().unwrap();
    assert_eq!(in_flight.join().unwrap().unwrap(), 200, "the in-flight request finished");
}

#[test]
fn metrics_are_prometheus_text() {
    let server = start();
    post(&server, "/models/lead/predict", &json!({"records": [lead_row(), lead_row(), lead_row()]}));
    post(&server, "/models/lead/predict", &json!({"records": []}));
    let response = client().get(format!("{}/metrics", server.url())).send().unwrap();
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = response.text().unwrap();
    assert!(text.contains("wharf_requests_total{model=\"lead\",version=\"1\",endpoint=\"predict\"} 2"), "{text}");
    assert!(text.contains("wharf_request_errors_total{model=\"lead\",version=\"1\",endpoint=\"predict\"} 1"));
    assert!(text.contains("wharf_rows_predicted_total{model=\"lead\",version=\"1\",endpoint=\"predict\"} 3"));
    assert!(text.contains(
        "wharf_request_duration_seconds_bucket{model=\"lead\",version=\"1\",endpoint=\"predict\",le=\"+Inf\"} 2"
    ));
    assert!(text.contains("wharf_model_load_seconds{model=\"iris\",version=\"1\"}"));
}

#[test]
fn openapi_and_the_offline_docs_page_load() {
    // Including each model's schemas in the OpenAPI document.
    let server = start();
    let (status, doc) = get(&server, "/openapi.json");
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/models/lead/predict"]["post"].is_object());
    assert_eq!(doc["components"]["schemas"]["lead_predict"]["additionalProperties"], false);
    assert!(doc["components"]["schemas"]["diabetes_score"].is_object());

    let page = client().get(format!("{}/docs", server.url())).send().unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert_eq!(page.url().path(), "/docs/");
    let html = page.text().unwrap();
    assert!(html.contains("swagger-ui"));
    let mut assets = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for piece in html.split(attr).skip(1) {
            let link = piece.split('"').next().unwrap_or("");
            if !link.starts_with("http") && !link.is_empty() {
                assets.push(link.trim_start_matches("./").to_string());
            }
        }
    }
    assert!(assets.iter().any(|a| a.ends_with(".js")) && assets.iter().any(|a| a.ends_with(".css")), "{assets:?}");
    for asset in &assets {
        let response = client().get(format!("{}/docs/{asset}", server.url())).send().unwrap();
        assert_eq!(response.status().as_u16(), 200, "{asset}");
        let body = response.text().unwrap();
        assert!(!body.is_empty(), "{asset}");
        if asset == "swagger-initializer.js" {
            assert!(body.contains("/openapi.json"), "the page loads our document");
        }
    }
    assert!(assets.contains(&"swagger-initializer.js".to_string()));
}

const TOKEN: &str = "s3cret-token";

fn reload(server: &RunningServer, token: Option<&str>) -> (u16, Value) {
    let mut request = client().post(format!("{}/admin/models/lead/reload", server.url()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

#[test]
fn admin_is_off_without_a_token_and_needs_the_right_one() {
    let server = start();
    assert_eq!(reload(&server, Some(TOKEN)).0, 404, "disabled");
    let (_dir, registry) = fresh_registry();
    let builder = ModelsBuilder::new().registry(registry.clone()).model("lead@champion".parse().unwrap());
    let server = start_with(builder, ServeOptions { admin_token: Some(TOKEN.into()), ..Default::default() });
    assert_eq!(reload(&server, None).0, 401);
    assert_eq!(reload(&server, Some("wrong")).0, 401);
    registry.set_alias("lead", "champion", &wharf_core::Version(2)).unwrap();
    let (status, body) = reload(&server, Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reloaded"][0], json!({"selector": "champion", "previous": 1, "version": 2}));
    let (_, answer) = post(&server, "/models/lead/predict", &json!({"records": [lead_row()]}));
    assert_eq!(answer["version"], 2);
    let (_, list) = get(&server, "/models");
    assert_eq!(list["models"][0]["aliases"], json!(["champion"]));
    assert_eq!(list["models"][0]["algorithm"], "tree");
}

#[test]
fn hot_reload_under_concurrent_load_drops_no_request() {
    let (_dir, registry) = fresh_registry();
    let builder = ModelsBuilder::new().registry(registry.clone()).model("lead@champion".parse().unwrap());
    let server = start_with(builder, ServeOptions { admin_token: Some(TOKEN.into()), ..Default::default() });
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (url, stop, failures, seen) =
                (format!("{}/models/lead/predict", server.url()), stop.clone(), failures.clone(), seen.clone());
            std::thread::spawn(move || {
                let client = client();
                let mut done = 0;
                while !stop.load(Ordering::SeqCst) || done == 0 {
                    let response = client.post(&url).json(&json!({"records": [lead_row(), lead_row()]})).send();
                    match response.ok().filter(|r| r.status().is_success()).and_then(|r| r.json::<Value>().ok()) {
                        Some(body) if body["predictions"].as_array().map(Vec::len) == Some(2) => {
                            seen.lock().unwrap().insert(body["version"].as_u64().unwrap_or(0));
                        }
                        _ => {
                            failures.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    done += 1;
                }
                done
            })
        })
        .collect();
    for i in 0..10 {
        let version = wharf_core::Version(if i % 2 == 0 { 2 } else { 1 });
        registry.set_alias("lead", "champion", &version).unwrap();
        let (status, body) = reload(&server, Some(TOKEN));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["reloaded"][0]["version"], version.0);
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::SeqCst);
    let requests: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert_eq!(failures.load(Ordering::SeqCst), 0, "of {requests} requests");
    assert_eq!(*seen.lock().unwrap(), [1, 2].into_iter().collect(), "both versions answered");
}

#[test]
fn options_come_from_the_serving_section_and_hide_the_token() {
    let config = wharf_core::WharfConfig::from_toml_str(
        "[serving]\nbody_limit_bytes = \"2048\"\nrequest_timeout_ms = 1500\nadmin_token = \"abc\"\naddr = \"0.0.0.0:9000\"\n",
    )
    .unwrap();
    assert_eq!(config.serving.addr, "0.0.0.0:9000");
    let options = ServeOptions::from_config(&config.serving);
    assert_eq!(options.body_limit, 2048);
    assert_eq!(options.request_timeout, Duration::from_millis(1500));
    assert_eq!(options.admin_token.as_deref(), Some("abc"));
    assert_eq!(options.reload_interval, None, "no polling unless asked");
    let polled = wharf_core::WharfConfig::from_toml_str("[serving]\nreload_interval_ms = \"5000\"\n").unwrap();
    assert_eq!(ServeOptions::from_config(&polled.serving).reload_interval, Some(Duration::from_secs(5)));
    assert!(!format!("{options:?}").contains("abc"), "the token is never printed");
    assert!(!config.to_toml_masked().contains("abc"));
    let empty = wharf_core::WharfConfig::from_toml_str("[serving]\nadmin_token = \"\"\n").unwrap();
    assert_eq!(ServeOptions::from_config(&empty.serving).admin_token, None, "an empty token disables admin");
    assert!(wharf_core::WharfConfig::from_toml_str("[serving]\nbody_limit = 1\n").is_err(), "unknown keys refused");
}

#[test]
fn a_moved_alias_is_picked_up_by_the_registry_poll() {
    let (_dir, registry) = fresh_registry();
    let builder = ModelsBuilder::new().registry(registry.clone()).model("lead@champion".parse().unwrap());
    let options = ServeOptions { reload_interval: Some(Duration::from_millis(50)), ..Default::default() };
    let server = start_with(builder, options);
    assert_eq!(post(&server, "/models/lead/predict", &json!({"records": [lead_row()]})).1["version"], 1);
    registry.set_alias("lead", "champion", &wharf_core::Version(2)).unwrap();
    let mut version = json!(1);
    for _ in 0..400 {
        version = post(&server, "/models/lead/predict", &json!({"records": [lead_row()]})).1["version"].clone();
        if version == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(version, 2, "the poll reloaded the moved alias");
}
