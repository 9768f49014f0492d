//! `score_file` end to end on real files: every format in and out, ids preserved, scores equal
//! to `Model::predict_proba` on the same rows, schema errors, rejects, chunk boundaries,
//! lineage, and no output left behind on failure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef, DictionaryArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use serde_json::value::RawValue;
use serde_json::Value;
use wharf_batch::{score_file, unregistered_facts, Format, OnError, ScoreOptions, ScoreSummary};
use wharf_core::{
    Column, FileLineage, Model, ModelFacts, ModelServerPort, ModelServers, NoOpLineage, Records, WharfError,
};
use wharf_ml::{datasets, Trainer};

const NUMERIC: [&str; 5] = ["pages_viewed", "minutes_on_site", "emails_opened", "company_size", "days_since_signup"];

/// The lead model, trained once for all tests.
fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| Trainer::logistic_regression().fit(&datasets::lead_scoring()).expect("train"))
}

/// The lead model on an in-process server, as the container's default factory makes it.
fn server() -> &'static dyn ModelServerPort {
    static SERVER: OnceLock<Arc<dyn ModelServerPort>> = OnceLock::new();
    SERVER.get_or_init(|| ModelServers::local().serve(model().clone()).expect("serve")).as_ref()
}

fn facts() -> ModelFacts {
    ModelFacts { version: Some(3), ..unregistered_facts(model(), "lead") }
}

/// The bundled lead rows: header + the first `n` rows (n ≤ 1200).
fn lead_csv(n: usize) -> String {
    datasets::LEAD_SCORING_CSV.lines().take(n + 1).map(|l| format!("{l}\n")).collect()
}

/// `lead_id` and the model's own probabilities for the first `n` lead rows.
fn expected(n: usize) -> Vec<(String, Vec<f64>)> {
    let data = datasets::lead_scoring();
    let rows: Vec<usize> = (0..n).collect();
    let proba = model().predict_proba(&Records::Columns(data.features.take(&rows))).expect("proba");
    let ids = data.ids.column("lead_id").expect("ids");
    rows.iter().map(|&i| (ids.text_at(i), proba.values.row(i).to_vec())).collect()
}

fn write_jsonl(path: &Path, n: usize) {
    let data = datasets::lead_scoring();
    let mut text = String::new();
    for i in 0..n {
        let mut row = data.features.row(i);
        row.insert("lead_id".into(), data.ids.column("lead_id").expect("ids").text_at(i).into());
        row.insert("note".into(), "fields the model does not take ride along".into());
        text.push_str(&Value::Object(row).to_string());
        text.push('\n');
    }
    std::fs::write(path, text).expect("write jsonl");
}

/// Writes the first `n` lead rows as Parquet: text ids and categories, integer and float
/// numbers, as pandas would.
fn write_parquet(path: &Path, n: usize) {
    let data = datasets::lead_scoring();
    let rows: Vec<usize> = (0..n).collect();
    let features = data.features.take(&rows);
    let mut fields = vec![Field::new("lead_id", DataType::Utf8, false)];
    let mut arrays: Vec<ArrayRef> = vec![Arc::new(StringArray::from_iter_values(
        rows.iter().map(|&i| data.ids.column("lead_id").expect("ids").text_at(i)),
    ))];
    for (name, column) in features.columns() {
        match column {
            Column::Numeric(v) if name == "pages_viewed" => {
                fields.push(Field::new(name, DataType::Int64, true));
                arrays.push(Arc::new(Int64Array::from_iter_values(v.iter().map(|x| *x as i64))));
            }
            Column::Numeric(v) => {
                fields.push(Field::new(name, DataType::Float64, true));
                arrays.push(Arc::new(Float64Array::from(v.clone())));
            }
            Column::Text(v) => {
                fields.push(Field::new(name, DataType::Utf8, true));
                arrays.push(Arc::new(v.iter().cloned().collect::<StringArray>()));
            }
        }
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), arrays).expect("batch");
    let mut writer = ArrowWriter::try_new(std::fs::File::create(path).expect("create"), schema, None).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
}

