//! The runner's contract, one test (or a few) per promise, named after it: how a model is
//! defined and executed, how bad inputs and failing models stay confined to their record,
//! how versions, summaries, drafts and statuses behave, what a store keeps, and the self-test.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::Utc;
use serde_json::{json, Map, Value};
use wharf_runner::{
    open_store, run_all, BoxError, DepRef, ErrorKind, FieldSpec, FieldType, InputSource, MemoryResultStore, ModelSpec,
    Record, ResultStore, Runner, SqliteResultStore, Status, SummarySpec,
};

fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// `{c: a + b}`, failing like Python's `+` on mixed operands, so the self-test has a model
/// that rejects some combinations of synthetic inputs.
fn add(row: &Map<String, Value>) -> Result<Value, BoxError> {
    let (a, b) = (&row["a"], &row["b"]);
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => Ok(json!({ "c": x + y })),
            _ => Ok(json!({ "c": x.as_f64().unwrap_or(f64::NAN) + y.as_f64().unwrap_or(f64::NAN) })),
        },
        (Value::String(x), Value::String(y)) => Ok(json!({ "c": format!("{x}{y}") })),
        _ => Err(format!("unsupported operand type(s) for +: {a} and {b}").into()),
    }
}

fn add_model(name: &str, version: &str) -> ModelSpec {
    ModelSpec::from_fn(name, version, add).field("a", FieldSpec::int()).field("b", FieldSpec::int())
}

/// The fixture record: `data.{test1,test2,test3,testSummary}.'0.0.0' = {a: 1, b: 2}`.
fn fixture_record(id: &str) -> Record {
    let slice = json!({"0.0.0": {"a": 1, "b": 2}});
    Record::new(id, obj(json!({"test1": slice, "test2": slice, "test3": slice, "testSummary": slice})))
}

fn three_models() -> Vec<ModelSpec> {
    ["test1", "test2", "test3"].iter().map(|n| add_model(n, "0.0.0").status(Status::Active)).collect()
}

fn c_of(record: &wharf_runner::RecordResult, name: &str, version: &str) -> Option<Value> {
    record.results.get(name, version).and_then(|r| r.value()).and_then(|v| v.get("c").cloned())
}

// ------------------------------------------------------------------ model definition

#[test]
fn model_definition_reads_back() {
    let model = add_model("test", "0.0.0");
    assert_eq!(model.name, "test");
    assert_eq!(model.version, "0.0.0");
    assert_eq!(model.status, Status::Draft, "the default status is draft");
    let fields: Vec<(&str, FieldType)> = model.fields.iter().map(|(n, s)| (n.as_str(), s.ty)).collect();
    assert_eq!(fields, [("a", FieldType::Int), ("b", FieldType::Int)]);
    assert_eq!(model.clone().status(Status::Active).status, Status::Active);
    // Statuses as written in configuration: draft, active, and production for active.
    assert_eq!("draft".parse::<Status>().unwrap(), Status::Draft);
    assert_eq!("active".parse::<Status>().unwrap(), Status::Active);
    assert_eq!("production".parse::<Status>().unwrap(), Status::Active);
    assert!("retired".parse::<Status>().is_err());
    // The function is callable as given.
    let out = model.model.score_batch(&[&obj(json!({"a": 2, "b": 5}))]);
    assert_eq!(out.into_iter().next().map(|r| r.map_err(|e| e.to_string())), Some(Ok(json!({"c": 7}))));

    let summary = SummarySpec::new("testSummary", "0.0.0", [("test", "0.0.0")], |_| Ok(json!({})));
    assert_eq!(summary.status, Status::Draft);
    assert_eq!(summary.depends_on, vec![DepRef::new("test", "0.0.0")]);
}

#[test]
fn execute_gives_value_and_status() {
    let result = add_model("test", "0.0.0").execute(&obj(json!({"a": 1, "b": 2})));
    assert_eq!(result.status, Status::Draft);
    assert_eq!(result.value(), Some(&obj(json!({"c": 3}))));
    // As stored: the model's output apart from the runner's keys.
    assert_eq!(serde_json::to_value(&result).unwrap(), json!({"status": "draft", "value": {"c": 3}}));
}

