//! The standard protocols on a real socket: Open Inference Protocol v2 (health, metadata,
//! readiness, `infer` with per-feature tensors, one `[N, F]` tensor and the binary tensor
//! extension, and its errors) and MLflow's `/invocations`, each giving what in-process
//! scoring gives; per-version metrics and the exposition checked by `promtool` when
//! `WHARF_TEST_PROMTOOL` names it.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::blocking::Client;
use serde_json::{json, Value};
use wharf_core::{score, FileRegistry, LocalModelServer, OnError, Records, RegistryPort, Selector};
use wharf_ml::{datasets, Trainer};
use wharf_serve::{ModelsBuilder, RunningServer, ServeOptions};

/// A registry with `lead` (v1 logistic, v2 tree; champion → 1), `iris` and `diabetes`.
fn registry() -> &'static (tempfile::TempDir, Arc<FileRegistry>) {
    static REGISTRY: OnceLock<(tempfile::TempDir, Arc<FileRegistry>)> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let registry = Arc::new(FileRegistry::new(dir.path()));
        let lead = datasets::lead_scoring();
        let v1 = registry.register(&Trainer::logistic_regression().fit(&lead).unwrap(), "lead").unwrap();
        registry.register(&Trainer::decision_tree().max_depth(Some(4)).fit(&lead).unwrap(), "lead").unwrap();
        registry.set_alias("lead", "champion", &v1).unwrap();
        registry.register(&Trainer::logistic_regression().fit(&datasets::iris()).unwrap(), "iris").unwrap();
        registry.register(&Trainer::linear_regression().fit(&datasets::diabetes()).unwrap(), "diabetes").unwrap();
        (dir, registry)
    })
}

fn start(options: ServeOptions) -> RunningServer {
    let builder = ModelsBuilder::new()
        .registry(registry().1.clone())
        .model("lead@champion".parse().unwrap())
        .model("lead@2".parse().unwrap())
        .model("iris".parse().unwrap())
        .model("diabetes".parse().unwrap());
    wharf_serve::spawn(builder.build().unwrap(), options, "127.0.0.1:0").unwrap()
}

fn client() -> Client {
    Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
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

/// The in-process answer for `rows` of `name@version`: labels and probability rows.
fn in_process(name: &str, version: u64, rows: &Records) -> (Vec<String>, Vec<Vec<f64>>) {
    let model = registry().1.load_selected(name, &Selector::Version(wharf_core::Version(version))).unwrap();
    let scored = score(&LocalModelServer::with_model(model), rows, OnError::Fail).unwrap();
    let labels = (0..scored.len()).map(|i| scored.predictions.display(i)).collect();
    let proba =
        scored.probabilities.map(|p| p.values.rows().into_iter().map(|r| r.to_vec()).collect()).unwrap_or_default();
    (labels, proba)
}

fn lead_rows() -> Vec<serde_json::Map<String, Value>> {
    let rows = [
        json!({"source": "organic", "industry": "health", "pages_viewed": 9, "minutes_on_site": 23.7,
               "emails_opened": 7, "company_size": 210, "days_since_signup": 49}),
        json!({"source": "paid_search", "industry": "retail", "pages_viewed": 1, "minutes_on_site": 0.5,
               "emails_opened": 0, "company_size": 12, "days_since_signup": 400}),
    ];
    rows.into_iter().map(|r| r.as_object().unwrap().clone()).collect()
}

/// One tensor per feature of `rows`: numbers as FP64, text as BYTES.
fn per_feature_tensors(rows: &[serde_json::Map<String, Value>]) -> Vec<Value> {
    rows[0]
        .keys()
        .map(|name| {
            let data: Vec<&Value> = rows.iter().map(|r| &r[name]).collect();
            let datatype = if data[0].is_string() { "BYTES" } else { "FP64" };
            json!({"name": name, "shape": [rows.len()], "datatype": datatype, "data": data})
        })
        .collect()
}

/// Row `i` of iris in the model's feature order.
fn iris_row(iris: &wharf_ml::Dataset, i: usize) -> Vec<f64> {
    let row = iris.features.row(i);
    iris.features.columns().iter().map(|(name, _)| row[name].as_f64().unwrap()).collect()
}

fn output<'a>(answer: &'a Value, name: &str) -> &'a Value {
    answer["outputs"].as_array().unwrap().iter().find(|o| o["name"] == name).unwrap_or(&Value::Null)
}

