//! Sessions and the scoring pipe on real trained models: each stage's output, routing,
//! policies, training reports, counters, and that sessions never see each other's models.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use wharf_core::{LocalModelServer, ModelServerPort, ModelServers, Records};
use wharf_ml::{Dataset, Trainer};
use wharf_pipeline::scoring::{
    enrich, featurize, route_by_confidence, scoring_pipeline, FeatureStore, Features, ScoringOptions, HIGH_CONFIDENCE,
    LOW_CONFIDENCE,
};
use wharf_pipeline::{demo, Pipeline, PipelineError, Policy, RunContext, RunOutput, Session, Sessions, TrainReport};

/// Trains one logistic model in each of two sessions at the same time.
fn train_two(sessions: &Sessions, a: (&str, Dataset), b: (&str, Dataset)) -> (TrainReport, TrainReport) {
    let (session_a, session_b) = (sessions.open(a.0), sessions.open(b.0));
    std::thread::scope(|s| {
        let ta = s.spawn(|| session_a.train(&Trainer::logistic_regression(), &a.1));
        let tb = s.spawn(|| session_b.train(&Trainer::logistic_regression(), &b.1));
        let a = ta.join().expect("no panic").expect("trains");
        let b = tb.join().expect("no panic").expect("trains");
        (a, b)
    })
}

fn pipeline(sessions: &Arc<Sessions>, workers: usize) -> (Pipeline, Arc<FeatureStore>) {
    let cache = Arc::new(FeatureStore::new("features"));
    let options = ScoringOptions { workers: Some(workers), batch_size: 5, ..ScoringOptions::default() };
    (scoring_pipeline(cache.clone(), sessions.clone(), &options).expect("valid"), cache)
}

fn ctx(session: &str, model_id: &str) -> RunContext {
    RunContext::new().session(session).meta("model_id", model_id)
}

/// Every output by record id, with its bucket; fails if a record shows up twice.
fn by_record(out: &RunOutput) -> BTreeMap<u64, (String, Value)> {
    let mut records = BTreeMap::new();
    for (bucket, items) in &out.buckets {
        for item in items {
            let id = item.payload["record_id"].as_u64().expect("a record id");
            assert!(records.insert(id, (bucket.clone(), item.payload.clone())).is_none(), "record {id} twice");
        }
    }
    records
}

/// What the session's model says about the records when asked directly: (prediction,
/// rounded confidence) by record id.
fn direct(session: &Session, model_id: &str, records: &[Value]) -> BTreeMap<u64, (String, f64)> {
    let server = session.server(model_id).expect("the session holds it");
    let rows: Vec<f64> = records
        .iter()
        .flat_map(|r| demo::FEATURES.iter().map(|f| r["data"][f].as_f64().expect("numeric")).collect::<Vec<_>>())
        .collect();
    let matrix = ndarray::Array2::from_shape_vec((records.len(), 4), rows).expect("4 columns");
    let proba = server.predict_proba(&Records::Matrix(matrix.into())).expect("predicts");
    records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let row = proba.values.row(i);
            let best = (0..row.len()).fold(0, |b, j| if row[j] > row[b] { j } else { b });
            let id = r["id"].as_u64().expect("an id");
            (id, (proba.classes[best].clone(), (row[best] * 10_000.0).round() / 10_000.0))
        })
        .collect()
}

fn scored(payload: &Value) -> (String, f64) {
    (payload["prediction"].as_str().unwrap_or_default().to_string(), payload["confidence"].as_f64().unwrap_or(-1.0))
}

