//! `wharf sql` end to end (feature `datafusion`): the binary in a fresh directory, scoring
//! files through SQL and agreeing with `wharf score` on the same rows.
#![cfg(feature = "datafusion")]

mod common;

use common::Sandbox;
use serde_json::Value;

const FEATURES: &str =
    "source, industry, pages_viewed, minutes_on_site, emails_opened, company_size, days_since_signup";

/// `wharf score`'s CSV output: lead_id → (prediction, prob_no, prob_yes).
fn scored_by_wharf_score(s: &Sandbox) -> Vec<(String, String, f64, f64)> {
    s.ok(&["score", "-q", "-m", "lead", "-i", "new.csv", "-o", "scored.csv", "--id", "lead_id"]);
    let mut reader = csv::Reader::from_path(s.path("scored.csv")).expect("csv");
    let header: Vec<String> = reader.headers().expect("header").iter().map(str::to_string).collect();
    assert_eq!(header[..4], ["lead_id", "prediction", "prob_no", "prob_yes"]);
    reader
        .records()
        .map(|r| {
            let r = r.expect("record");
            (r[0].to_string(), r[1].to_string(), r[2].parse().expect("prob_no"), r[3].parse().expect("prob_yes"))
        })
        .collect()
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-9)
}

#[test]
fn sql_scores_a_csv_like_wharf_score_and_copies_to_parquet() {
    let s = Sandbox::with_leads();
    s.train_lead();
    let expected = scored_by_wharf_score(&s);
    assert_eq!(expected.len(), 40);

    let query = format!(
        "SELECT lead_id, wharf_predict('lead', {FEATURES}) AS prediction, \
         wharf_predict_proba('lead@1', {FEATURES}) AS p FROM 'new.csv' ORDER BY lead_id"
    );
    let rows = s.json(&["sql", &query]);
    let rows = rows.as_array().expect("an array of rows");
    assert_eq!(rows.len(), 40);
    for (row, (id, label, no, yes)) in rows.iter().zip(&expected) {
        assert_eq!(row["lead_id"], id.as_str());
        assert_eq!(row["prediction"], label.as_str(), "{id}");
        assert!(close(&row["p"]["no"], *no) && close(&row["p"]["yes"], *yes), "{id}: {row} vs {no} {yes}");
    }

    // COPY TO Parquet, then read the file back through SQL: the same rows.
    let copied = s.json(&["sql", &format!("COPY ({query}) TO 'scored.parquet' STORED AS PARQUET")]);
    assert_eq!(copied[0]["count"], 40);
    assert!(s.path("scored.parquet").is_file());
    let back = s.json(&["sql", "SELECT lead_id, prediction, p FROM 'scored.parquet' ORDER BY lead_id"]);
    assert_eq!(back.as_array().map(Vec::len), Some(40));
    assert_eq!(back[7], rows[7]);

    // A table for people, from a script: CREATE EXTERNAL TABLE, then the query.
    let table = s.ok(&[
        "sql",
        &format!(
            "CREATE EXTERNAL TABLE leads STORED AS CSV LOCATION 'new.csv' OPTIONS ('format.has_header' 'true'); \
             SELECT lead_id, wharf_predict('lead', {FEATURES}) AS prediction FROM leads ORDER BY lead_id LIMIT 3"
        ),
    ]);
    assert!(table.contains("lead_id") && table.contains("prediction"), "{table}");
    assert!(table.contains(&expected[2].0) && !table.contains(&expected[3].0), "{table}");
}

#[test]
fn sql_errors_are_one_line() {
    let s = Sandbox::with_leads();
    s.train_lead();
    let e = s.error(&["sql", &format!("SELECT wharf_predict('nope', {FEATURES}) FROM 'new.csv'")]);
    assert!(e.contains("wharf_predict('nope')") && e.contains("not found"), "{e}");
    let e = s.error(&["sql", "SELECT wharf_predict('lead', source) FROM 'new.csv'"]);
    assert!(e.contains("takes 7 features"), "{e}");
    let e = s.error(&["sql", "SELEC 1"]);
    assert!(e.contains("SELEC"), "{e}");
    s.fails(&["sql"], 2);
}
