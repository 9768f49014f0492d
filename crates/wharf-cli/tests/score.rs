//! `wharf score` end to end: the binary in a fresh directory with only the defaults.

use std::path::Path;

mod common;

use common::{lead_rows, Sandbox};
use serde_json::Value;

/// A directory with a `lead` model trained on 300 rows and `new.csv` (40 rows) to score.
fn with_model() -> Sandbox {
    let s = Sandbox::with_leads();
    s.ok(&["train", "-q", "--input", "leads.csv", "--target", "converted", "--id", "lead_id", "--name", "lead"]);
    s
}

/// The data files in the sandbox (and any temporary file left behind), sorted.
fn files(s: &Sandbox) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(s.dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".csv") || n.ends_with(".jsonl") || n.ends_with(".parquet") || n.contains(".tmp"))
        .collect();
    names.sort();
    names
}

fn csv_rows(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(path).expect("csv");
    let header = reader.headers().expect("header").iter().map(str::to_string).collect();
    let rows = reader.records().map(|r| r.expect("record").iter().map(str::to_string).collect()).collect();
    (header, rows)
}

#[test]
fn score_writes_ids_scores_and_the_model_through_any_format() {
    let s = with_model();
    let out =
        s.ok(&["score", "--model", "lead", "--input", "new.csv", "--output", "scored.parquet", "--id", "lead_id"]);
    assert!(out.contains("Scored 40 rows with lead@1") && out.contains("rows/s"), "{out}");
    // Parquet back to CSV: the same 40 ids, in order, with the model's name and version.
    let v: Value = serde_json::from_str(&s.ok(&[
        "score",
        "--json",
        "-m",
        "lead@1",
        "-i",
        "new.csv",
        "-o",
        "direct.csv",
        "--id",
        "lead_id",
        "--chunk-rows",
        "7",
    ]))
    .expect("json");
    assert_eq!(v["rows"], 40);
    assert_eq!(
        v["columns"],
        serde_json::json!(["lead_id", "prediction", "prob_no", "prob_yes", "model", "model_version"])
    );
    let (header, rows) = csv_rows(&s.path("direct.csv"));
    assert_eq!(header.len(), 6);
    let (_, input) = csv_rows(&s.path("new.csv"));
    for (row, source) in rows.iter().zip(&input) {
        assert_eq!(row[0], source[0], "ids are kept in order");
        let (no, yes): (f64, f64) = (row[2].parse().expect("prob_no"), row[3].parse().expect("prob_yes"));
        assert!((no + yes - 1.0).abs() < 1e-12);
        assert_eq!(row[1], if yes > no { "yes" } else { "no" });
        assert_eq!(&row[4..], ["lead", "1"]);
    }
    assert_eq!(rows.len(), 40);
}

#[test]
fn score_skips_bad_rows_to_the_reject_file() {
    let s = with_model();
    let mut lines: Vec<String> = lead_rows(40).lines().map(str::to_string).collect();
    for (line, column, value) in [(3, 1, "carrier_pigeon"), (7, 4, "lots")] {
        let mut cells: Vec<&str> = lines[line].split(',').collect();
        cells[column] = value;
        lines[line] = cells.join(",");
    }
    s.write("mixed.csv", &(lines.join("\n") + "\n"));

    let err = s.error(&["score", "-m", "lead", "-i", "mixed.csv", "-o", "out.jsonl"]);
    assert!(err.contains("row 7") && err.contains("'minutes_on_site'") && err.contains("'lots'"), "{err}");
    assert!(!s.path("out.jsonl").exists());

    let v: Value = serde_json::from_str(&s.ok(&[
        "score",
        "--json",
        "-m",
        "lead",
        "-i",
        "mixed.csv",
        "-o",
        "out.jsonl",
        "--id",
        "lead_id",
        "--on-error",
        "skip",
        "--reject",
        "bad.jsonl",
    ]))
    .expect("json");
    assert_eq!((v["rows"].as_u64(), v["rows_rejected"].as_u64()), (Some(38), Some(2)));
    let rejects: Vec<Value> = s.read("bad.jsonl").lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    assert_eq!(rejects.len(), 2);
    assert_eq!(rejects[1]["row"], 7);
    assert_eq!(rejects[1]["column"], "minutes_on_site");
    assert!(rejects[0]["reason"].as_str().unwrap_or_default().contains("carrier_pigeon"), "{}", rejects[0]);
    assert_eq!(s.read("out.jsonl").lines().count(), 38);
    assert_eq!(files(&s), ["bad.jsonl", "leads.csv", "mixed.csv", "new.csv", "out.jsonl", "wharf-lineage.jsonl"]);
}