#[test]
fn each_session_scores_with_its_own_model_only() {
    let sessions = Arc::new(Sessions::new());
    let (a, b) = train_two(&sessions, ("A", demo::dataset_a(42)), ("B", demo::dataset_b(137)));
    assert_ne!(a.model_id, b.model_id);
    let (session_a, session_b) = (sessions.get("A").expect("open"), sessions.get("B").expect("open"));
    assert_eq!(session_a.stats().model_ids, std::slice::from_ref(&a.model_id));
    assert_eq!(session_b.stats().model_ids, std::slice::from_ref(&b.model_id));

    let records = demo::test_records(20, 256);
    let (pipe, _) = pipeline(&sessions, 2);
    let out = pipe.run(records.clone(), ctx("A", &a.model_id)).expect("runs");
    let expected = direct(&session_a, &a.model_id, &records);
    let got = by_record(&out);
    assert_eq!(got.len(), 20);
    for (id, (_, payload)) in &got {
        assert_eq!(payload["model_id"], json!(a.model_id));
        assert_eq!(scored(payload), expected[id], "record {id} through A equals A's model run directly");
    }

    // B asked for A's model: a per-item error, never B's model quietly used instead.
    let out = pipe.run(records, ctx("B", &a.model_id)).expect("runs");
    assert_eq!(out.bucket(LOW_CONFIDENCE).len(), 20);
    let message = format!("model '{}' not found in session 'B'", a.model_id);
    assert!(out
        .bucket(LOW_CONFIDENCE)
        .iter()
        .all(|i| i.payload["error"] == json!(message) && i.payload["confidence"] == json!(0.0)));
}

/// What a session's scoring sees when its model is swapped, dropped, or its session closed.
/// (Sessions run in-process, with no worker processes to pin to, so there is no worker
/// affinity to test and this test does not claim it.)
#[test]
fn session_scores_follow_its_model_and_fail_per_item_once_dropped_or_closed() {
    // Keep every server the sessions' factory makes, to look inside the session's own.
    let created: Arc<Mutex<Vec<Arc<LocalModelServer>>>> = Arc::default();
    let made = created.clone();
    let sessions = Arc::new(Sessions::with_model_servers(ModelServers::new("local", move || {
        let server = Arc::new(LocalModelServer::new());
        made.lock().expect("not poisoned").push(server.clone());
        Ok(server as Arc<dyn ModelServerPort>)
    })));
    let report = sessions.open("A").train(&Trainer::logistic_regression(), &demo::dataset_a(1)).expect("trains");
    let server = created.lock().expect("not poisoned").pop().expect("the factory made the model's server");
    let tag = server.model().and_then(|m| m.metadata().tags.get("model_id").cloned());
    assert_eq!(tag.as_deref(), Some(report.model_id.as_str()));
    let (pipe, _) = pipeline(&sessions, 1);
    let records = demo::test_records(6, 2);
    let predictions = |out: &RunOutput| by_record(out).into_values().map(|(_, p)| scored(&p).0).collect::<Vec<_>>();

    let before = pipe.run(records.clone(), ctx("A", &report.model_id)).expect("runs");
    assert!(before.buckets.values().flatten().all(|i| i.payload.get("error").is_none()));
    // Swap a model with the opposite labels into that server: the session's scores follow it.
    let flipped = demo::two_class_dataset("flipped", (demo::CENTRES_A.1, demo::CENTRES_A.0), 200, 0.5, 1);
    server.load(Trainer::logistic_regression().fit(&flipped).expect("trains")).expect("loads");
    let after = pipe.run(records.clone(), ctx("A", &report.model_id)).expect("runs");
    let changed = predictions(&before).iter().zip(predictions(&after)).filter(|(b, a)| **b != *a).count();
    assert!(changed >= 4, "the clear records flip with the swapped model ({changed} changed)");

    assert!(sessions.get("A").expect("open").remove_model(&report.model_id));
    let out = pipe.run(records.clone(), ctx("A", &report.model_id)).expect("runs");
    let expected = format!("model '{}' not found in session 'A'", report.model_id);
    assert_eq!(out.bucket(LOW_CONFIDENCE).len(), 6);
    assert!(out.bucket(LOW_CONFIDENCE).iter().all(|i| i.payload["error"] == json!(expected)));

    assert!(sessions.close("A"));
    let out = pipe.run(records, ctx("A", &report.model_id)).expect("runs");
    assert!(out.bucket(LOW_CONFIDENCE).iter().all(|i| i.payload["error"] == json!("session 'A' is unavailable")));
    assert_eq!(out.bucket(LOW_CONFIDENCE).len(), 6);
}

