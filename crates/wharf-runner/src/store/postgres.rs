//! Results in PostgreSQL, for many writers and readers on a shared server.

use std::sync::{Mutex, MutexGuard};

use postgres::{Client, NoTls};
use serde_json::Value;
use wharf_core::WharfError;

use super::{check_batch, check_table, timestamp_of, ResultStore, StoreCount, StoredResult, DEFAULT_TABLE};
use crate::results::{RecordResult, Results};

const STORE: &str = "postgres";

/// Rows per INSERT statement; a batch larger than this is several statements in the same
/// transaction.
const ROWS_PER_STATEMENT: usize = 5_000;

fn backend(message: impl Into<String>, e: postgres::Error) -> WharfError {
    WharfError::backend(STORE, message, Some(Box::new(e)))
}

/// Results in a PostgreSQL table: `seq` (an identity column), `record_id`, `ts_micros` and
/// `results` as `jsonb`, so results can be queried in SQL
/// (`results -> 'lead' -> '3' -> 'value' ->> 'prediction'`).
///
/// Each batch is one transaction; if the process dies half-way the server rolls it back
/// when the connection drops. The table, an index on `(record_id, seq)` and the views
/// `<table>_current` and `<table>_history` (with `current_rank`) are created on
/// connect, under an advisory lock so processes starting together do not collide.
///
/// Connects without TLS (`NoTls`): use it on loopback, a private network or through a
/// TLS-terminating proxy. Strings holding the NUL character cannot be stored (`jsonb`
/// refuses them); such a batch fails as a whole. If the connection is lost, the next call
/// reconnects.
pub struct PostgresResultStore {
    client: Mutex<Option<Client>>,
    /// The connection URL; may hold a password, so it is never shown.
    url: String,
    table: String,
}

impl std::fmt::Debug for PostgresResultStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresResultStore").field("table", &self.table).finish_non_exhaustive()
    }
}

impl PostgresResultStore {
    /// Connects to `url` (`postgres://user:password@host:port/db`) and uses the table
    /// [`DEFAULT_TABLE`].
    pub fn connect(url: &str) -> Result<Self, WharfError> {
        Self::connect_table(url, DEFAULT_TABLE)
    }

