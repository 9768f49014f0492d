//! The multi-model runner: two versions of a trained lead-scoring model, a hand-written
//! rule, and two summaries, over a batch of leads, with every result stored in SQLite.
//!
//! ```bash
//! cargo run -p wharf-runner --example multi_model_runner [RESULTS.db]
//! ```
//!
//! It writes `wharf-runner-results.db` in the working directory unless given another path.
//! Run it twice: each lead's history grows by one result, and the newest is current.

use serde_json::{json, Value};
use wharf_ml::{datasets, Trainer};
use wharf_runner::{
    Builtin, FieldSpec, InputSource, ModelSpec, Record, ResultStore, Runner, SqliteResultStore, Status, SummarySpec,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "wharf-runner-results.db".to_string());

    // Two versions of one model: results of both are kept, under lead/1 and lead/2.
    let data = datasets::lead_scoring();
    let (train, holdout) = data.split(0.25, 7)?;
    let logistic = Trainer::logistic_regression().fit(&train)?;
    let tree = Trainer::decision_tree().max_depth(Some(4)).fit(&train)?;
    let lead_v1 = ModelSpec::from_model("lead", "1", logistic).input(InputSource::Shared).status(Status::Active);
    let lead_v2 = ModelSpec::from_model("lead", "2", tree).input(InputSource::Shared).status(Status::Active);

    // A rule written in Rust, with its input fields declared (types and ranges are checked
    // on every record before the rule runs).
    let engagement = ModelSpec::from_fn("engagement", "0.1.0", |row| {
        let pages = row["pages_viewed"].as_f64().ok_or("pages_viewed")?;
        let minutes = row["minutes_on_site"].as_f64().ok_or("minutes_on_site")?;
        Ok(json!({ "score": (pages * minutes).sqrt() }))
    })
    .field("pages_viewed", FieldSpec::int().range(0.0, 1_000.0))
    .field("minutes_on_site", FieldSpec::float().range(0.0, 1_440.0))
    .input(InputSource::Shared)
    .status(Status::Active);

    // Summaries run after every model: a built-in picks the higher P(yes); a function
    // decides who calls the lead.
    let best = SummarySpec::builtin("best", "1", [("lead", "1"), ("lead", "2")], Builtin::Max, "prob_yes")
        .status(Status::Active);
    let route = SummarySpec::new("route", "1", [("best", "1"), ("engagement", "0.1.0")], |input| {
        let p = input.value("best", "1").and_then(|v| v["value"].as_f64()).ok_or("no best score")?;
        let score = input.value("engagement", "0.1.0").and_then(|v| v["score"].as_f64()).ok_or("no engagement")?;
        let queue = if p > 0.7 {
            "sales"
        } else if score > 10.0 {
            "nurture"
        } else {
            "newsletter"
        };
        Ok(json!({ "queue": queue }))
    })
    .status(Status::Active);

    // The leads to score, and one with an impossible value: it gets error entries, the
    // others are unaffected.
    let mut records: Vec<Record> = (0..holdout.n_rows())
        .map(|i| {
            let id = holdout.ids.column("lead_id").map(|c| c.text_at(i)).unwrap_or_else(|| i.to_string());
            Record::new(id, holdout.features.row(i))
        })
        .collect();
    let mut odd = holdout.features.row(0);
    odd.insert("pages_viewed".into(), json!(-3));
    records.push(Record::new("L-BROKEN", odd));

    let store = SqliteResultStore::open(&path)?;
    let runner = Runner::new(vec![lead_v1, lead_v2, engagement], vec![best, route])?;
    let results = runner.run(&records, Some(&store))?;

    println!("{:<10} {:>10} {:>10} {:>11}  {:<10}", "lead", "lead@1", "lead@2", "engagement", "queue");
    let field = |r: &wharf_runner::RecordResult, name: &str, version: &str, key: &str| -> String {
        match r.results.get(name, version) {
            Some(result) => match result.value().and_then(|v| v.get(key)) {
                Some(Value::Number(n)) => format!("{:.3}", n.as_f64().unwrap_or_default()),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => result.error_ref().map_or("-".into(), |e| format!("error: {}", e.kind)),
            },
            None => "-".into(),
        }
    };
    for r in results.iter().take(5).chain(results.last()) {
        println!(
            "{:<10} {:>10} {:>10} {:>11}  {:<10}",
            r.id,
            field(r, "lead", "1", "prob_yes"),
            field(r, "lead", "2", "prob_yes"),
            field(r, "engagement", "0.1.0", "score"),
            field(r, "route", "1", "queue"),
        );
    }
    if let Some(broken) = results.last() {
        if let Some(e) = broken.results.get("engagement", "0.1.0").and_then(|r| r.error_ref()) {
            println!("\n{}: engagement@0.1.0 {}: {}", broken.id, e.kind, e.message);
        }
    }

    let first = &results[0].id;
    let count = store.count()?;
    println!(
        "\nstored {} records in {path} ({} results in all); '{first}' has {} result(s) in its history",
        count.records,
        count.results,
        store.history(first)?.len()
    );
    Ok(())
}