#[test]
fn enrich_and_featurize_with_write_through() {
    let cache = Arc::new(FeatureStore::new("features"));
    cache.put("99", Features { names: vec!["f1".to_string()].into(), values: vec![7.5] });
    let front = Pipeline::builder("front")
        .stage(enrich(cache.clone()))
        .stage(featurize(Some(cache.clone())))
        .build()
        .expect("valid");
    let records = vec![
        json!({"id": 1, "data": {"f3": 3.0, "f1": 1.0, "name": "text", "f2": 2.0}}),
        json!({"id": "two", "data": {"b": 20, "a": 10}}),
        json!({"id": 99, "data": {"f1": 0.0}}),
    ];
    let run = |records: Vec<Value>| front.run(records, RunContext::new().meta("model_id", "m1")).expect("runs");
    let first = run(records.clone());
    let payloads = first.payloads("default");
    assert_eq!(payloads[0]["features"], json!([1.0, 2.0, 3.0]), "numeric fields sorted by name");
    assert_eq!(payloads[0]["feature_names"], json!(["f1", "f2", "f3"]));
    assert_eq!((&payloads[0]["cache_hit"], &payloads[0]["model_id"]), (&json!(false), &json!("m1")));
    assert_eq!(payloads[1]["features"], json!([10.0, 20.0]));
    assert_eq!(payloads[2]["features"], json!([7.5]), "a hit passes through with the cached vector");
    assert_eq!(payloads[2]["cache_hit"], json!(true));

    assert_eq!(cache.len(), 3, "both misses were written through");
    assert_eq!(cache.get("two").map(|f| f.values.clone()), Some(vec![10.0, 20.0]));
    let second = run(records);
    assert!(second.payloads("default").iter().all(|p| p["cache_hit"] == json!(true)), "a second run is all hits");
    assert_eq!(second.payloads("default")[0]["features"], json!([1.0, 2.0, 3.0]));
}

#[test]
fn predict_reports_rounded_probabilities_and_confidence() {
    let sessions = Arc::new(Sessions::new());
    let report = sessions.open("S").train(&Trainer::logistic_regression(), &demo::dataset_a(3)).expect("trains");
    let (pipe, _) = pipeline(&sessions, 2);
    let out = pipe.run(demo::test_records(20, 4), ctx("S", &report.model_id)).expect("runs");
    let all = by_record(&out);
    assert_eq!(all.len(), 20);
    for (bucket, payload) in all.values() {
        let probabilities = payload["probabilities"].as_object().expect("a map");
        assert_eq!(probabilities.keys().collect::<Vec<_>>(), ["0", "1"], "keyed by class label as text");
        let values: Vec<f64> = probabilities.values().map(|v| v.as_f64().expect("number")).collect();
        assert!(values.iter().all(|p| (p * 10_000.0).round() / 10_000.0 == *p), "rounded to 4 places");
        let confidence = payload["confidence"].as_f64().expect("number");
        assert_eq!(confidence, values.iter().cloned().fold(f64::MIN, f64::max));
        let best = if values[1] > values[0] { "1" } else { "0" };
        assert_eq!(payload["prediction"], json!(best));
        let expected = if confidence >= 0.9 {
            HIGH_CONFIDENCE
        } else if confidence < 0.6 {
            LOW_CONFIDENCE
        } else {
            "default"
        };
        assert_eq!(bucket, expected);
    }
}

#[test]
fn route_by_confidence_thresholds() {
    let router = Pipeline::builder("router")
        .router(route_by_confidence(0.9, 0.6))
        .output(HIGH_CONFIDENCE)
        .output(LOW_CONFIDENCE)
        .build()
        .expect("valid");
    let input = [
        json!({"confidence": 0.9}),
        json!({"confidence": 0.95}),
        json!({"confidence": 0.6}),
        json!({"confidence": 0.5999}),
        json!({"confidence": 0.75}),
        json!({"error": "no confidence at all"}),
    ];
    let out = router.run(input, RunContext::new()).expect("runs");
    let confidences = |bucket| out.payloads(bucket).iter().map(|p| p.get("confidence").cloned()).collect::<Vec<_>>();
    assert_eq!(confidences(HIGH_CONFIDENCE), [Some(json!(0.9)), Some(json!(0.95))], "exactly 0.9 is high");
    assert_eq!(confidences("default"), [Some(json!(0.6)), Some(json!(0.75))], "exactly 0.6 is default");
    assert_eq!(confidences(LOW_CONFIDENCE), [Some(json!(0.5999)), None], "no confidence counts as 0");
}