#[test]
fn score_names_a_missing_column_and_records_lineage() {
    let s = with_model();
    s.write("thin.csv", "lead_id,source,industry\nL1,organic,health\n");
    let err = s.error(&["score", "-m", "lead", "-i", "thin.csv", "-o", "out.csv"]);
    assert!(err.contains("thin.csv, column 'pages_viewed'") && err.contains("missing"), "{err}");
    assert!(!s.path("out.csv").exists());

    s.ok(&["score", "-q", "-m", "lead", "-i", "new.csv", "-o", "scored.csv"]);
    let events: Vec<Value> =
        s.read("wharf-lineage.jsonl").lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    let scoring: Vec<&Value> = events.iter().filter(|e| e["name"] == "score-lead").collect();
    let types: Vec<&str> = scoring.iter().map(|e| e["event_type"].as_str().unwrap_or_default()).collect();
    assert_eq!(types, ["START", "FAIL", "START", "COMPLETE"]);
    assert_eq!(scoring[3]["inputs"], serde_json::json!(["file:new.csv", "registry:lead/1"]));
    assert_eq!(scoring[3]["outputs"], serde_json::json!(["file:scored.csv"]));
}

#[test]
fn reject_needs_skip() {
    let s = with_model();
    let err = s.error(&["score", "-m", "lead", "-i", "new.csv", "-o", "out.csv", "--reject", "r.jsonl"]);
    assert!(err.contains("--on-error skip"), "{err}");
}

/// `wharf train --id lead_id` makes `lead_id` the model's id column: `score` and `predict`
/// copy it without being told again, `--id` adds columns, `--no-model-ids` leaves the
/// model's out, and a file without the column is scored without it.
#[test]
fn the_model_s_id_columns_ride_along_by_default() {
    let s = with_model();
    let columns = |args: &[&str]| -> Value {
        // The command, then the model, then the rest.
        let mut all = vec!["--json", args[0], "-m", "lead"];
        all.extend_from_slice(&args[1..]);
        serde_json::from_str::<Value>(&s.ok(&all)).expect("json")["columns"].clone()
    };
    let layout = serde_json::json!(["lead_id", "prediction", "prob_no", "prob_yes", "model", "model_version"]);
    assert_eq!(columns(&["score", "-i", "new.csv", "-o", "score.csv"]), layout);
    assert_eq!(columns(&["predict", "-i", "new.csv", "-o", "predict.csv"]), layout);
    // One command under two names: the same file, byte for byte.
    assert_eq!(s.read("score.csv"), s.read("predict.csv"));
    let (_, rows) = csv_rows(&s.path("score.csv"));
    let (_, input) = csv_rows(&s.path("new.csv"));
    assert_eq!(rows.iter().map(|r| &r[0]).collect::<Vec<_>>(), input.iter().map(|r| &r[0]).collect::<Vec<_>>());

    // Naming the model's id again changes nothing; another column is added after it.
    assert_eq!(columns(&["score", "-i", "new.csv", "-o", "again.csv", "--id", "lead_id"]), layout);
    assert_eq!(
        columns(&["score", "-i", "new.csv", "-o", "more.csv", "--id", "industry"]),
        serde_json::json!(["lead_id", "industry", "prediction", "prob_no", "prob_yes", "model", "model_version"])
    );
    assert_eq!(
        columns(&["predict", "-i", "new.csv", "-o", "only.csv", "--no-model-ids", "--id", "industry"]),
        serde_json::json!(["industry", "prediction", "prob_no", "prob_yes", "model", "model_version"])
    );

    // A file without the model's id column still scores; one the user names must exist.
    let no_ids: String =
        lead_rows(40).lines().map(|l| l.split_once(',').map_or(l, |(_, rest)| rest).to_string() + "\n").collect();
    s.write("no_ids.csv", &no_ids);
    assert_eq!(
        columns(&["score", "-i", "no_ids.csv", "-o", "bare.csv"]),
        serde_json::json!(["prediction", "prob_no", "prob_yes", "model", "model_version"])
    );
    let err = s.error(&["score", "-m", "lead", "-i", "no_ids.csv", "-o", "bare.csv", "--id", "lead_id"]);
    assert!(err.contains("'lead_id'"), "{err}");
}

/// `predict` is documented as the alias it is, and its help names every format it reads.
#[test]
fn predict_is_a_documented_alias_of_score() {
    let s = Sandbox::new();
    let help = s.ok(&["--help"]);
    assert!(help.lines().any(|l| l.trim_start().starts_with("score") && l.contains("predict")), "{help}");
    let predict = s.ok(&["predict", "--help"]);
    assert_eq!(predict, s.ok(&["score", "--help"]));
    assert!(predict.contains(".parquet") && predict.contains(".jsonl") && predict.contains(".csv"), "{predict}");
    assert!(predict.contains("--on-error") && predict.contains("--no-model-ids"), "{predict}");
}