#[test]
fn v2_health_metadata_and_readiness() {
    let server = start(ServeOptions::default());
    for path in ["/v2/health/live", "/v2/health/ready", "/v2/models/lead/ready", "/v2/models/lead/versions/2/ready"] {
        assert_eq!(get(&server, path).0, 200, "{path}");
    }
    let (status, meta) = get(&server, "/v2");
    assert_eq!(status, 200);
    assert_eq!(meta["name"], "wharf");
    let (status, meta) = get(&server, "/v2/models/lead");
    assert_eq!(status, 200, "{meta}");
    assert_eq!(meta["name"], "lead");
    assert_eq!(meta["versions"], json!(["1", "2"]));
    let inputs = meta["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 7);
    let source = inputs.iter().find(|i| i["name"] == "source").unwrap();
    assert_eq!(source["datatype"], "BYTES");
    assert_eq!(inputs.iter().find(|i| i["name"] == "pages_viewed").unwrap()["datatype"], "FP64");
    assert_eq!(meta["outputs"][0], json!({"name": "predict", "datatype": "BYTES", "shape": [-1]}));
    assert_eq!(meta["outputs"][1]["name"], "predict_proba");
    assert_eq!(meta["outputs"][1]["shape"], json!([-1, 2]));
    let (_, meta) = get(&server, "/v2/models/lead/versions/champion");
    assert_eq!(meta["versions"], json!(["1"]));
    let (_, meta) = get(&server, "/v2/models/diabetes");
    assert_eq!(meta["outputs"], json!([{"name": "predict", "datatype": "FP64", "shape": [-1]}]));
    let (status, error) = get(&server, "/v2/models/nope");
    assert_eq!(status, 404);
    assert!(error["error"].as_str().unwrap().contains("nope"), "{error}");
    assert_eq!(get(&server, "/v2/models/lead/versions/9/ready").0, 404);
}

#[test]
fn v2_infer_gives_what_in_process_scoring_gives() {
    let server = start(ServeOptions::default());
    let rows = lead_rows();
    let (labels, proba) = in_process("lead", 1, &Records::Rows(rows.clone()));
    let body = json!({"id": "req-1", "inputs": per_feature_tensors(&rows)});
    let (status, answer) = post(&server, "/v2/models/lead/infer", &body);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["model_name"], "lead");
    assert_eq!(answer["model_version"], "1");
    assert_eq!(answer["id"], "req-1");
    let predict = output(&answer, "predict");
    assert_eq!(predict["datatype"], "BYTES");
    assert_eq!(predict["shape"], json!([2]));
    assert_eq!(predict["data"], json!(labels));
    let probabilities = output(&answer, "predict_proba");
    assert_eq!(probabilities["shape"], json!([2, 2]));
    let flat: Vec<f64> = proba.iter().flatten().copied().collect();
    assert_eq!(probabilities["data"], json!(flat), "bit for bit: the same scoring path");

    // A version by number or alias, and only the outputs asked for.
    let (tree_labels, tree_proba) = in_process("lead", 2, &Records::Rows(rows.clone()));
    let body = json!({"inputs": per_feature_tensors(&rows), "outputs": [{"name": "predict_proba"}]});
    let (status, answer) = post(&server, "/v2/models/lead/versions/2/infer", &body);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["model_version"], "2");
    assert_eq!(answer["outputs"].as_array().unwrap().len(), 1);
    assert_eq!(output(&answer, "predict_proba")["data"], json!(tree_proba.concat()));
    let (_, answer) = post(&server, "/v2/models/lead/versions/2/infer", &json!({"inputs": per_feature_tensors(&rows)}));
    assert_eq!(output(&answer, "predict")["data"], json!(tree_labels));

    // One FP64 [N, F] tensor, nested or flat, for an all-numeric model.
    let iris = datasets::iris();
    let x: Vec<Vec<f64>> = (0..3).map(|i| iris_row(&iris, i)).collect();
    let (iris_labels, iris_proba) =
        in_process("iris", 1, &Records::Rows((0..3).map(|i| iris.features.row(i)).collect()));
    for data in [json!(x), json!(x.concat())] {
        let body = json!({"inputs": [{"name": "input", "shape": [3, 4], "datatype": "FP64", "data": data}]});
        let (status, answer) = post(&server, "/v2/models/iris/infer", &body);
        assert_eq!(status, 200, "{answer}");
        assert_eq!(output(&answer, "predict")["data"], json!(iris_labels));
        assert_eq!(output(&answer, "predict_proba")["data"], json!(iris_proba.concat()));
    }
    // A regressor answers FP64 predictions and has no predict_proba.
    let diabetes = datasets::diabetes();
    let row = diabetes.features.row(0);
    let tensors: Vec<Value> =
        row.iter().map(|(k, v)| json!({"name": k, "shape": [1, 1], "datatype": "FP64", "data": [[v]]})).collect();
    let (status, answer) = post(&server, "/v2/models/diabetes/infer", &json!({"inputs": tensors}));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(output(&answer, "predict")["datatype"], "FP64");
    assert_eq!(answer["outputs"].as_array().unwrap().len(), 1);
}