#[test]
fn policies_skip_featurize_and_predict_failures_and_halt_elsewhere() {
    let sessions = Arc::new(Sessions::new());
    let report = sessions.open("S").train(&Trainer::logistic_regression(), &demo::dataset_a(5)).expect("trains");
    let (pipe, _) = pipeline(&sessions, 1);
    assert!(matches!(pipe.policy("featurize"), Some(Policy::Skip)));
    assert!(matches!(pipe.policy("predict"), Some(Policy::Skip)));
    assert!(matches!(pipe.policy("enrich"), Some(Policy::Halt)));

    let mut records = demo::test_records(4, 6);
    records.push(json!({"id": 5, "data": {"name": "no numbers here"}}));
    records.push(json!({"id": 6, "data": {"f1": 1.0, "f2": 2.0}}));
    let out = pipe.run(records.clone(), ctx("S", &report.model_id)).expect("runs");
    assert_eq!(out.stats.stage("featurize").map(|s| s.skipped), Some(1), "the record without numbers is skipped");
    let all = by_record(&out);
    assert_eq!(all.len(), 5);
    let (bucket, payload) = &all[&6];
    assert_eq!(bucket, LOW_CONFIDENCE, "a per-item prediction error lands in low confidence");
    assert!(payload["error"].as_str().is_some_and(|e| e.contains("do not match the model's inputs")));

    let no_model = pipe.run(records.clone(), RunContext::new().session("S")).expect("runs");
    assert!(no_model.bucket(LOW_CONFIDENCE).iter().all(|i| i.payload["error"] == json!("no model_id provided")));

    records.push(json!({"data": {"f1": 1.0}}));
    match pipe.run(records, ctx("S", &report.model_id)) {
        Err(PipelineError::Halted { stage, reason, .. }) => {
            assert_eq!(stage, "enrich");
            assert!(reason.message().contains("'id'"));
        }
        other => panic!("expected a halt in enrich, got {other:?}"),
    }
}

