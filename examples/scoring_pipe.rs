//! The ML scoring demo, end to end: two sessions train two logistic models at the same
//! time, then score the same 20 records concurrently through the four-stage pipe
//! (enrich → featurize → predict → route_by_confidence). It prints each session's buckets,
//! how many records the two models disagree on, and the isolation proof: each session
//! holds only its own model, and asking one session for the other's model fails per record.
//!
//! Run with: `cargo run -p wharf-pipeline --example scoring_pipe`

use std::error::Error;
use std::sync::Arc;

use wharf_ml::Trainer;
use wharf_pipeline::scoring::{scoring_pipeline, FeatureStore, ScoringOptions, HIGH_CONFIDENCE, LOW_CONFIDENCE};
use wharf_pipeline::{demo, RunContext, RunOutput, Sessions, DEFAULT_BUCKET};

fn main() -> Result<(), Box<dyn Error>> {
    let sessions = Arc::new(Sessions::new());
    let cache = Arc::new(FeatureStore::new("feature_cache"));
    let pipe = scoring_pipeline(cache.clone(), sessions.clone(), &ScoringOptions::default())?;

    let id_a = format!("scoring_a_{}", std::process::id());
    let id_b = format!("scoring_b_{}", std::process::id());
    let (session_a, session_b) = (sessions.open(&id_a), sessions.open(&id_b));

    println!("== training two logistic models at once, one per session");
    let (report_a, report_b) = std::thread::scope(|s| {
        let a = s.spawn(|| session_a.train(&Trainer::logistic_regression(), &demo::dataset_a(42)));
        let b = s.spawn(|| session_b.train(&Trainer::logistic_regression(), &demo::dataset_b(137)));
        (a.join(), b.join())
    });
    let report_a = report_a.map_err(|_| "training A panicked")??;
    let report_b = report_b.map_err(|_| "training B panicked")??;
    for report in [&report_a, &report_b] {
        println!("{}", serde_json::to_string(report)?);
    }

    let records = demo::test_records(20, 256);
    let context = |session: &str, model: &str| RunContext::new().session(session).meta("model_id", model);

    println!("\n== scoring the same 20 records through both sessions concurrently");
    let (out_a, out_b) = std::thread::scope(|s| {
        let a = s.spawn(|| pipe.run(records.clone(), context(&id_a, &report_a.model_id)));
        let b = s.spawn(|| pipe.run(records.clone(), context(&id_b, &report_b.model_id)));
        (a.join(), b.join())
    });
    let out_a = out_a.map_err(|_| "run A panicked")??;
    let out_b = out_b.map_err(|_| "run B panicked")??;
    print_buckets("session A", &out_a);
    print_buckets("session B", &out_b);

    let scored = |out: &RunOutput| {
        let mut all: Vec<(u64, String, f64)> = out
            .buckets
            .values()
            .flatten()
            .map(|i| {
                let p = &i.payload;
                let id = p["record_id"].as_u64().unwrap_or_default();
                (id, p["prediction"].as_str().unwrap_or("-").to_string(), p["confidence"].as_f64().unwrap_or(0.0))
            })
            .collect();
        all.sort_by_key(|(id, _, _)| *id);
        all
    };
    let (scored_a, scored_b) = (scored(&out_a), scored(&out_b));
    let divergent = scored_a.iter().zip(&scored_b).filter(|(a, b)| a.1 != b.1 || a.2 != b.2).count();
    println!("\nprediction divergence: {divergent} of {} records differ between A and B", scored_a.len());
    println!("{:>6}  {:>14}  {:>14}  group", "record", "A (pred/conf)", "B (pred/conf)");
    for (a, b) in scored_a.iter().zip(&scored_b) {
        let group = if demo::is_boundary(a.0) { "near boundary" } else { "clear" };
        println!("{:>6}  {:>5} {:>8.4}  {:>5} {:>8.4}  {group}", a.0, a.1, a.2, b.1, b.2);
    }

    println!("\n== isolation");
    for session in [&session_a, &session_b] {
        println!("{}", serde_json::to_string(&session.stats())?);
    }
    let (models_a, models_b) = (session_a.model_ids(), session_b.model_ids());
    println!("session A holds {models_a:?}, session B holds {models_b:?}");
    println!("models differ: {}", models_a != models_b && models_a.iter().all(|m| !models_b.contains(m)));
    let crossed = pipe.run(records.clone(), context(&id_b, &report_a.model_id))?;
    let refused = crossed.bucket(LOW_CONFIDENCE).iter().filter(|i| i.payload.get("error").is_some()).count();
    let example_error = crossed.bucket(LOW_CONFIDENCE).first().and_then(|i| i.payload["error"].as_str()).unwrap_or("");
    println!("session B asked for A's model: {refused} of {} records refused ({example_error})", records.len());
    println!("feature cache: {} records written through by featurize", cache.len());
    Ok(())
}

fn print_buckets(label: &str, out: &RunOutput) {
    println!("{label} ({}):", out.session_id);
    for bucket in [HIGH_CONFIDENCE, DEFAULT_BUCKET, LOW_CONFIDENCE] {
        let ids: Vec<String> = out.bucket(bucket).iter().map(|i| i.payload["record_id"].to_string()).collect();
        println!("  {bucket:<16} {:>2}  [{}]", ids.len(), ids.join(", "));
    }
}
