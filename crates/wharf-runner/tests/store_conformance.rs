//! Every result store passes the conformance suite: the memory and SQLite stores always,
//! the PostgreSQL store against a real server (`WHARF_TEST_POSTGRES_URL`, which
//! `cargo xtask test` provides).

mod common;

use wharf_runner::conformance;
use wharf_runner::{MemoryResultStore, ResultStore, SqliteResultStore};

#[test]
fn memory_store_conforms() {
    conformance::run_result_store_suite(&MemoryResultStore::new());
}

#[test]
fn sqlite_file_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    conformance::run_result_store_suite(&SqliteResultStore::open(dir.path().join("results.db")).unwrap());
}

#[test]
fn sqlite_in_memory_store_conforms() {
    conformance::run_result_store_suite(&SqliteResultStore::in_memory().unwrap());
}

#[test]
fn sqlite_store_reopened_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("results.db");
    let written = conformance::sample("r1", 7, conformance::at(42));
    {
        let store = SqliteResultStore::open_table(&path, "lead_results").unwrap();
        store.put_batch(std::slice::from_ref(&written)).unwrap();
    }
    let store = SqliteResultStore::open_table(&path, "lead_results").unwrap();
    let read = store.current("r1").unwrap().unwrap();
    assert_eq!((read.id, read.results, read.timestamp), (written.id, written.results, written.timestamp));
    assert!(SqliteResultStore::open_table(&path, "Robert'); DROP TABLE x;--").is_err(), "table names are checked");
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_store_conforms() {
    let Some(url) = common::postgres_url() else { return };
    let table = common::unique_table("conformance");
    let store = wharf_runner::PostgresResultStore::connect_table(&url, &table).unwrap();
    conformance::run_result_store_suite(&store);
    // A second connection to the same table (another process, say) sees the same data.
    let again = wharf_runner::PostgresResultStore::connect_table(&url, &table).unwrap();
    assert_eq!(again.count().unwrap(), store.count().unwrap());
    common::drop_table(&url, &table);
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_history_view_ranks_newest_first() {
    let Some(url) = common::postgres_url() else { return };
    let table = common::unique_table("history");
    let store = wharf_runner::PostgresResultStore::connect_table(&url, &table).unwrap();
    for run in 0..3 {
        store.put_batch(&[conformance::sample("7", run, conformance::at(run))]).unwrap();
    }
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let rows = client
        .query(&format!("SELECT current_rank FROM {table}_history WHERE record_id = '7' ORDER BY seq"), &[])
        .unwrap();
    let ranks: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(ranks, [2, 1, 0], "current_rank: 0 for the newest");
    let current: i64 = client.query_one(&format!("SELECT COUNT(*) FROM {table}_current"), &[]).unwrap().get(0);
    assert_eq!(current, 1);
    drop(client);
    common::drop_table(&url, &table);
}

#[test]
fn store_urls_choose_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let store = wharf_runner::open_store(&format!("sqlite://{}?table=lead_scores", path.display())).unwrap();
    store.put_batch(&[conformance::sample("r1", 1, conformance::at(1))]).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let rows: i64 = conn.query_row("SELECT COUNT(*) FROM lead_scores", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 1, "the results went to the table the URL names");
    let default: i64 =
        conn.query_row("SELECT COUNT(*) FROM sqlite_master WHERE name = 'wharf_results'", [], |r| r.get(0)).unwrap();
    assert_eq!(default, 0, "and nowhere else");
    let err = wharf_runner::open_store("sqlite::memory:?table=x;drop").err().expect("a bad table name");
    assert!(err.to_string().contains("not a valid table name"), "{err}");
}