#[test]
fn missing_or_mistyped_field_is_an_error_and_the_model_is_not_called() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = {
        let calls = calls.clone();
        ModelSpec::from_fn("test", "0.0.0", move |row| {
            calls.fetch_add(1, Ordering::SeqCst);
            add(row)
        })
        .field("a", FieldSpec::int())
        .field("b", FieldSpec::int().range(0.0, 10.0))
    };

    let missing = counted.execute(&obj(json!({"a": 1})));
    let error = missing.error_ref().expect("a missing field is an error");
    assert_eq!(error.kind, ErrorKind::MissingField);
    assert_eq!(error.at.as_deref(), Some("b"));
    assert!(error.message.contains("'b'"), "the message names the field: {}", error.message);

    let null = counted.execute(&obj(json!({"a": 1, "b": null})));
    assert_eq!(null.error_ref().map(|e| e.kind), Some(ErrorKind::MissingField), "null counts as missing");

    // Presence is not enough: the type is checked too.
    let mistyped = counted.execute(&obj(json!({"a": 1, "b": "2"})));
    let error = mistyped.error_ref().expect("a mistyped field is an error");
    assert_eq!(error.kind, ErrorKind::InvalidField);
    assert_eq!(error.at.as_deref(), Some("b"));
    assert!(error.message.contains("expected int, found a string"), "{}", error.message);

    let fractional = counted.execute(&obj(json!({"a": 1.5, "b": 2})));
    assert_eq!(fractional.error_ref().and_then(|e| e.at.as_deref()), Some("a"), "1.5 is not an int");

    let out_of_range = counted.execute(&obj(json!({"a": 1, "b": 11})));
    let error = out_of_range.error_ref().expect("out of range is an error");
    assert!(error.message.contains("above the maximum 10"), "{}", error.message);

    assert_eq!(calls.load(Ordering::SeqCst), 0, "the function is never called on a bad input");
    assert!(counted.execute(&obj(json!({"a": 1, "b": 2.0}))).is_ok(), "2.0 is a whole number");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn failing_function_or_non_map_output_is_an_error_and_the_batch_goes_on() {
    let failing = ModelSpec::from_fn("fails", "0.0.0", |_| Err("Hi! I am an error message".into()));
    let error = failing.execute(&Map::new()).into_result().expect_err("an error");
    assert_eq!(error.kind, ErrorKind::ModelFailed);
    assert_eq!(error.message, "Hi! I am an error message");

    let number = ModelSpec::from_fn("number", "0.0.0", |_| Ok(json!(3)));
    let error = number.execute(&Map::new()).into_result().expect_err("a number is not a map");
    assert_eq!(error.kind, ErrorKind::InvalidOutput);
    assert!(error.message.contains("a number"), "{}", error.message);

    let panics = ModelSpec::from_fn("panics", "0.0.0", |_| panic!("boom"));
    let error = panics.execute(&Map::new()).into_result().expect_err("a panic is an error");
    assert_eq!(error.kind, ErrorKind::ModelFailed);
    assert!(error.message.contains("boom"), "{}", error.message);

    // In a batch: the failing models fail for every record, the good one succeeds for
    // every record, and nothing aborts.
    let models: Vec<ModelSpec> = vec![
        failing.input(InputSource::Shared).status(Status::Active),
        add_model("test1", "0.0.0").status(Status::Active),
        number.input(InputSource::Shared).status(Status::Active),
        panics.input(InputSource::Shared).status(Status::Active),
    ];
    let records = vec![fixture_record("1"), fixture_record("2")];
    let out = run_all(&records, &models, &[], None).expect("the batch runs");
    assert_eq!(out.len(), 2);
    for record in &out {
        assert_eq!(c_of(record, "test1", "0.0.0"), Some(json!(3)));
        assert_eq!(record.results.error_count(), 3, "three failing models, one error each");
    }
}

// ------------------------------------------------------------------ many models, many records

#[test]
fn two_versions_both_kept() {
    let v1 = add_model("test", "0.0.1").status(Status::Active);
    let v2 = ModelSpec::from_fn("test", "0.0.2", |row| {
        Ok(json!({"c": row["a"].as_i64().unwrap_or(0) * row["b"].as_i64().unwrap_or(0)}))
    })
    .field("a", FieldSpec::int())
    .field("b", FieldSpec::int())
    .status(Status::Active);
    // Each version reads its own slice.
    let record = Record::new("1", obj(json!({"test": {"0.0.1": {"a": 2, "b": 3}, "0.0.2": {"a": 4, "b": 5}}})));
    let out = run_all(&[record], &[v1, v2], &[], None).unwrap();
    assert_eq!(c_of(&out[0], "test", "0.0.1"), Some(json!(5)), "version 0.0.1: 2 + 3");
    assert_eq!(c_of(&out[0], "test", "0.0.2"), Some(json!(20)), "version 0.0.2: 4 * 5");
    assert_eq!(out[0].results.versions("test").map(|v| v.len()), Some(2), "both versions kept");
}