    /// Connects to `url` and keeps the results in `table` (created if missing).
    pub fn connect_table(url: &str, table: &str) -> Result<Self, WharfError> {
        check_table(table)?;
        let store = PostgresResultStore { client: Mutex::new(None), url: url.to_string(), table: table.to_string() };
        store.with_client(|client| {
            let mut tx = client.transaction().map_err(|e| backend("cannot begin a transaction", e))?;
            tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&format!("wharf-runner:{table}")])
                .map_err(|e| backend("cannot take the schema lock", e))?;
            tx.batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {table} (
                    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    record_id TEXT NOT NULL,
                    ts_micros BIGINT NOT NULL,
                    results JSONB NOT NULL
                );
                CREATE INDEX IF NOT EXISTS {table}_by_record ON {table} (record_id, seq);
                CREATE OR REPLACE VIEW {table}_current AS
                    SELECT DISTINCT ON (record_id) * FROM {table} ORDER BY record_id, seq DESC;
                CREATE OR REPLACE VIEW {table}_history AS
                    SELECT r.*, ROW_NUMBER() OVER (PARTITION BY record_id ORDER BY seq DESC) - 1 AS current_rank
                    FROM {table} r;"
            ))
            .map_err(|e| backend(format!("cannot create table {table}"), e))?;
            tx.commit().map_err(|e| backend("cannot commit the schema", e))
        })?;
        Ok(store)
    }

    /// The table the results are in.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn lock(&self) -> MutexGuard<'_, Option<Client>> {
        // A `Transaction` guard dropped by a panic rolls back, so a poisoned client holds no
        // half-written batch.
        self.client.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` with a live connection, connecting (again) when there is none.
    fn with_client<T>(&self, f: impl FnOnce(&mut Client) -> Result<T, WharfError>) -> Result<T, WharfError> {
        let mut slot = self.lock();
        if slot.as_ref().is_none_or(Client::is_closed) {
            let client = Client::connect(&self.url, NoTls).map_err(|e| backend("cannot connect", e))?;
            *slot = Some(client);
        }
        match slot.as_mut() {
            Some(client) => f(client),
            None => Err(WharfError::backend(STORE, "no connection", None)),
        }
    }

    fn select(&self, id: &str, limit: Option<i64>) -> Result<Vec<StoredResult>, WharfError> {
        let sql = format!(
            "SELECT seq, record_id, ts_micros, results FROM {} WHERE record_id = $1 ORDER BY seq DESC LIMIT $2",
            self.table
        );
        let rows = self.with_client(|c| {
            c.query(&sql, &[&id, &limit]).map_err(|e| backend(format!("cannot read the results of '{id}'"), e))
        })?;
        rows.into_iter()
            .map(|row| {
                let seq: i64 = row.try_get(0).map_err(|e| backend("cannot read seq", e))?;
                let what = format!("{} row seq={seq}", self.table);
                let ts: i64 = row.try_get(2).map_err(|e| backend(format!("{what}: ts_micros"), e))?;
                let doc: Value = row.try_get(3).map_err(|e| backend(format!("{what}: results"), e))?;
                Ok(StoredResult {
                    seq,
                    id: row.try_get(1).map_err(|e| backend(format!("{what}: record_id"), e))?,
                    timestamp: timestamp_of(ts, &what)?,
                    results: Results::from_json(doc, &what)?,
                })
            })
            .collect()
    }
}

impl ResultStore for PostgresResultStore {
    fn name(&self) -> &str {
        STORE
    }

    fn put_batch(&self, batch: &[RecordResult]) -> Result<(), WharfError> {
        check_batch(batch)?;
        if batch.is_empty() {
            return Ok(());
        }
        // Rows go in as three arrays unnested in order (WITH ORDINALITY), so the identity
        // column numbers them in batch order and the statement count stays small.
        let sql = format!(
            "INSERT INTO {} (record_id, ts_micros, results)
             SELECT id, ts, doc FROM unnest($1::text[], $2::int8[], $3::jsonb[]) WITH ORDINALITY AS u(id, ts, doc, ord)
             ORDER BY ord",
            self.table
        );
        self.with_client(|client| {
            let mut tx = client.transaction().map_err(|e| backend("cannot begin a transaction", e))?;
            for chunk in batch.chunks(ROWS_PER_STATEMENT) {
                let ids: Vec<&str> = chunk.iter().map(|r| r.id.as_str()).collect();
                let ts: Vec<i64> = chunk.iter().map(|r| r.timestamp.timestamp_micros()).collect();
                let docs: Vec<Value> = chunk.iter().map(|r| r.results.to_json()).collect();
                tx.execute(&sql, &[&ids, &ts, &docs])
                    .map_err(|e| backend(format!("cannot store a batch of {}", batch.len()), e))?;
            }
            // Dropping `tx` on an error path above rolls the whole batch back.
            tx.commit().map_err(|e| backend(format!("cannot commit a batch of {}", batch.len()), e))
        })
    }

    fn current(&self, id: &str) -> Result<Option<StoredResult>, WharfError> {
        Ok(self.select(id, Some(1))?.pop())
    }

    fn history(&self, id: &str) -> Result<Vec<StoredResult>, WharfError> {
        self.select(id, None)
    }

    fn count(&self) -> Result<StoreCount, WharfError> {
        let sql = format!("SELECT COUNT(DISTINCT record_id), COUNT(*) FROM {}", self.table);
        let row = self.with_client(|c| c.query_one(&sql, &[]).map_err(|e| backend("cannot count the results", e)))?;
        let records: i64 = row.try_get(0).map_err(|e| backend("cannot read the count", e))?;
        let results: i64 = row.try_get(1).map_err(|e| backend("cannot read the count", e))?;
        Ok(StoreCount { records: records as u64, results: results as u64 })
    }

    fn ids(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>, WharfError> {
        // COLLATE "C": byte order, the same on every server whatever its locale, and the
        // same as the other stores.
        let sql = format!(
            "SELECT DISTINCT record_id COLLATE \"C\" AS id FROM {}
             WHERE $1::text IS NULL OR record_id COLLATE \"C\" > $1::text
             ORDER BY id LIMIT $2",
            self.table
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.with_client(|c| c.query(&sql, &[&after, &limit]).map_err(|e| backend("cannot list ids", e)))?;
        rows.iter().map(|row| row.try_get::<_, String>(0).map_err(|e| backend("cannot read an id", e))).collect()
    }
}
