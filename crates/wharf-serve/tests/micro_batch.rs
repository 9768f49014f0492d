//! Micro-batching: concurrent single-row requests are scored together, and each still gets
//! exactly its own answer.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use wharf_core::{FileRegistry, Model, Records, RegistryPort};
use wharf_ml::{datasets, Trainer};
use wharf_serve::{MicroBatch, ModelsBuilder, ServeOptions};

fn metric(text: &str, name: &str, model: &str) -> Option<u64> {
    let prefix = format!("{name}{{model=\"{model}\",version=\"1\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.trim().parse().ok())
}

#[test]
fn concurrent_single_rows_are_batched_and_answered_individually() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Arc::new(FileRegistry::new(dir.path()));
    let iris = datasets::iris();
    let model = Trainer::logistic_regression().fit(&iris).unwrap();
    registry.register(&model, "iris").unwrap();
    let builder = ModelsBuilder::new().registry(registry).model("iris".parse().unwrap());
    // A long wait makes the batching deterministic enough to assert on.
    let options = ServeOptions {
        micro_batch: Some(MicroBatch { max_rows: 16, wait: Duration::from_millis(50) }),
        ..ServeOptions::default()
    };
    let server = wharf_serve::spawn(builder.build().unwrap(), options, "127.0.0.1:0").unwrap();
    let url = server.url();

    const N: usize = 40;
    let rows: Vec<_> = (0..N).map(|i| iris.features.row(i * 3)).collect();
    let names: Vec<String> = model.signature().feature_names().map(String::from).collect();
    let handles: Vec<_> = rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            // Half named records, half positional instances; half predict, half predict_proba.
            let body = if i % 2 == 0 {
                json!({"records": [row]})
            } else {
                json!({"instances": [names.iter().map(|n| row[n].clone()).collect::<Vec<_>>()]})
            };
            let endpoint = if i % 4 < 2 { "predict" } else { "predict_proba?probabilities=array" };
            let url = format!("{url}/models/iris/{endpoint}");
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
                let response = client.post(url).json(&body).send().unwrap();
                (response.status().as_u16(), response.json::<Value>().unwrap())
            })
        })
        .collect();
    let answers: Vec<(u16, Value)> = handles.into_iter().map(|h| h.join().unwrap()).collect();

    let reference: &Model = &model;
    for (i, (status, answer)) in answers.iter().enumerate() {
        assert_eq!(*status, 200, "{answer}");
        let want = reference.predict_proba(&Records::Rows(vec![rows[i].clone()])).unwrap();
        let got: Vec<f64> = if i % 4 < 2 {
            want.classes.iter().map(|c| answer["probabilities"][0][c].as_f64().unwrap()).collect()
        } else {
            answer["probabilities"][0].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect()
        };
        assert_eq!(got, want.values.row(0).to_vec(), "request {i}");
        if i % 4 < 2 {
            let best = want.argmax()[0] as usize;
            assert_eq!(answer["predictions"][0], json!(want.classes[best]), "request {i}");
        }
    }

    let text = reqwest::blocking::get(format!("{url}/metrics")).unwrap().text().unwrap();
    let batches = metric(&text, "wharf_micro_batches_total", "iris").expect("batch counter");
    let batched = metric(&text, "wharf_micro_batched_requests_total", "iris").expect("request counter");
    assert_eq!(batched, N as u64, "{text}");
    assert!(batches < N as u64, "no batching happened: {batches} batches for {N} requests");
    // Multi-row requests bypass the batcher.
    let body = json!({"records": [rows[0], rows[1]]});
    let client = reqwest::blocking::Client::new();
    let r: Value = client.post(format!("{url}/models/iris/predict")).json(&body).send().unwrap().json().unwrap();
    assert_eq!(r["predictions"].as_array().map(Vec::len), Some(2));
    let text = reqwest::blocking::get(format!("{url}/metrics")).unwrap().text().unwrap();
    assert_eq!(metric(&text, "wharf_micro_batched_requests_total", "iris"), Some(N as u64));
    server.shutdown().unwrap();
}

#[test]
fn batching_is_off_by_default_and_bad_query_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Arc::new(FileRegistry::new(dir.path()));
    let iris = datasets::iris();
    registry.register(&Trainer::logistic_regression().fit(&iris).unwrap(), "iris").unwrap();
    let builder = ModelsBuilder::new().registry(registry).model("iris".parse().unwrap());
    let server = wharf_serve::spawn(builder.build().unwrap(), ServeOptions::default(), "127.0.0.1:0").unwrap();
    let client = reqwest::blocking::Client::new();
    let body = json!({"records": [iris.features.row(0)]});
    let ok = client.post(format!("{}/models/iris/predict_proba", server.url())).json(&body).send().unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    let bad = client
        .post(format!("{}/models/iris/predict_proba?probabilities=columns", server.url()))
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let text = reqwest::blocking::get(format!("{}/metrics", server.url())).unwrap().text().unwrap();
    assert!(!text.contains("wharf_micro_batches_total"), "{text}");
    server.shutdown().unwrap();
}