#[test]
fn the_same_name_and_version_twice_is_refused() {
    let err = run_all(&[], &[add_model("test", "1"), add_model("test", "1")], &[], None).unwrap_err();
    assert!(err.to_string().contains("test@1 is given twice"), "{err}");
}

#[test]
fn missing_slice_is_an_error_entry_for_that_record_only() {
    let records = vec![fixture_record("good"), Record::new("empty", Map::new()), fixture_record("good2")];
    let out = run_all(&records, &three_models(), &[], None).expect("a bad record never aborts the batch");
    assert_eq!(out.len(), 3);
    for name in ["test1", "test2", "test3"] {
        let error = out[1].results.get(name, "0.0.0").and_then(|r| r.error_ref()).expect("an error entry");
        assert_eq!(error.kind, ErrorKind::MissingInput);
        assert_eq!(error.at.as_deref(), Some(format!("data.{name}.0.0.0").as_str()));
        assert_eq!(c_of(&out[0], name, "0.0.0"), Some(json!(3)));
        assert_eq!(c_of(&out[2], name, "0.0.0"), Some(json!(3)));
    }
    // A slice that is not an object is refused the same way, not read as empty.
    let odd = Record::new("odd", obj(json!({"test1": {"0.0.0": [1, 2]}})));
    let out = run_all(&[odd], &three_models()[..1], &[], None).unwrap();
    let error = out[0].results.get("test1", "0.0.0").and_then(|r| r.error_ref()).unwrap();
    assert!(error.message.contains("an array"), "{}", error.message);
}

#[test]
fn three_models_over_three_records_in_input_order() {
    let records: Vec<Record> = ["c", "a", "b"].iter().map(|id| fixture_record(id)).collect();
    let out = run_all(&records, &three_models(), &[], None).unwrap();
    assert_eq!(out.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["c", "a", "b"], "input order");
    for record in &out {
        assert_eq!(record.results.len(), 3);
        for name in ["test1", "test2", "test3"] {
            assert_eq!(c_of(record, name, "0.0.0"), Some(json!(3)));
        }
    }
    // However the work is spread over threads, the results are the same.
    let many: Vec<Record> = (0..101).map(|i| fixture_record(&i.to_string())).collect();
    let one = Runner::new(three_models(), vec![]).unwrap().threads(1).run(&many, None).unwrap();
    let four = Runner::new(three_models(), vec![]).unwrap().threads(4).run(&many, None).unwrap();
    let strip = |v: Vec<wharf_runner::RecordResult>| v.into_iter().map(|r| (r.id, r.results)).collect::<Vec<_>>();
    assert_eq!(strip(one), strip(four));
}

// ------------------------------------------------------------------ summaries

fn sum_of_c() -> SummarySpec {
    let deps = [("test1", "0.0.0"), ("test2", "0.0.0"), ("test3", "0.0.0")];
    SummarySpec::new("testSummary", "0.0.0", deps, |input| {
        let d: i64 = input.dependencies().filter_map(|(_, v)| v["c"].as_i64()).sum();
        Ok(json!({ "d": d }))
    })
    .status(Status::Active)
}