/// Mean confidence of the boundary group and of the clear groups.
fn confidence_by_group(out: &RunOutput) -> (f64, f64) {
    let (mut boundary, mut clear) = (Vec::new(), Vec::new());
    for (id, (_, payload)) in by_record(out) {
        let c = payload["confidence"].as_f64().unwrap_or(0.0);
        if demo::is_boundary(id) {
            boundary.push(c)
        } else {
            clear.push(c)
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    (mean(&boundary), mean(&clear))
}

#[test]
fn two_session_demo_sequential_and_concurrent() {
    let sessions = Arc::new(Sessions::new());
    let (a, b) = train_two(&sessions, ("scoring_a", demo::dataset_a(42)), ("scoring_b", demo::dataset_b(137)));
    let records = demo::test_records(20, 256);
    let (pipe, _) = pipeline(&sessions, 2);

    let seq_a = pipe.run(records.clone(), ctx("scoring_a", &a.model_id)).expect("A runs");
    let seq_b = pipe.run(records.clone(), ctx("scoring_b", &b.model_id)).expect("B runs");
    let (con_a, con_b) = std::thread::scope(|s| {
        let ta = s.spawn(|| pipe.run(records.clone(), ctx("scoring_a", &a.model_id)));
        let tb = s.spawn(|| pipe.run(records.clone(), ctx("scoring_b", &b.model_id)));
        (ta.join().expect("no panic").expect("A runs"), tb.join().expect("no panic").expect("B runs"))
    });

    for out in [&seq_a, &seq_b, &con_a, &con_b] {
        assert_eq!(by_record(out).len(), 20, "every record in exactly one bucket");
        assert!(out.buckets.values().flatten().all(|i| i.payload.get("error").is_none()));
    }
    assert_eq!(by_record(&seq_a), by_record(&con_a), "concurrency changes nothing for A");
    assert_eq!(by_record(&seq_b), by_record(&con_b), "concurrency changes nothing for B");
    let (ra, rb) = (by_record(&seq_a), by_record(&seq_b));
    let divergent = ra.keys().filter(|id| scored(&ra[id].1) != scored(&rb[id].1)).count();
    assert!(divergent >= 1, "A and B disagree on at least one record");
    let (boundary, clear) = confidence_by_group(&seq_a);
    assert!(boundary < clear, "near-boundary records are less certain under A ({boundary} vs {clear})");
}

#[test]
fn training_reports_and_refuses_empty_data() {
    let session = Session::new("train");
    let report = session.train(&Trainer::logistic_regression(), &demo::dataset_a(8)).expect("trains");
    assert!(!report.model_id.is_empty());
    assert_eq!(
        (report.classes.as_slice(), report.n_features, report.n_samples),
        (&["0".to_string(), "1".to_string()][..], 4, 200)
    );
    assert_eq!(report.worker_id, "train");
    let accuracy = report.accuracy.expect("a classifier reports accuracy");
    assert!(accuracy > 0.9 && accuracy <= 1.0, "well separated classes: {accuracy}");

    let empty = demo::two_class_dataset("empty", demo::CENTRES_A, 0, 0.5, 1);
    assert!(session.train(&Trainer::logistic_regression(), &empty).is_err());
    assert_eq!(session.model_ids(), std::slice::from_ref(&report.model_id), "a failed training stores nothing");

    let forest = session.train(&Trainer::random_forest().trees(50).seed(7), &demo::dataset_a(9)).expect("trains");
    assert_eq!(session.model_ids().len(), 2);
    assert!(session.model_ids().contains(&forest.model_id));
    assert_eq!(session.stats().training_history.len(), 2);
}

#[test]
fn prediction_count_rises_by_items_scored() {
    let sessions = Arc::new(Sessions::new());
    let (a, _) = train_two(&sessions, ("A", demo::dataset_a(1)), ("B", demo::dataset_b(2)));
    let (pipe, _) = pipeline(&sessions, 2);
    let count = |id: &str| sessions.get(id).expect("open").stats().prediction_count;
    assert_eq!(count("A"), 0);
    pipe.run(demo::test_records(20, 3), ctx("A", &a.model_id)).expect("runs");
    assert_eq!(count("A"), 20);
    pipe.run(demo::test_records(7, 4), ctx("A", &a.model_id)).expect("runs");
    assert_eq!(count("A"), 27);
    pipe.run(demo::test_records(5, 5), ctx("B", &a.model_id)).expect("runs");
    assert_eq!(count("B"), 0, "failed predictions are not counted");
    let stats = sessions.get("A").expect("open").stats();
    assert_eq!((stats.worker_id.as_str(), stats.models_stored, stats.training_history.len()), ("A", 1, 1));
}

#[test]
fn sessions_never_see_each_others_model_across_threads() {
    // Opposite label distributions: what A calls class 1, B calls class 0.
    let sessions = Arc::new(Sessions::new());
    let flipped = (demo::CENTRES_A.1, demo::CENTRES_A.0);
    let (a, b) = train_two(
        &sessions,
        ("A", demo::two_class_dataset("a", demo::CENTRES_A, 200, 0.5, 11)),
        ("B", demo::two_class_dataset("b", flipped, 200, 0.5, 11)),
    );
    let records = demo::test_records(60, 12);
    let expected_a = direct(&sessions.get("A").expect("open"), &a.model_id, &records);
    let expected_b = direct(&sessions.get("B").expect("open"), &b.model_id, &records);
    let opposite = records
        .iter()
        .filter_map(|r| r["id"].as_u64())
        .filter(|id| !demo::is_boundary(*id))
        .all(|id| expected_a[&id].0 != expected_b[&id].0);
    assert!(opposite, "the two models disagree on every clear record");

    let (pipe, _) = pipeline(&sessions, 2);
    std::thread::scope(|s| {
        for t in 0..4 {
            let (pipe, records) = (&pipe, &records);
            let (session, model, expected) =
                if t % 2 == 0 { ("A", &a.model_id, &expected_a) } else { ("B", &b.model_id, &expected_b) };
            s.spawn(move || {
                for _ in 0..5 {
                    let out = pipe.run(records.clone(), ctx(session, model)).expect("runs");
                    let got = by_record(&out);
                    assert_eq!(got.len(), records.len());
                    for (id, (_, payload)) in got {
                        assert_eq!(
                            payload["model_id"],
                            json!(model),
                            "record {id} scored by session {session}'s model"
                        );
                        assert_eq!(scored(&payload), expected[&id], "record {id} in session {session}");
                    }
                }
            });
        }
    });
    assert_eq!(sessions.get("A").expect("open").stats().prediction_count, 2 * 5 * 60);
    assert_eq!(sessions.get("B").expect("open").stats().prediction_count, 2 * 5 * 60);
}