/// An output file's rows as JSON objects, whatever its format.
fn read_rows(path: &Path) -> Vec<BTreeMap<String, Value>> {
    match Format::from_path(path).expect("format") {
        Format::Csv => {
            let mut reader = csv::Reader::from_path(path).expect("csv");
            let header: Vec<String> = reader.headers().expect("header").iter().map(str::to_string).collect();
            reader
                .records()
                .map(|r| {
                    let r = r.expect("record");
                    header.iter().cloned().zip(r.iter().map(|c| Value::String(c.to_string()))).collect()
                })
                .collect()
        }
        // Numbers are read with Rust's correctly rounding parser: serde_json's default may be
        // one ulp off on 17-digit decimals, which would hide (or fake) a real difference.
        Format::Jsonl => std::fs::read_to_string(path)
            .expect("read")
            .lines()
            .map(|l| {
                let raw: BTreeMap<String, Box<RawValue>> = serde_json::from_str(l).expect("json line");
                raw.into_iter()
                    .map(|(k, v)| {
                        let value = match v.get().parse::<f64>() {
                            Ok(x) => Value::from(x),
                            Err(_) => serde_json::from_str(v.get()).expect("json value"),
                        };
                        (k, value)
                    })
                    .collect()
            })
            .collect(),
        Format::Parquet => {
            let file = std::fs::File::open(path).expect("open");
            let reader = ParquetRecordBatchReaderBuilder::try_new(file).expect("parquet").build().expect("reader");
            let mut rows = Vec::new();
            for batch in reader {
                let batch = batch.expect("batch");
                for i in 0..batch.num_rows() {
                    let mut row = BTreeMap::new();
                    for (field, array) in batch.schema().fields().iter().zip(batch.columns()) {
                        let value = if array.is_null(i) {
                            Value::Null
                        } else {
                            match field.data_type() {
                                DataType::Utf8 => array.as_string::<i32>().value(i).into(),
                                DataType::Float64 => array.as_primitive::<Float64Type>().value(i).into(),
                                DataType::Int64 => array.as_primitive::<Int64Type>().value(i).into(),
                                other => panic!("unexpected output type {other}"),
                            }
                        };
                        row.insert(field.name().clone(), value);
                    }
                    rows.push(row);
                }
            }
            rows
        }
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn number(v: &Value) -> f64 {
    match v {
        Value::String(s) => s.parse().unwrap_or_else(|_| panic!("'{s}' is not a number")),
        other => other.as_f64().unwrap_or_else(|| panic!("{other} is not a number")),
    }
}

/// Asserts the output holds exactly the expected ids, in order, with the model's own
/// probabilities (bit for bit: every format carries f64 exactly) and the likelier class.
fn assert_scores(path: &Path, expected: &[(String, Vec<f64>)]) {
    let rows = read_rows(path);
    assert_eq!(rows.len(), expected.len(), "{}", path.display());
    for (row, (id, proba)) in rows.iter().zip(expected) {
        assert_eq!(text(&row["lead_id"]), *id, "ids are kept, in input order");
        let (no, yes) = (number(&row["prob_no"]), number(&row["prob_yes"]));
        assert_eq!([no, yes], proba[..], "row {id} of {}", path.display());
        assert_eq!(text(&row["prediction"]), if yes > no { "yes" } else { "no" });
        assert_eq!(text(&row["model"]), "lead");
        assert_eq!(number(&row["model_version"]), 3.0);
    }
}

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        Dir(tempfile::tempdir().expect("dir"))
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
    fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.0.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

fn score(options: &ScoreOptions) -> wharf_core::Result<ScoreSummary> {
    score_file(server(), &facts(), options, &NoOpLineage::default(), &mut |_| {})
}

#[test]
fn csv_jsonl_and_parquet_round_trips_keep_ids_and_scores() {
    let dir = Dir::new();
    std::fs::write(dir.path("in.csv"), lead_csv(500)).expect("write");
    write_jsonl(&dir.path("in.jsonl"), 500);
    write_parquet(&dir.path("in.parquet"), 500);
    let want = expected(500);
    for ext in ["csv", "jsonl", "parquet"] {
        let output = dir.path(&format!("out.{ext}"));
        let summary =
            score(&ScoreOptions::new(dir.path(&format!("in.{ext}")), &output).ids(["lead_id"]).chunk_rows(64))
                .unwrap_or_else(|e| panic!("{ext}: {e}"));
        assert_eq!((summary.rows_read, summary.rows_scored, summary.rows_rejected), (500, 500, 0));
        assert_scores(&output, &want);
    }
}

#[test]
fn every_format_converts_to_every_other() {
    let dir = Dir::new();
    std::fs::write(dir.path("in.csv"), lead_csv(300)).expect("write");
    write_jsonl(&dir.path("in.jsonl"), 300);
    write_parquet(&dir.path("in.parquet"), 300);
    let want = expected(300);
    for input in ["csv", "jsonl", "parquet"] {
        for output in ["csv", "jsonl", "parquet"] {
            let out = dir.path(&format!("{input}-to.{output}"));
            score(&ScoreOptions::new(dir.path(&format!("in.{input}")), &out).ids(["lead_id"]))
                .unwrap_or_else(|e| panic!("{input} -> {output}: {e}"));
            assert_scores(&out, &want);
        }
    }
}

#[test]
fn chunk_boundaries_do_not_change_the_result() {
    let dir = Dir::new();
    let chunk = 16;
    for rows in [chunk * 5 - 1, chunk * 5, chunk * 5 + 1, 1] {
        std::fs::write(dir.path("in.csv"), lead_csv(rows)).expect("write");
        let whole = dir.path("whole.jsonl");
        let chunked = dir.path("chunked.jsonl");
        score(&ScoreOptions::new(dir.path("in.csv"), &whole).ids(["lead_id"]).chunk_rows(100_000)).expect("whole");
        let summary =
            score(&ScoreOptions::new(dir.path("in.csv"), &chunked).ids(["lead_id"]).chunk_rows(chunk).threads(3))
                .expect("chunked");
        assert_eq!(summary.rows_scored, rows as u64);
        assert_eq!(std::fs::read(&whole).expect("whole"), std::fs::read(&chunked).expect("chunked"), "{rows} rows");
        assert_scores(&chunked, &expected(rows));
    }
}

#[test]
fn a_missing_column_fails_before_scoring_and_names_it() {
    let dir = Dir::new();
    // Drop the `industry` column (the third).
    let csv: String = lead_csv(20)
        .lines()
        .map(|l| l.split(',').enumerate().filter(|(j, _)| *j != 2).map(|(_, c)| c).collect::<Vec<_>>().join(",") + "\n")
        .collect();
    std::fs::write(dir.path("in.csv"), csv).expect("write");
    let mut events = Vec::new();
    let lineage = FileLineage::new(dir.path("lineage.jsonl"));
    let err = score_file(
        server(),
        &facts(),
        &ScoreOptions::new(dir.path("in.csv"), dir.path("out.csv")),
        &lineage,
        &mut |p| events.push(p.rows_read),
    )
    .expect_err("industry is missing");
    assert!(matches!(err, WharfError::SchemaMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("'industry'") && err.to_string().contains("in.csv"), "{err}");
    assert!(events.is_empty(), "no chunk was scored");
    assert_eq!(dir.files(), ["in.csv", "lineage.jsonl"], "no output, no temporary file");

    // A missing id column is named too.
    std::fs::write(dir.path("full.csv"), lead_csv(20)).expect("write");
    let err = score(&ScoreOptions::new(dir.path("full.csv"), dir.path("out.csv")).ids(["customer"]))
        .expect_err("no such id")
        .to_string();
    assert!(err.contains("'customer'"), "{err}");
}

#[test]
fn the_first_json_line_stands_in_for_a_header() {
    let dir = Dir::new();
    write_jsonl(&dir.path("in.jsonl"), 5);
    let text = std::fs::read_to_string(dir.path("in.jsonl")).expect("read");
    let mut first: serde_json::Map<String, Value> =
        serde_json::from_str(text.lines().next().expect("line")).expect("row");
    first.remove("industry");
    std::fs::write(dir.path("in.jsonl"), format!("{}\n{text}", Value::Object(first))).expect("write");
    let mut chunks = 0;
    let err = score_file(
        server(),
        &facts(),
        &ScoreOptions::new(dir.path("in.jsonl"), dir.path("out.csv")).on_error(OnError::Skip),
        &NoOpLineage::default(),
        &mut |_| chunks += 1,
    )
    .expect_err("the first record lacks industry");
    assert!(matches!(err, WharfError::SchemaMismatch { .. }) && err.to_string().contains("'industry'"), "{err}");
    assert_eq!(chunks, 0, "nothing was scored");
    assert_eq!(dir.files(), ["in.jsonl"]);
}

#[test]
fn a_parquet_column_of_the_wrong_type_is_named() {
    let dir = Dir::new();
    let schema = Arc::new(Schema::new(
        ["source", "industry", "pages_viewed", "minutes_on_site", "emails_opened", "company_size", "days_since_signup"]
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let arrays: Vec<ArrayRef> = (0..7).map(|_| Arc::new(StringArray::from_iter_values(["1"])) as ArrayRef).collect();
    let batch = RecordBatch::try_new(schema.clone(), arrays).expect("batch");
    let mut writer =
        ArrowWriter::try_new(std::fs::File::create(dir.path("in.parquet")).expect("create"), schema, None).expect("w");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
    let err = score(&ScoreOptions::new(dir.path("in.parquet"), dir.path("out.csv"))).expect_err("text numbers");
    let text = err.to_string();
    assert!(text.contains("'pages_viewed'") && text.contains("wrong type") && text.contains("text"), "{text}");
    assert!(!dir.path("out.csv").exists());
}

/// Replaces cell `column` of CSV line `line` (0 is the header).
fn set_cell(lines: &mut [String], line: usize, column: usize, value: &str) {
    let mut cells: Vec<&str> = lines[line].split(',').collect();
    cells[column] = value;
    lines[line] = cells.join(",");
}

/// Three bad rows among 40: text in a numeric column (row 5), an unknown category (row 12),
/// a short row (row 30).
fn csv_with_bad_rows(dir: &Dir) -> usize {
    let mut lines: Vec<String> = lead_csv(40).lines().map(str::to_string).collect();
    set_cell(&mut lines, 5, 3, "many");
    set_cell(&mut lines, 12, 2, "astrology");
    lines[30] = "L99999,organic".into();
    std::fs::write(dir.path("in.csv"), lines.join("\n") + "\n").expect("write");
    40
}

#[test]
fn skipped_rows_go_to_the_reject_file_with_their_reasons() {
    let dir = Dir::new();
    let n = csv_with_bad_rows(&dir);
    let lineage = FileLineage::new(dir.path("lineage.jsonl"));
    let options = ScoreOptions::new(dir.path("in.csv"), dir.path("out.csv"))
        .ids(["lead_id"])
        .on_error(OnError::Skip)
        .chunk_rows(8);
    let summary = score_file(server(), &facts(), &options, &lineage, &mut |_| {}).expect("skip");
    assert_eq!((summary.rows_read, summary.rows_scored, summary.rows_rejected), (n as u64, n as u64 - 3, 3));
    let rejects_path = dir.path("out.csv.rejects.jsonl");
    assert_eq!(summary.reject_file.as_deref(), Some(rejects_path.as_path()));

    let rejects: Vec<Value> = std::fs::read_to_string(&rejects_path)
        .expect("rejects")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let rows: Vec<u64> = rejects.iter().map(|r| r["row"].as_u64().expect("row")).collect();
    assert_eq!(rows, [5, 12, 30], "data rows, in file order");
    assert_eq!(rejects[0]["column"], "pages_viewed");
    assert!(rejects[0]["reason"].as_str().expect("reason").contains("'many'"), "{}", rejects[0]);
    assert_eq!(rejects[0]["raw"]["pages_viewed"], "many", "the raw row is kept");
    assert_eq!(rejects[0]["line"], 6, "the header is line 1");
    assert_eq!(rejects[1]["column"], "industry");
    assert!(rejects[1]["reason"].as_str().expect("reason").contains("astrology"), "{}", rejects[1]);
    assert_eq!(rejects[1]["raw"]["lead_id"], "L00012", "the raw row holds the ids");
    assert!(rejects[2]["reason"].as_str().expect("reason").contains("fields"), "{}", rejects[2]);

    // The good rows are all there, with the scores they get on their own.
    let scored = read_rows(&dir.path("out.csv"));
    let ids: Vec<String> = scored.iter().map(|r| text(&r["lead_id"])).collect();
    assert_eq!(ids.len(), n - 3);
    assert!(!ids.contains(&"L00005".to_string()) && !ids.contains(&"L00012".to_string()));
    let want: Vec<(String, Vec<f64>)> = expected(n).into_iter().filter(|(id, _)| ids.contains(id)).collect();
    assert_scores(&dir.path("out.csv"), &want);

    // Lineage names the reject file as an output and counts the rows.
    let complete: Value = serde_json::from_str(
        std::fs::read_to_string(dir.path("lineage.jsonl")).expect("lineage").lines().last().expect("line"),
    )
    .expect("json");
    assert_eq!(complete["event_type"], "COMPLETE");
    assert_eq!(complete["metadata"]["rows_rejected"], 3);
    assert_eq!(complete["outputs"].as_array().expect("outputs").len(), 2);
}

#[test]
fn on_error_fail_names_the_row_and_column_and_leaves_nothing_behind() {
    let dir = Dir::new();
    csv_with_bad_rows(&dir);
    std::fs::write(dir.path("out.csv"), "previous output\n").expect("write");
    let err = score(&ScoreOptions::new(dir.path("in.csv"), dir.path("out.csv")).ids(["lead_id"]).chunk_rows(4))
        .expect_err("row 5 is bad")
        .to_string();
    assert!(err.contains("in.csv row 5 (line 6), column 'pages_viewed'") && err.contains("'many'"), "{err}");
    assert_eq!(std::fs::read_to_string(dir.path("out.csv")).expect("read"), "previous output\n", "untouched");
    assert_eq!(dir.files(), ["in.csv", "out.csv"], "no temporary files, no reject file");
}

#[test]
fn jsonl_rows_are_checked_one_by_one() {
    let dir = Dir::new();
    write_jsonl(&dir.path("in.jsonl"), 10);
    let mut text = std::fs::read_to_string(dir.path("in.jsonl")).expect("read");
    text.insert(0, '\n');
    text.push_str("{\"lead_id\": oops}\n");
    text.push_str("[1, 2]\n");
    let mut bad: serde_json::Map<String, Value> =
        serde_json::from_str(text.lines().nth(1).expect("line")).expect("row");
    bad.insert("company_size".into(), "big".into());
    text.push_str(&Value::Object(bad).to_string());
    text.push('\n');
    std::fs::write(dir.path("in.jsonl"), text).expect("write");

    let options =
        ScoreOptions::new(dir.path("in.jsonl"), dir.path("out.jsonl")).ids(["lead_id"]).on_error(OnError::Skip);
    let summary = score(&options).expect("skip");
    assert_eq!((summary.rows_scored, summary.rows_rejected), (10, 3));
    let rejects = std::fs::read_to_string(dir.path("out.jsonl.rejects.jsonl")).expect("rejects");
    let rejects: Vec<Value> = rejects.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    assert_eq!(rejects[0]["line"], 12, "blank lines count as lines, not rows");
    assert!(rejects[0]["reason"].as_str().expect("reason").contains("invalid JSON"), "{}", rejects[0]);
    assert_eq!(rejects[0]["raw"], "{\"lead_id\": oops}");
    assert!(rejects[1]["reason"].as_str().expect("reason").contains("an array"), "{}", rejects[1]);
    assert_eq!(rejects[2]["column"], "company_size");

    let err = score(&ScoreOptions::new(dir.path("in.jsonl"), dir.path("out.jsonl"))).expect_err("fail").to_string();
    assert!(err.contains("line 12"), "{err}");
}

#[test]
fn lineage_records_start_and_complete_with_datasets() {
    let dir = Dir::new();
    std::fs::write(dir.path("in.csv"), lead_csv(25)).expect("write");
    let lineage = FileLineage::new(dir.path("lineage.jsonl"));
    let options = ScoreOptions::new(dir.path("in.csv"), dir.path("out.parquet")).ids(["lead_id"]);
    let summary = score_file(server(), &facts(), &options, &lineage, &mut |_| {}).expect("score");
    let events: Vec<Value> = std::fs::read_to_string(dir.path("lineage.jsonl"))
        .expect("lineage")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["event_type"], "START");
    assert_eq!(events[1]["event_type"], "COMPLETE");
    assert_eq!(events[0]["run_id"], summary.run_id.as_str());
    assert_eq!(events[1]["run_id"], summary.run_id.as_str());
    assert_eq!(events[1]["name"], "score-lead");
    let input = format!("file:{}", dir.path("in.csv").display());
    let output = format!("file:{}", dir.path("out.parquet").display());
    assert_eq!(events[1]["inputs"], serde_json::json!([input, "registry:lead/3"]));
    assert_eq!(events[1]["outputs"], serde_json::json!([output]));
    assert_eq!(events[1]["metadata"]["rows"], 25);
    assert_eq!(events[1]["model"]["version"], 3);
    assert!(events[1]["schemas"][&output].as_array().expect("output schema").iter().any(|f| f["name"] == "prob_yes"));

    // A failed job ends FAIL, with the error.
    std::fs::write(dir.path("bad.csv"), "lead_id,source\nL1,organic\n").expect("write");
    let options = ScoreOptions::new(dir.path("bad.csv"), dir.path("out.csv"));
    score_file(server(), &facts(), &options, &lineage, &mut |_| {}).expect_err("missing columns");
    let last: Value = serde_json::from_str(
        std::fs::read_to_string(dir.path("lineage.jsonl")).expect("lineage").lines().last().expect("line"),
    )
    .expect("json");
    assert_eq!(last["event_type"], "FAIL");
    assert!(last["metadata"]["error"].as_str().expect("error").contains("missing"), "{last}");
}

#[test]
fn parquet_ids_keep_their_type_and_progress_reaches_the_end() {
    let dir = Dir::new();
    let n = 1000;
    let schema = Arc::new(Schema::new(
        std::iter::once(Field::new("customer", DataType::Int64, false))
            .chain(["source", "industry"].iter().map(|c| Field::new(*c, DataType::Utf8, true)))
            .chain(NUMERIC.iter().map(|c| Field::new(*c, DataType::Float64, true)))
            .collect::<Vec<_>>(),
    ));
    let mut arrays: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values((0..n).map(|i| 9_000_000_000_000 + i))),
        Arc::new(StringArray::from_iter_values((0..n).map(|_| "organic"))),
        Arc::new(StringArray::from_iter((0..n).map(|i| if i % 7 == 0 { None } else { Some("health") }))),
    ];
    for j in 0..NUMERIC.len() {
        arrays.push(Arc::new(Float64Array::from_iter((0..n).map(|i| {
            if i % 11 == j as i64 {
                None
            } else {
                Some(i as f64 / 10.0)
            }
        }))));
    }
    let batch = RecordBatch::try_new(schema.clone(), arrays).expect("batch");
    let mut writer =
        ArrowWriter::try_new(std::fs::File::create(dir.path("in.parquet")).expect("create"), schema, None).expect("w");
    writer.write(&batch).expect("write");
    writer.close().expect("close");

    let mut seen = Vec::new();
    let options = ScoreOptions::new(dir.path("in.parquet"), dir.path("out.parquet")).ids(["customer"]).chunk_rows(128);
    score_file(server(), &facts(), &options, &NoOpLineage::default(), &mut |p| seen.push(*p)).expect("score");
    let last = seen.last().expect("progress was reported");
    assert_eq!((last.rows_read, last.total_rows), (n as u64, Some(n as u64)));
    assert!(seen.windows(2).all(|w| w[0].rows_read < w[1].rows_read), "progress only grows");

    let rows = read_rows(&dir.path("out.parquet"));
    assert_eq!(rows.len(), n as usize);
    assert_eq!(rows[5]["customer"], serde_json::json!(9_000_000_000_005_i64), "an Int64 id stays an exact Int64");
    // Nulls are missing values, scored as the model imputes them.
    let row = model()
        .predict_proba(&Records::Rows(vec![serde_json::from_value(serde_json::json!({
            "source": "organic", "industry": null, "pages_viewed": null, "minutes_on_site": 0.0,
            "emails_opened": 0.0, "company_size": 0.0, "days_since_signup": 0.0
        }))
        .expect("row")]))
        .expect("proba");
    assert_eq!(number(&rows[0]["prob_yes"]), row.get(0, "yes").expect("yes"));
}

/// pandas writes a `category` column as a dictionary-encoded one; it reads as its levels.
#[test]
fn dictionary_encoded_categories_read_as_their_levels() {
    let dir = Dir::new();
    write_parquet(&dir.path("plain.parquet"), 50);
    let file = std::fs::File::open(dir.path("plain.parquet")).expect("open");
    let batch = ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet")
        .build()
        .expect("reader")
        .next()
        .expect("a batch")
        .expect("batch");
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (field, array) in batch.schema().fields().iter().zip(batch.columns()) {
        if field.name() == "industry" {
            let levels: DictionaryArray<Int32Type> = array.as_string::<i32>().iter().collect();
            fields.push(Field::new("industry", levels.data_type().clone(), true));
            arrays.push(Arc::new(levels));
        } else {
            fields.push(field.as_ref().clone());
            arrays.push(array.clone());
        }
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), arrays).expect("batch");
    let mut writer =
        ArrowWriter::try_new(std::fs::File::create(dir.path("dict.parquet")).expect("create"), schema, None)
            .expect("w");
    writer.write(&batch).expect("write");
    writer.close().expect("close");

    let file = std::fs::File::open(dir.path("dict.parquet")).expect("open");
    let read_back = ParquetRecordBatchReaderBuilder::try_new(file).expect("parquet").schema().clone();
    let industry = read_back.field_with_name("industry").expect("industry");
    assert!(matches!(industry.data_type(), DataType::Dictionary(_, _)), "{industry:?}");
    score(&ScoreOptions::new(dir.path("dict.parquet"), dir.path("out.csv")).ids(["lead_id"])).expect("score");
    assert_scores(&dir.path("out.csv"), &expected(50));
}

/// Regression and clustering write one typed `prediction` column and no probabilities.
#[test]
fn regression_and_clustering_write_typed_predictions() {
    let dir = Dir::new();
    std::fs::write(dir.path("diabetes.csv"), datasets::DIABETES_CSV).expect("write");
    let data = datasets::diabetes();
    let records = Records::Columns(data.features.clone());
    let models = [
        ("linear", Trainer::linear_regression().fit(&data).expect("linear")),
        ("kmeans", Trainer::kmeans(3).fit(&data).expect("kmeans")),
    ];
    for (name, model) in &models {
        let out = dir.path(&format!("{name}.parquet"));
        let options = ScoreOptions::new(dir.path("diabetes.csv"), &out).chunk_rows(100);
        let server = ModelServers::local().serve(model.clone()).expect("serve");
        let summary = score_file(
            server.as_ref(),
            &unregistered_facts(model, name),
            &options,
            &NoOpLineage::default(),
            &mut |_| {},
        )
        .expect("score");
        assert_eq!(summary.columns, ["prediction", "model", "model_version"]);
        let rows = read_rows(&out);
        let want = model.predict(&records).expect("predict");
        assert_eq!(rows.len(), want.len());
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(row["prediction"], want.to_json(i), "row {i} of {name}");
            assert_eq!(row["model_version"], Value::Null, "an unregistered model has no version");
        }
    }
}

