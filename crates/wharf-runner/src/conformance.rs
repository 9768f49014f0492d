//! The [`ResultStore`] conformance suite: one function per clause of the contract, taking
//! `&dyn ResultStore`.
//!
//! Every store runs it: the memory and SQLite stores in this crate's tests, the PostgreSQL
//! store against a real server. The functions use record ids of their own (a fresh prefix
//! per call), so they can share a store with other data; only the `count` clauses need no
//! other writer at the same time. They panic
//! with a message naming the clause, like any test assertion. [`run_result_store_suite`]
//! runs them all.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use wharf_core::WharfError;

use crate::ident::Status;
use crate::results::{ModelResult, RecordResult, Results, RunError};
use crate::store::{ResultStore, MAX_ID_BYTES};
use crate::ErrorKind;

/// A prefix no other call (in this process or an earlier run on the same store) uses.
pub fn unique_prefix(label: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("conf-{label}-{:x}-{}-{n}-", nanos, std::process::id())
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("fixture is not an object: {other}"),
    }
}

/// A timestamp `micros` microseconds after a fixed instant.
pub fn at(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(1_764_000_000_000_000 + micros)
        .unwrap_or_else(|| panic!("timestamp {micros} out of range"))
}

/// A record result exercising what a store must carry: two versions of one model, an
/// active and a draft status, an error entry, unicode, nested values, large and fractional
/// numbers. `n` varies the values.
pub fn sample(id: &str, n: i64, timestamp: DateTime<Utc>) -> RecordResult {
    let mut results = Results::new();
    results.insert("score", "0.0.1", ModelResult::ok(Status::Active, object(json!({"c": n, "p": 0.1 + 0.2}))));
    results.insert(
        "score",
        "0.0.2",
        ModelResult::ok(
            Status::Draft,
            object(json!({"c": n * 2, "label": "Größe ✓ \"quoted\"", "nested": {"list": [1, 2.5, null, true]}})),
        ),
    );
    results.insert("big", "1", ModelResult::ok(Status::Active, object(json!({"u": u64::MAX, "i": i64::MIN}))));
    results.insert(
        "broken",
        "1",
        ModelResult::error(
            Status::Active,
            RunError::new(ErrorKind::MissingField, Some("b".into()), "expected input field 'b' not found"),
        ),
    );
    RecordResult { id: id.to_string(), results, timestamp }
}

/// What is read back equals what was written: id, results (values, errors, statuses) and
/// the timestamp to the microsecond. Unknown ids have no current result and no history.
pub fn store_round_trip(store: &dyn ResultStore) {
    let p = unique_prefix("roundtrip");
    let batch: Vec<RecordResult> = (0..3).map(|i| sample(&format!("{p}{i}"), i, at(i))).collect();
    store.put_batch(&batch).unwrap_or_else(|e| panic!("put_batch: {e}"));
    for record in &batch {
        let current = store.current(&record.id).unwrap_or_else(|e| panic!("current: {e}"));
        let current = current.unwrap_or_else(|| panic!("a stored id ({}) must have a current result", record.id));
        assert_eq!(current.id, record.id, "current result carries the record id");
        assert_eq!(current.results, record.results, "results read back equal results written");
        assert_eq!(current.timestamp, record.timestamp, "timestamp kept to the microsecond");
    }
    let unknown = format!("{p}unknown");
    assert!(store.current(&unknown).expect("current").is_none(), "an unknown id has no current result");
    assert!(store.history(&unknown).expect("history").is_empty(), "an unknown id has no history");
}

/// After k writes of one id, its history has k entries, newest first (strictly decreasing
/// sequence numbers), and the current result is the first of them: the SQL stores' view
/// numbers results by this position (`current_rank`, 0 = newest), so the order is part of
/// the contract.
pub fn store_history_newest_first(store: &dyn ResultStore) {
    let id = format!("{}x", unique_prefix("history"));
    let k = 4;
    for run in 0..k {
        store.put_batch(&[sample(&id, run, at(run))]).unwrap_or_else(|e| panic!("put_batch run {run}: {e}"));
        let history = store.history(&id).expect("history");
        assert_eq!(history.len() as i64, run + 1, "after {} writes the history has {} entries", run + 1, run + 1);
    }
    let history = store.history(&id).expect("history");
    for pair in history.windows(2) {
        assert!(pair[0].seq > pair[1].seq, "history is newest first (seq {} before {})", pair[0].seq, pair[1].seq);
    }
    for (current_rank, entry) in history.iter().enumerate() {
        let written = k - 1 - current_rank as i64;
        assert_eq!(entry.results, sample(&id, written, at(written)).results, "rank {current_rank} is run {written}");
    }
    let current = store.current(&id).expect("current").expect("a current result");
    assert_eq!(current, history[0], "the current result is the newest in the history");
}

