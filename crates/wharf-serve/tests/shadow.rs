//! Champion/challenger in shadow over a real socket: the champion answers, the challenger's
//! answers to the same records reach the shadow log, and what is logged is what each
//! version computes in process.

use std::sync::Arc;
use std::time::Duration;

use reqwest::blocking::Client;
use serde_json::{json, Value};
use wharf_core::shadow::{for_each_record, ShadowRecord};
use wharf_core::{score, FileRegistry, OnError, Records, RegistryPort, Selector};
use wharf_ml::{datasets, Trainer};
use wharf_serve::{ModelsBuilder, ServeOptions, ShadowLog};

/// `lead` v1 (logistic, champion), v2 (a depth-3 tree, challenger); `iris` v1.
fn registry(dir: &std::path::Path) -> Arc<FileRegistry> {
    let registry = Arc::new(FileRegistry::new(dir.join("reg")));
    let lead = datasets::lead_scoring();
    let v1 = registry.register(&Trainer::logistic_regression().fit(&lead).unwrap(), "lead").unwrap();
    let v2 = registry.register(&Trainer::decision_tree().max_depth(Some(3)).fit(&lead).unwrap(), "lead").unwrap();
    registry.set_alias("lead", "champion", &v1).unwrap();
    registry.set_alias("lead", "challenger", &v2).unwrap();
    registry.register(&Trainer::logistic_regression().fit(&datasets::iris()).unwrap(), "iris").unwrap();
    registry
}

fn options(dir: &std::path::Path) -> ServeOptions {
    ServeOptions {
        shadow_log: ShadowLog { dir: dir.join("shadow"), ..ShadowLog::default() },
        ..ServeOptions::default()
    }
}

fn rows(n: usize) -> Vec<Value> {
    let sources = ["organic", "cold_email", "referral", "webinar", "paid_search"];
    let industries = ["health", "retail", "finance", "software"];
    (0..n)
        .map(|i| {
            json!({"source": sources[i % 5], "industry": industries[(i / 4) % 4], "pages_viewed": i % 17,
                   "minutes_on_site": (i % 40) as f64 * 1.3, "emails_opened": i % 9, "company_size": 10 + 37 * (i % 30),
                   "days_since_signup": (i * 7) % 120})
        })
        .collect()
}

fn read_log(dir: &std::path::Path) -> Vec<ShadowRecord> {
    let mut records = Vec::new();
    for_each_record(&dir.join("shadow"), |r| {
        records.push(r);
        Ok(())
    })
    .unwrap();
    records
}

#[test]
fn the_champion_answers_and_the_challenger_s_answers_to_the_same_records_are_logged() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let models = ModelsBuilder::new()
        .registry(registry.clone())
        .model("lead@champion".parse().unwrap())
        .model("iris".parse().unwrap())
        .shadow("lead@challenger".parse().unwrap())
        .build()
        .unwrap();
    let server = wharf_serve::spawn(models, options(dir.path()), "127.0.0.1:0").unwrap();
    let client = Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let all = rows(60);
    let mut answers = Vec::new();
    for (i, chunk) in all.chunks(6).enumerate() {
        let mut request = client.post(format!("{}/models/lead/predict", server.url())).json(&json!({"records": chunk}));
        // Half the requests bring their own id; the others get one made and echoed.
        if i % 2 == 0 {
            request = request.header("X-Request-Id", format!("req-{i}"));
        }
        let response = request.send().unwrap();
        assert_eq!(response.status(), 200);
        let id = response.headers().get("x-request-id").expect("the id is echoed").to_str().unwrap().to_string();
        if i % 2 == 0 {
            assert_eq!(id, format!("req-{i}"));
        } else {
            assert_eq!(id.len(), 36, "a generated UUID: {id}");
        }
        let body: Value = response.json().unwrap();
        assert_eq!(body["version"], 1, "the champion answers: {body}");
        answers.push((id, body));
    }
    // Asked for by name, the challenger answers itself and nothing is logged; other models
    // have no shadow and no id header.
    let direct = client
        .post(format!("{}/models/lead/predict?version=challenger", server.url()))
        .json(&json!({"records": &all[..1]}))
        .send()
        .unwrap();
    assert!(direct.headers().get("x-request-id").is_none());
    assert_eq!(direct.json::<Value>().unwrap()["version"], 2);
    let iris = client
        .post(format!("{}/models/iris/predict", server.url()))
        .json(&json!({"instances": [[5.1, 3.5, 1.4, 0.2]]}))
        .send()
        .unwrap();
    assert!(iris.headers().get("x-request-id").is_none());
    server.shutdown().unwrap();

    let log = read_log(dir.path());
    assert_eq!(log.len(), answers.len(), "one line per champion request, none for the direct one");
    let champion = registry.load_selected("lead", &Selector::Version(wharf_core::Version(1))).unwrap();
    let challenger = registry.load_selected("lead", &Selector::Version(wharf_core::Version(2))).unwrap();
    let in_process = |model: &wharf_core::Model, chunk: &[Value]| {
        let rows = chunk.iter().map(|r| r.as_object().unwrap().clone()).collect();
        let server = wharf_core::LocalModelServer::with_model(model.clone());
        score(&server, &Records::Rows(rows), OnError::Fail).unwrap()
    };
    let mut disagreements = 0;
    for ((record, (id, answer)), chunk) in log.iter().zip(&answers).zip(all.chunks(6)) {
        assert_eq!(&record.request_id, id);
        assert_eq!(record.model, "lead");
        assert_eq!((record.champion.version, record.challenger.version), (1, 2));
        assert_eq!(record.classes, champion.classes());
        assert_eq!(&Value::from(record.champion.predictions.clone()), &answer["predictions"], "what the client got");
        let (a, b) = (in_process(&champion, chunk), in_process(&challenger, chunk));
        let side = |s: &wharf_core::Scored| wharf_core::shadow::ShadowSide::scored(0, 0, s);
        assert_eq!(record.champion.probabilities, side(&a).probabilities);
        assert_eq!(record.challenger.predictions, side(&b).predictions);
        assert_eq!(record.challenger.probabilities, side(&b).probabilities);
        assert!(record.challenger.error.is_none());
        disagreements += (0..chunk.len()).filter(|&i| a.predictions.to_json(i) != b.predictions.to_json(i)).count();
    }
    assert!(disagreements > 0, "two different models, so the log must be able to show a difference");
}