#[test]
fn an_empty_input_gives_an_empty_output() {
    let dir = Dir::new();
    std::fs::write(dir.path("in.csv"), lead_csv(0)).expect("write");
    let summary = score(&ScoreOptions::new(dir.path("in.csv"), dir.path("out.csv")).ids(["lead_id"])).expect("empty");
    assert_eq!(summary.rows_scored, 0);
    assert_eq!(
        std::fs::read_to_string(dir.path("out.csv")).expect("read"),
        "lead_id,prediction,prob_no,prob_yes,model,model_version\n"
    );
    let err = score(&ScoreOptions::new(dir.path("in.csv"), dir.path("in.csv"))).expect_err("same file").to_string();
    assert!(err.contains("overwrite"), "{err}");
}

/// Optional ids (a model's own, recorded at training) ride along when the file has them and
/// are left out when it does not; required ids still fail the job when missing.
#[test]
fn optional_ids_are_copied_when_present() {
    let dir = Dir::new();
    std::fs::write(dir.path("in.csv"), lead_csv(20)).expect("write");
    let options = ScoreOptions::new(dir.path("in.csv"), dir.path("out.csv")).optional_ids(["lead_id", "absent"]);
    let summary = score(&options).expect("score");
    assert_eq!(summary.columns, ["lead_id", "prediction", "prob_no", "prob_yes", "model", "model_version"]);
    assert_scores(&dir.path("out.csv"), &expected(20));

    // Given both ways, an id is written once, in the optional list's place.
    let both = options.clone().ids(["industry", "lead_id"]);
    let summary = score(&both).expect("score");
    assert_eq!(summary.columns[..3], ["lead_id", "industry", "prediction"]);

    // A file without the optional id scores without it.
    let csv: String = lead_csv(20).lines().map(|l| l.split(',').skip(1).collect::<Vec<_>>().join(",") + "\n").collect();
    std::fs::write(dir.path("no_ids.csv"), csv).expect("write");
    let summary = score(&ScoreOptions::new(dir.path("no_ids.csv"), dir.path("out2.csv")).optional_ids(["lead_id"]))
        .expect("score");
    assert_eq!(summary.columns, ["prediction", "prob_no", "prob_yes", "model", "model_version"]);
    let err = score(&ScoreOptions::new(dir.path("no_ids.csv"), dir.path("out3.csv")).ids(["lead_id"]))
        .expect_err("a required id is missing");
    assert!(err.to_string().contains("'lead_id'"), "{err}");
}