#[test]
fn summaries_run_after_every_model_and_see_their_results() {
    let plus_five = SummarySpec::new("plusFive", "0.0.0", [("test1", "0.0.0")], |input| {
        let c = input.value("test1", "0.0.0").and_then(|v| v["c"].as_i64()).ok_or("no c")?;
        Ok(json!({ "d": c + 5 }))
    })
    .status(Status::Active);
    // A later summary may read an earlier one.
    let chained = SummarySpec::new("chained", "1", [("testSummary", "0.0.0")], |input| {
        Ok(json!({ "e": input.value("testSummary", "0.0.0").and_then(|v| v["d"].as_i64()).ok_or("no d")? * 10 }))
    })
    .status(Status::Active);
    // Declared first, it still runs after every model: it sees all three results.
    let sees = SummarySpec::new("sees", "1", [("test3", "0.0.0")], |input| {
        let names: Vec<&str> = input.results().iter().map(|(name, _, _)| name).collect();
        Ok(json!({ "names": names }))
    })
    .status(Status::Active);
    let records = [fixture_record("1"), fixture_record("2"), fixture_record("3")];
    let out = run_all(&records, &three_models(), &[sees, sum_of_c(), plus_five, chained], None).unwrap();
    assert_eq!(out.len(), 3);
    for record in &out {
        let get = |name: &str, version: &str, key: &str| {
            record.results.get(name, version).and_then(|r| r.value()).and_then(|v| v.get(key).cloned())
        };
        assert_eq!(get("testSummary", "0.0.0", "d"), Some(json!(9)), "3 + 3 + 3");
        assert_eq!(get("plusFive", "0.0.0", "d"), Some(json!(8)), "3 + 5");
        assert_eq!(get("chained", "1", "e"), Some(json!(90)));
        assert_eq!(get("sees", "1", "names"), Some(json!(["test1", "test2", "test3"])));
    }
}

#[test]
fn summary_dependencies_are_checked_per_record() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counting = |name: &str, deps: Vec<(&str, &str)>| {
        let calls = calls.clone();
        let deps: Vec<DepRef> = deps.into_iter().map(DepRef::from).collect();
        SummarySpec::new(name, "0.0.0", deps, move |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(json!({"ran": true}))
        })
        .status(Status::Active)
    };
    let failing = ModelSpec::from_fn("failing", "0.0.0", |_| Err("no luck".into()))
        .input(InputSource::Shared)
        .status(Status::Active);
    let draft = add_model("draftModel", "0.0.0");
    let mut models = three_models();
    models.push(failing);
    models.push(draft);
    let summaries = vec![
        counting("missingName", vec![("test1", "0.0.0"), ("missing", "0.0.0")]),
        counting("wrongVersion", vec![("test1", "0.0.1")]),
        counting("errored", vec![("failing", "0.0.0")]),
        counting("skippedDraft", vec![("draftModel", "0.0.0")]),
        sum_of_c(),
    ];
    let out = run_all(&[fixture_record("1"), fixture_record("2")], &models, &summaries, None).expect("never aborts");
    for record in &out {
        let error = |name: &str| record.results.get(name, "0.0.0").and_then(|r| r.error_ref()).cloned().unwrap();
        let missing = error("missingName");
        assert_eq!(missing.kind, ErrorKind::DependencyMissing);
        assert_eq!(missing.at.as_deref(), Some("missing@0.0.0"));
        assert!(missing.message.contains("'missing'") && missing.message.contains("'0.0.0'"), "{}", missing.message);
        let wrong = error("wrongVersion");
        assert_eq!(wrong.kind, ErrorKind::DependencyMissing);
        assert_eq!(wrong.at.as_deref(), Some("test1@0.0.1"), "a missing version is named with its model");
        // A dependency whose result is an error is present: it is not "missing", but the
        // summary cannot be computed from it.
        let errored = error("errored");
        assert_eq!(errored.kind, ErrorKind::DependencyFailed);
        assert!(errored.message.contains("no luck"), "{}", errored.message);
        let skipped = error("skippedDraft");
        assert!(skipped.message.contains("draft"), "{}", skipped.message);
        assert_eq!(
            record.results.get("testSummary", "0.0.0").and_then(|r| r.value()).map(|v| v["d"].clone()),
            Some(json!(9)),
            "the other summaries still run"
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0, "a summary with a missing or failed dependency is not called");
}

// ------------------------------------------------------------------ storage

#[test]
fn one_stored_document_per_record_without_input_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.db");
    let store = SqliteResultStore::open(&path).unwrap();
    let mut record = fixture_record("7");
    record.data.insert("secret_input".into(), json!("do-not-store-me"));
    let before = Utc::now();
    run_all(&[record, fixture_record("8")], &three_models(), &[sum_of_c()], Some(&store)).unwrap();
    let after = Utc::now();
    assert_eq!(store.count().unwrap().results, 2, "one document per record");
    let stored = store.current("7").unwrap().expect("record 7 stored");
    assert_eq!(stored.id, "7");
    assert!(stored.timestamp >= before - chrono::Duration::milliseconds(1) && stored.timestamp <= after);
    for name in ["test1", "test2", "test3", "testSummary"] {
        assert!(stored.results.get(name, "0.0.0").is_some(), "{name} stored");
    }
    // The raw rows hold no input data.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let raw: Vec<String> = conn
        .prepare("SELECT results FROM wharf_results")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(raw.len(), 2);
    assert!(raw.iter().all(|doc| !doc.contains("do-not-store-me") && !doc.contains("\"a\"")), "{raw:?}");
}