#[test]
fn v2_binary_tensor_extension_reads_and_writes_bytes() {
    let server = start(ServeOptions::default());
    let iris = datasets::iris();
    let x: Vec<f64> = iris_row(&iris, 0);
    let (labels, proba) = in_process("iris", 1, &Records::Rows(vec![iris.features.row(0)]));
    let header = json!({
        "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", "parameters": {"binary_data_size": 32}}],
        "outputs": [{"name": "predict", "parameters": {"binary_data": true}}, {"name": "predict_proba", "parameters": {"binary_data": true}}],
    });
    let mut body = serde_json::to_vec(&header).unwrap();
    let json_length = body.len();
    for v in &x {
        body.extend_from_slice(&v.to_le_bytes());
    }
    let response = client()
        .post(format!("{}/v2/models/iris/infer", server.url()))
        .header("inference-header-content-length", json_length.to_string())
        .body(body)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let length: usize = response.headers()["inference-header-content-length"].to_str().unwrap().parse().unwrap();
    let bytes = response.bytes().unwrap();
    let answer: Value = serde_json::from_slice(&bytes[..length]).unwrap();
    let predict_size = output(&answer, "predict")["parameters"]["binary_data_size"].as_u64().unwrap() as usize;
    let blob = &bytes[length..];
    let label_len = u32::from_le_bytes(blob[..4].try_into().unwrap()) as usize;
    assert_eq!(std::str::from_utf8(&blob[4..4 + label_len]).unwrap(), labels[0]);
    assert_eq!(predict_size, 4 + label_len);
    let got: Vec<f64> =
        blob[predict_size..].chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(got, proba[0]);
}

#[test]
fn malformed_tensors_are_400s_naming_the_tensor() {
    let server = start(ServeOptions::default());
    let rows = lead_rows();
    let mut tensors = per_feature_tensors(&rows);
    let cases: Vec<(Value, &str)> = vec![
        // A shape that does not match its data.
        (
            json!({"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP64", "data": [1, 2, 3, 4, 5, 6, 7]}]}),
            "input",
        ),
        // An unknown datatype.
        (json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP128", "data": [1, 2, 3, 4]}]}), "FP128"),
        // A wrong feature count.
        (json!({"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}), "input"),
        // Text in a numeric tensor.
        (json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", "data": [1, "x", 3, 4]}]}), "input"),
        (json!({"inputs": [{"name": "input", "shape": [-1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}]}), "input"),
        (json!({"inputs": []}), "no inputs"),
        (
            json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}], "outputs": [{"name": "proba"}]}),
            "proba",
        ),
    ];
    for (body, named) in cases {
        let (status, error) = post(&server, "/v2/models/iris/infer", &body);
        assert_eq!(status, 400, "{body} → {error}");
        let message = error["error"].as_str().unwrap_or_else(|| panic!("the protocol's error shape: {error}"));
        assert!(message.contains(named), "{message} names {named}");
    }
    // Per-feature tensors: a missing feature, a row count that disagrees, an unknown level.
    let source = tensors.iter().position(|t| t["name"] == "source").unwrap();
    let removed = tensors.remove(source);
    let (status, error) = post(&server, "/v2/models/lead/infer", &json!({"inputs": tensors}));
    assert_eq!(status, 400);
    assert!(error["error"].as_str().unwrap().contains("'source'"), "{error}");
    let mut short = removed.clone();
    short["shape"] = json!([1]);
    short["data"] = json!(["organic"]);
    tensors.push(short);
    let (status, error) = post(&server, "/v2/models/lead/infer", &json!({"inputs": tensors}));
    assert_eq!(status, 400);
    assert!(error["error"].as_str().unwrap().contains("input 'source'"), "{error}");
    tensors.pop();
    let mut unknown = removed;
    unknown["data"] = json!(["organic", "carrier-pigeon"]);
    tensors.push(unknown);
    let (status, error) = post(&server, "/v2/models/lead/infer", &json!({"inputs": tensors}));
    assert_eq!(status, 400);
    let message = error["error"].as_str().unwrap();
    assert!(message.contains("carrier-pigeon") && message.contains("source"), "{message}");
    // A shape far larger than its binary data is refused, without reserving memory for it.
    let header = json!({"inputs": [{"name": "source", "shape": [1_000_000_000_000u64], "datatype": "BYTES",
                                     "parameters": {"binary_data_size": 4}}]});
    let mut body = serde_json::to_vec(&header).unwrap();
    let json_length = body.len();
    body.extend_from_slice(&0u32.to_le_bytes());
    let response = client()
        .post(format!("{}/v2/models/lead/infer", server.url()))
        .header("inference-header-content-length", json_length.to_string())
        .body(body)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert!(response.json::<Value>().unwrap()["error"].as_str().unwrap().contains("input 'source'"));
    // Not JSON at all.
    let response = client().post(format!("{}/v2/models/lead/infer", server.url())).body("{").send().unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert!(response.json::<Value>().unwrap()["error"].is_string());
}