#[test]
fn metrics_count_what_the_shadow_logged() {
    let dir = tempfile::tempdir().unwrap();
    let models = ModelsBuilder::new()
        .registry(registry(dir.path()))
        .model("lead@champion".parse().unwrap())
        .shadow("lead@challenger".parse().unwrap())
        .build()
        .unwrap();
    let server = wharf_serve::spawn(models, options(dir.path()), "127.0.0.1:0").unwrap();
    let client = Client::new();
    for chunk in rows(5).chunks(1) {
        let r = client.post(format!("{}/models/lead/predict", server.url())).json(&json!({"records": chunk})).send();
        assert_eq!(r.unwrap().status(), 200);
    }
    // The writer runs after the answers; wait for it (bounded) before reading the counter.
    let mut text = String::new();
    for _ in 0..100 {
        text = client.get(format!("{}/metrics", server.url())).send().unwrap().text().unwrap();
        if text.contains("wharf_shadow_logged_total{model=\"lead\"} 5") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(text.contains("wharf_shadow_logged_total{model=\"lead\"} 5"), "{text}");
    assert!(text.contains("wharf_shadow_dropped_total{model=\"lead\"} 0"), "{text}");
    assert!(text.contains("wharf_shadow_challenger_errors_total{model=\"lead\"} 0"), "{text}");
}

#[test]
fn a_shadow_that_cannot_follow_or_log_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let build = |served: &[&str], shadow: &str| {
        let mut builder = ModelsBuilder::new().registry(registry.clone());
        for m in served {
            builder = builder.model(m.parse().unwrap());
        }
        builder.shadow(shadow.parse().unwrap()).build().map(|_| ()).unwrap_err().to_string()
    };
    assert!(build(&["iris"], "lead@challenger").contains("serve 'lead' too"));
    assert!(build(&["lead@champion"], "lead@1").contains("the default version itself"));
    let other = registry.register(&Trainer::logistic_regression().fit(&datasets::iris()).unwrap(), "lead").unwrap();
    assert!(build(&["lead@champion"], &format!("lead@{other}")).contains("does not predict what version 1 predicts"));

    // A log directory that cannot be made is the caller's error, before anything listens.
    std::fs::write(dir.path().join("file"), "a file, not a directory").unwrap();
    let models = ModelsBuilder::new()
        .registry(registry)
        .model("lead@champion".parse().unwrap())
        .shadow("lead@challenger".parse().unwrap())
        .build()
        .unwrap();
    let options = ServeOptions {
        shadow_log: ShadowLog { dir: dir.path().join("file").join("shadow"), ..ShadowLog::default() },
        ..ServeOptions::default()
    };
    let err = wharf_serve::spawn(models, options, "127.0.0.1:0").unwrap_err().to_string();
    assert!(err.contains("shadow log"), "{err}");
}

#[test]
fn the_standard_protocols_requests_to_the_champion_are_shadowed_too() {
    let dir = tempfile::tempdir().unwrap();
    let models = ModelsBuilder::new()
        .registry(registry(dir.path()))
        .model("lead@champion".parse().unwrap())
        .shadow("lead@challenger".parse().unwrap())
        .build()
        .unwrap();
    let server = wharf_serve::spawn(models, options(dir.path()), "127.0.0.1:0").unwrap();
    let client = Client::new();
    let invocations = client
        .post(format!("{}/invocations", server.url()))
        .header("X-Request-Id", "mlflow-1")
        .json(&json!({"dataframe_records": rows(4)}))
        .send()
        .unwrap();
    assert_eq!(invocations.status(), 200);
    assert_eq!(invocations.headers()["x-request-id"], "mlflow-1");
    let row = rows(1).remove(0);
    let inputs: Vec<Value> = row
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, v)| match v {
            Value::String(s) => json!({"name": name, "shape": [1, 1], "datatype": "BYTES", "data": [s]}),
            v => json!({"name": name, "shape": [1, 1], "datatype": "FP64", "data": [v.as_f64().unwrap()]}),
        })
        .collect();
    let v2 = client
        .post(format!("{}/v2/models/lead/infer", server.url()))
        .header("X-Request-Id", "v2-1")
        .json(&json!({"inputs": inputs}))
        .send()
        .unwrap();
    assert_eq!(v2.status(), 200, "{:?}", v2.text());
    server.shutdown().unwrap();

    let log = read_log(dir.path());
    let seen: Vec<(&str, usize)> =
        log.iter().map(|r| (r.request_id.as_str(), r.challenger.predictions.len())).collect();
    assert_eq!(seen, [("mlflow-1", 4), ("v2-1", 1)]);
    assert!(log.iter().all(|r| (r.champion.version, r.challenger.version) == (1, 2) && r.challenger.error.is_none()));
}