#[test]
fn history_keeps_every_run_and_the_newest_is_current() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.db");
    let store = SqliteResultStore::open(&path).unwrap();
    let runs = 3;
    for run in 0..runs {
        let model = ModelSpec::from_fn("test", "0.0.0", move |_| Ok(json!({ "run": run })))
            .input(InputSource::Shared)
            .status(Status::Active);
        run_all(&[fixture_record("7"), fixture_record("8")], &[model], &[], Some(&store)).unwrap();
    }
    let run_of =
        |r: &wharf_runner::StoredResult| r.results.get("test", "0.0.0").and_then(|r| r.value()).unwrap()["run"].clone();
    let history = store.history("7").unwrap();
    assert_eq!(history.len(), runs, "after k runs, k results");
    // The rank is the position in the history: 0 for the newest.
    let by_rank: Vec<Value> = history.iter().map(run_of).collect();
    assert_eq!(by_rank, [json!(2), json!(1), json!(0)]);
    assert_eq!(run_of(&store.current("7").unwrap().unwrap()), json!(2), "current == rank 0 == newest");
    // The same numbers from plain SQL, through the history view.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let ranks: Vec<(i64, String)> = conn
        .prepare("SELECT current_rank, results FROM wharf_results_history WHERE record_id = '7' ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(ranks.iter().map(|(k, _)| *k).collect::<Vec<_>>(), [2, 1, 0], "oldest has current_rank 2");
    let current_view: i64 = conn.query_row("SELECT COUNT(*) FROM wharf_results_current", [], |r| r.get(0)).unwrap();
    assert_eq!(current_view, 2, "the current view has one row per id");
}

#[test]
fn status_at_run_time_is_stored_with_each_result() {
    let store = MemoryResultStore::new();
    let models = vec![
        add_model("test1", "0.0.0").status(Status::Active),
        add_model("test2", "0.0.0"),
        add_model("test3", "0.0.0").status(Status::Active),
    ];
    let summary = sum_of_c().status(Status::Draft);
    let runner = Runner::new(models.clone(), vec![summary]).unwrap().include_drafts(true);
    runner.run(&[fixture_record("1")], Some(&store)).unwrap();
    let status = |r: &wharf_runner::StoredResult, name: &str| r.results.get(name, "0.0.0").map(|r| r.status);
    let first = store.current("1").unwrap().unwrap();
    assert_eq!(status(&first, "test1"), Some(Status::Active));
    assert_eq!(status(&first, "test2"), Some(Status::Draft));
    assert_eq!(status(&first, "test3"), Some(Status::Active));
    assert_eq!(status(&first, "testSummary"), Some(Status::Draft));
    // Promoted: the new result says active, the old one still says draft.
    let promoted: Vec<ModelSpec> = models.into_iter().map(|m| m.status(Status::Active)).collect();
    Runner::new(promoted, vec![]).unwrap().run(&[fixture_record("1")], Some(&store)).unwrap();
    let history = store.history("1").unwrap();
    assert_eq!(status(&history[0], "test2"), Some(Status::Active));
    assert_eq!(status(&history[1], "test2"), Some(Status::Draft));
}

#[test]
fn drafts_are_skipped_unless_included() {
    let models = vec![add_model("test1", "0.0.0").status(Status::Active), add_model("test2", "0.0.0")];
    let out = run_all(&[fixture_record("1")], &models, &[], None).unwrap();
    assert!(out[0].results.get("test2", "0.0.0").is_none(), "a draft is skipped by default");
    assert!(out[0].results.get("test1", "0.0.0").is_some());
    let runner = Runner::new(models, vec![]).unwrap();
    assert_eq!(runner.skipped(), vec![DepRef::new("test2", "0.0.0")]);
    let out = runner.include_drafts(true).run(&[fixture_record("1")], None).unwrap();
    assert_eq!(c_of(&out[0], "test2", "0.0.0"), Some(json!(3)), "included on request");
}

// ------------------------------------------------------------------ self-test, stores