#[test]
fn mlflow_invocations_accept_its_four_input_shapes() {
    let options = ServeOptions { default_model: Some("lead".into()), ..ServeOptions::default() };
    let server = start(options);
    let rows = lead_rows();
    let (labels, _) = in_process("lead", 1, &Records::Rows(rows.clone()));
    let columns: Vec<&String> = rows[0].keys().collect();
    let data: Vec<Vec<&Value>> = rows.iter().map(|r| columns.iter().map(|c| &r[c.as_str()]).collect()).collect();
    let by_column: serde_json::Map<String, Value> = columns
        .iter()
        .map(|c| (c.to_string(), json!(rows.iter().map(|r| &r[c.as_str()]).collect::<Vec<_>>())))
        .collect();
    let bodies = [
        json!({"dataframe_split": {"columns": columns, "data": data}}),
        json!({"dataframe_split": {"index": [0, 1], "columns": columns, "data": data}, "params": {}}),
        json!({"dataframe_records": rows}),
        json!({"instances": rows}),
        json!({"inputs": by_column}),
    ];
    for body in bodies {
        let (status, answer) = post(&server, "/invocations", &body);
        assert_eq!(status, 200, "{body} → {answer}");
        assert_eq!(answer, json!({"predictions": labels}), "{body}");
    }
    // A header names another model (and version).
    let iris = datasets::iris();
    let (iris_labels, _) = in_process("iris", 1, &Records::Rows(vec![iris.features.row(0)]));
    let response = client()
        .post(format!("{}/invocations", server.url()))
        .header("x-wharf-model", "iris@1")
        .json(&json!({"inputs": [iris_row(&iris, 0)]}))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.json::<Value>().unwrap(), json!({"predictions": iris_labels}));
    let (tree_labels, _) = in_process("lead", 2, &Records::Rows(rows.clone()));
    let response = client()
        .post(format!("{}/invocations", server.url()))
        .header("x-wharf-model", "lead@2")
        .json(&json!({"dataframe_records": rows}))
        .send()
        .unwrap();
    assert_eq!(response.json::<Value>().unwrap(), json!({"predictions": tree_labels}));
    // Errors in MLflow's shape.
    for (body, status) in [
        (json!({"dataframe_records": rows, "instances": rows}), 400),
        (json!({"records": rows}), 400),
        (json!({"dataframe_records": [{"source": "organic"}]}), 400),
        (json!({"dataframe_records": []}), 400),
    ] {
        let (got, error) = post(&server, "/invocations", &body);
        assert_eq!(got, status, "{body} → {error}");
        assert_eq!(error["error_code"], "BAD_REQUEST", "{error}");
        assert!(error["message"].is_string());
    }
    // Many column names and many empty rows: a 400, not rows × columns of memory.
    let names: Vec<String> = (0..50_000).map(|i| format!("c{i}")).collect();
    let empty_rows = vec![json!([]); 50_000];
    let (status, error) =
        post(&server, "/invocations", &json!({"dataframe_split": {"columns": names, "data": empty_rows}}));
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error_code"], "BAD_REQUEST");
    let response = client()
        .post(format!("{}/invocations", server.url()))
        .header("x-wharf-model", "nope")
        .json(&json!({"dataframe_records": rows}))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    assert_eq!(response.json::<Value>().unwrap()["error_code"], "RESOURCE_DOES_NOT_EXIST");
}