/// When one id appears twice in a batch, the later one is current.
pub fn store_later_in_batch_is_current(store: &dyn ResultStore) {
    let id = format!("{}x", unique_prefix("twice"));
    store.put_batch(&[sample(&id, 1, at(1)), sample(&id, 2, at(1))]).expect("put_batch");
    let current = store.current(&id).expect("current").expect("a current result");
    assert_eq!(current.results, sample(&id, 2, at(1)).results, "the later record of a batch is current");
    assert_eq!(store.history(&id).expect("history").len(), 2, "both are kept");
}

/// An empty batch stores nothing and succeeds; a batch with an empty or oversized id fails
/// as a whole with `InvalidInput`, storing none of its records.
pub fn store_rejects_bad_batches_whole(store: &dyn ResultStore) {
    let before = store.count().expect("count");
    store.put_batch(&[]).expect("an empty batch is a no-op");
    assert_eq!(store.count().expect("count"), before, "an empty batch stores nothing");
    let p = unique_prefix("atomic");
    for bad in [String::new(), "x".repeat(MAX_ID_BYTES + 1)] {
        let batch = vec![sample(&format!("{p}ok"), 1, at(1)), sample(&bad, 2, at(2))];
        match store.put_batch(&batch) {
            Err(WharfError::InvalidInput { path, .. }) => {
                assert_eq!(path, "batch[1].id", "the error names the bad record")
            }
            other => panic!("a bad id must fail the batch with InvalidInput, got {other:?}"),
        }
        assert!(store.current(&format!("{p}ok")).expect("current").is_none(), "a failed batch stores nothing");
    }
    assert_eq!(store.count().expect("count"), before, "failed batches store nothing");
}

/// `count` counts distinct ids and stored results; `ids` lists ids in ascending order,
/// after a given id, at most `limit`.
pub fn store_count_and_ids(store: &dyn ResultStore) {
    let p = unique_prefix("ids");
    let before = store.count().expect("count");
    // Written out of order, one id twice.
    let ids = ["b", "a", "c", "a"].map(|s| format!("{p}{s}"));
    let batch: Vec<RecordResult> = ids.iter().enumerate().map(|(i, id)| sample(id, i as i64, at(0))).collect();
    store.put_batch(&batch).expect("put_batch");
    let after = store.count().expect("count");
    assert_eq!(after.records, before.records + 3, "count.records counts distinct ids");
    assert_eq!(after.results, before.results + 4, "count.results counts every stored result");
    let listed = store.ids(Some(&p), 3).expect("ids");
    assert_eq!(listed, ["a", "b", "c"].map(|s| format!("{p}{s}")), "ids are distinct and ascending after `after`");
    let page = store.ids(Some(&format!("{p}a")), 1).expect("ids");
    assert_eq!(page, [format!("{p}b")], "paging: after the last id seen, at most `limit`");
}

/// Concurrent writers all succeed and every batch stays whole.
pub fn store_concurrent_writers(store: &dyn ResultStore) {
    let p = unique_prefix("concurrent");
    let (threads, batches, size) = (4usize, 5i64, 20i64);
    std::thread::scope(|scope| {
        for t in 0..threads {
            let p = &p;
            scope.spawn(move || {
                for b in 0..batches {
                    let batch: Vec<RecordResult> =
                        (0..size).map(|i| sample(&format!("{p}{t}-{b}-{i}"), i, at(b))).collect();
                    store.put_batch(&batch).unwrap_or_else(|e| panic!("writer {t} batch {b}: {e}"));
                }
            });
        }
    });
    let stored: Vec<String> =
        store.ids(Some(&p), 10_000).expect("ids").into_iter().take_while(|id| id.starts_with(&p)).collect();
    assert_eq!(stored.len(), threads * (batches * size) as usize, "every record of every writer is stored");
}

/// Runs every function above.
pub fn run_result_store_suite(store: &dyn ResultStore) {
    store_round_trip(store);
    store_history_newest_first(store);
    store_later_in_batch_is_current(store);
    store_rejects_bad_batches_whole(store);
    store_count_and_ids(store);
    store_concurrent_writers(store);
}