#[test]
fn self_test_on_synthetic_inputs() {
    let single =
        |ty: FieldSpec| ModelSpec::from_fn("t", "1", |row| Ok(json!({ "c": row["a"].clone() }))).field("a", ty);
    let pair = |a: FieldSpec, b: FieldSpec| ModelSpec::from_fn("t", "1", add).field("a", a).field("b", b);
    assert_eq!(single(FieldSpec::int()).self_test().unwrap(), obj(json!({"c": 1})), "int single → 1");
    assert_eq!(pair(FieldSpec::int(), FieldSpec::int()).self_test().unwrap(), obj(json!({"c": 2})), "int multiple");
    assert_eq!(single(FieldSpec::str()).self_test().unwrap(), obj(json!({"c": "lorem ipsum"})), "str single");
    assert_eq!(
        pair(FieldSpec::str(), FieldSpec::str()).self_test().unwrap(),
        obj(json!({"c": "lorem ipsumlorem ipsum"})),
        "str multiple"
    );
    assert_eq!(single(FieldSpec::bool()).self_test().unwrap(), obj(json!({"c": true})));
    assert_eq!(single(FieldSpec::float()).self_test().unwrap(), obj(json!({"c": 1.2})));
    let int_str = pair(FieldSpec::int(), FieldSpec::str()).self_test().unwrap_err();
    assert_eq!(int_str.kind, ErrorKind::ModelFailed, "int + str fails: {int_str}");
    let str_int = pair(FieldSpec::str(), FieldSpec::int()).self_test().unwrap_err();
    assert_eq!(str_int.kind, ErrorKind::ModelFailed, "str + int fails: {str_int}");
    // Synthetic values respect declared ranges and levels, so a valid model passes.
    let ranged = single(FieldSpec::int().range(5.0, 9.0)).self_test().unwrap();
    assert_eq!(ranged, obj(json!({"c": 5})));
    let levelled = single(FieldSpec::str().levels(["web", "email"])).self_test().unwrap();
    assert_eq!(levelled, obj(json!({"c": "web"})));
}

#[test]
fn the_store_is_an_explicit_option_and_any_adapter_works() {
    // No store: results come back, nothing is written anywhere.
    let out = run_all(&[fixture_record("1")], &three_models(), &[], None).unwrap();
    assert_eq!(out.len(), 1);
    // An empty store is still a configured store: whether to store is decided by passing one,
    // never by asking the store whether it holds anything.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("r.db").display());
    let stores: Vec<Box<dyn ResultStore>> = vec![
        Box::new(MemoryResultStore::new()),
        Box::new(SqliteResultStore::in_memory().unwrap()),
        open_store(&url).unwrap(),
    ];
    for store in &stores {
        assert_eq!(store.count().unwrap().results, 0, "{} starts empty", store.name());
        run_all(&[fixture_record("1"), fixture_record("2")], &three_models(), &[], Some(store.as_ref())).unwrap();
        assert_eq!(store.count().unwrap().records, 2, "{} got the batch", store.name());
        assert_eq!(c_of_stored(store.as_ref(), "2"), Some(json!(3)));
    }
}

fn c_of_stored(store: &dyn ResultStore, id: &str) -> Option<Value> {
    let stored = store.current(id).ok()??;
    stored.results.get("test1", "0.0.0").and_then(|r| r.value()).and_then(|v| v.get("c").cloned())
}

#[test]
fn store_urls_are_checked() {
    let err = open_store("mysql://user:hunter2@db/x").err().expect("unknown scheme");
    let text = err.to_string();
    assert!(text.contains("'mysql'") && !text.contains("hunter2"), "names the scheme, hides the rest: {text}");
    assert!(open_store("sqlite://").is_err());
    #[cfg(not(feature = "postgres"))]
    assert!(open_store("postgres://localhost/x").err().unwrap().to_string().contains("feature 'postgres'"));
}

#[test]
fn a_failing_store_fails_the_call() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.db");
    let store = SqliteResultStore::open(&path).unwrap();
    // The table disappears under the store (another process dropped it): the write fails
    // and the call says so.
    rusqlite::Connection::open(&path).unwrap().execute_batch("DROP TABLE wharf_results").unwrap();
    let err = run_all(&[fixture_record("1")], &three_models(), &[], Some(&store)).unwrap_err();
    assert!(matches!(err, wharf_core::WharfError::Backend { .. }), "{err:?}");
    assert!(err.to_string().contains("sqlite"), "{err}");
}