#[test]
fn invocations_without_a_default_name_a_model_when_several_are_served() {
    let server = start(ServeOptions::default());
    let (status, error) = post(&server, "/invocations", &json!({"dataframe_records": lead_rows()}));
    assert_eq!(status, 400);
    assert!(error["message"].as_str().unwrap().contains("X-Wharf-Model"), "{error}");
}

#[test]
fn the_protocols_share_the_native_protections() {
    // Tokens: without one, every scoring and catalog route is refused; the probes are open.
    let options = ServeOptions { scoring_tokens: vec!["s3cret-token".into()], ..ServeOptions::default() };
    let server = start(options);
    let body =
        json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}]});
    assert_eq!(post(&server, "/v2/models/iris/infer", &body).0, 401);
    assert_eq!(get(&server, "/v2/models/iris").0, 401);
    assert_eq!(post(&server, "/invocations", &json!({"inputs": [[5.1, 3.5, 1.4, 0.2]]})).0, 401);
    assert_eq!(get(&server, "/v2/health/ready").0, 200);
    let response = client()
        .post(format!("{}/v2/models/iris/infer", server.url()))
        .bearer_auth("s3cret-token")
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    drop(server);
    // The body limit.
    let server = start(ServeOptions { body_limit: 1024, ..ServeOptions::default() });
    let big = json!({"inputs": [{"name": "input", "shape": [100, 4], "datatype": "FP64", "data": vec![1.0; 400]}]});
    assert_eq!(post(&server, "/v2/models/iris/infer", &big).0, 413);
    assert_eq!(post(&server, "/invocations", &json!({"inputs": vec![[1.0, 2.0, 3.0, 4.0]; 100]})).0, 413);
}

#[test]
fn metrics_carry_model_and_version_and_pass_promtool() {
    let server = start(ServeOptions::default());
    let rows = lead_rows();
    post(&server, "/models/lead/predict", &json!({"records": rows}));
    post(&server, "/models/lead/predict?version=2", &json!({"records": rows}));
    post(&server, "/models/lead@2/predict", &json!({"records": rows}));
    post(&server, "/v2/models/lead/versions/2/infer", &json!({"inputs": per_feature_tensors(&rows)}));
    post(&server, "/v2/models/lead/infer", &json!({"inputs": []}));
    let response = client()
        .post(format!("{}/invocations", server.url()))
        .header("x-wharf-model", "lead@champion")
        .json(&json!({"dataframe_records": rows}))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let text = client().get(format!("{}/metrics", server.url())).send().unwrap().text().unwrap();
    for line in [
        "wharf_requests_total{model=\"lead\",version=\"1\",endpoint=\"predict\"} 1",
        "wharf_requests_total{model=\"lead\",version=\"2\",endpoint=\"predict\"} 2",
        "wharf_rows_predicted_total{model=\"lead\",version=\"2\",endpoint=\"v2_infer\"} 2",
        "wharf_request_errors_total{model=\"lead\",version=\"1\",endpoint=\"v2_infer\"} 1",
        "wharf_rows_predicted_total{model=\"lead\",version=\"1\",endpoint=\"invocations\"} 2",
        "wharf_request_duration_seconds_count{model=\"lead\",version=\"2\",endpoint=\"predict\"} 2",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    for (name, version) in [("lead", 1), ("lead", 2), ("iris", 1), ("diabetes", 1)] {
        let info = registry().1.version_info(name, &Selector::Version(wharf_core::Version(version))).unwrap();
        let prefix = format!("wharf_model_info{{model=\"{name}\",version=\"{version}\",kind=\"");
        let line = text.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("{prefix} in\n{text}"));
        assert!(line.ends_with(&format!("sha256=\"{}\"}} 1", info.sha256)), "{line}");
    }
    #[cfg(target_os = "linux")]
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        let value = text.lines().find_map(|l| l.strip_prefix(&format!("{name} "))).unwrap_or_else(|| panic!("{name}"));
        assert!(value.parse::<f64>().unwrap() > 0.0, "{name} {value}");
    }

    let Some(promtool) = std::env::var_os("WHARF_TEST_PROMTOOL") else {
        assert!(
            std::env::var("WHARF_TEST_REQUIRE_BACKENDS").as_deref() != Ok("1"),
            "WHARF_TEST_PROMTOOL is not set (cargo xtask test sets it)"
        );
        println!("skipped: the promtool check (set WHARF_TEST_PROMTOOL to promtool's path)");
        return;
    };
    use std::io::Write;
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics:\n{said}\n{text}");
}
