//! The embedded default: results in one SQLite file, no server.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{params, Connection, TransactionBehavior};
use wharf_core::WharfError;

use super::{check_batch, check_table, timestamp_of, ResultStore, StoreCount, StoredResult, DEFAULT_TABLE};
use crate::results::{RecordResult, Results};

const STORE: &str = "sqlite";

fn backend(message: impl Into<String>, e: rusqlite::Error) -> WharfError {
    WharfError::backend(STORE, message, Some(Box::new(e)))
}

/// Results in a SQLite file (SQLite is compiled into the binary; nothing to install).
///
/// The table holds one row per stored result: `seq` (the sequence number), `record_id`,
/// `ts_micros` (the timestamp in microseconds since the epoch) and `results` (the JSON
/// document). The file is in WAL mode, so readers (another process with `sqlite3`, say) do
/// not block a run; each batch is one `BEGIN IMMEDIATE … COMMIT` transaction, which SQLite's
/// journal makes all-or-nothing even if the process is killed half-way. Several processes
/// may write to one file; a writer waits up to 30 s for another's transaction.
///
/// Two views serve direct queries: `<table>_current` (the newest row per id) and
/// `<table>_history` (every row with its `current_rank`: 0 for the newest).
pub struct SqliteResultStore {
    conn: Mutex<Connection>,
    table: String,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for SqliteResultStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteResultStore").field("path", &self.path).field("table", &self.table).finish()
    }
}

impl SqliteResultStore {
    /// Opens (creating if needed) the file at `path`, with the table [`DEFAULT_TABLE`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, WharfError> {
        Self::open_table(path, DEFAULT_TABLE)
    }

    /// Opens the file at `path` with the results in `table` (created if missing).
    pub fn open_table(path: impl AsRef<Path>, table: &str) -> Result<Self, WharfError> {
        check_table(table)?;
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| WharfError::io(dir, e))?;
        }
        let conn = Connection::open(path).map_err(|e| backend(format!("cannot open {}", path.display()), e))?;
        Self::init(conn, table, Some(path.to_path_buf()))
    }

    /// A store in memory (gone when dropped), for trials.
    pub fn in_memory() -> Result<Self, WharfError> {
        Self::in_memory_table(DEFAULT_TABLE)
    }

    /// A store in memory with the results in `table`.
    pub fn in_memory_table(table: &str) -> Result<Self, WharfError> {
        check_table(table)?;
        let conn = Connection::open_in_memory().map_err(|e| backend("cannot open an in-memory database", e))?;
        Self::init(conn, table, None)
    }

    fn init(conn: Connection, table: &str, path: Option<PathBuf>) -> Result<Self, WharfError> {
        let name = path.as_ref().map_or_else(|| ":memory:".to_string(), |p| p.display().to_string());
        conn.busy_timeout(Duration::from_secs(30)).map_err(|e| backend(format!("{name}: busy timeout"), e))?;
        // WAL: readers never block the writer. synchronous=NORMAL in WAL mode loses no
        // committed transaction when the process dies (only, at worst, the last ones on a
        // power cut) and never leaves a partial one.
        if path.is_some() {
            conn.pragma_update(None, "journal_mode", "WAL").map_err(|e| backend(format!("{name}: WAL mode"), e))?;
        }
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(|e| backend(format!("{name}: synchronous"), e))?;
        let schema = format!(
            "CREATE TABLE IF NOT EXISTS {table} (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                record_id TEXT NOT NULL,
                ts_micros INTEGER NOT NULL,
                results TEXT NOT NULL
            );
            CREATE INDEX IF NOT EXISTS {table}_by_record ON {table} (record_id, seq);
            CREATE VIEW IF NOT EXISTS {table}_current AS
                SELECT r.* FROM {table} r
                WHERE r.seq = (SELECT MAX(seq) FROM {table} WHERE record_id = r.record_id);
            CREATE VIEW IF NOT EXISTS {table}_history AS
                SELECT r.*, ROW_NUMBER() OVER (PARTITION BY record_id ORDER BY seq DESC) - 1 AS current_rank
                FROM {table} r;"
        );
        conn.execute_batch(&format!("BEGIN IMMEDIATE; {schema} COMMIT;"))
            .map_err(|e| backend(format!("{name}: cannot create table {table}"), e))?;
        Ok(SqliteResultStore { conn: Mutex::new(conn), table: table.to_string(), path })
    }

    /// The table the results are in.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // SQLite rolls back an open transaction when its `Transaction` guard drops during a
        // panic, so a poisoned connection holds no half-written batch.
        self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn select(&self, id: &str, limit: Option<u32>) -> Result<Vec<StoredResult>, WharfError> {
        let conn = self.conn();
        let limit = limit.map_or(-1, i64::from);
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT seq, record_id, ts_micros, results FROM {} WHERE record_id = ?1 ORDER BY seq DESC LIMIT ?2",
                self.table
            ))
            .map_err(|e| backend("cannot prepare a read", e))?;
        let rows = stmt
            .query_map(params![id, limit], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?, row.get::<_, i64>(2)?, row.get::<_, String>(3)?))
            })
            .map_err(|e| backend(format!("cannot read the results of '{id}'"), e))?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, id, ts, text) = row.map_err(|e| backend("cannot read a row", e))?;
            let what = format!("{} row seq={seq}", self.table);
            let value = serde_json::from_str(&text)
                .map_err(|e| WharfError::invalid(what.as_str(), format!("results are not JSON: {e}")))?;
            out.push(StoredResult {
                seq,
                id,
                timestamp: timestamp_of(ts, &what)?,
                results: Results::from_json(value, &what)?,
            });
        }
        Ok(out)
    }
}

impl ResultStore for SqliteResultStore {
    fn name(&self) -> &str {
        STORE
    }

    fn put_batch(&self, batch: &[RecordResult]) -> Result<(), WharfError> {
        check_batch(batch)?;
        if batch.is_empty() {
            return Ok(());
        }
        // Serialised before the transaction, so the write lock is held only for the inserts.
        let docs: Vec<String> = batch
            .iter()
            .map(|r| serde_json::to_string(&r.results))
            .collect::<Result<_, _>>()
            .map_err(|e| WharfError::invalid("results", format!("cannot serialise: {e}")))?;
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| backend("cannot begin a transaction", e))?;
        {
            let mut insert = tx
                .prepare_cached(&format!(
                    "INSERT INTO {} (record_id, ts_micros, results) VALUES (?1, ?2, ?3)",
                    self.table
                ))
                .map_err(|e| backend("cannot prepare the insert", e))?;
            for (record, doc) in batch.iter().zip(&docs) {
                insert
                    .execute(params![record.id, record.timestamp.timestamp_micros(), doc])
                    .map_err(|e| backend(format!("cannot store the results of '{}'", record.id), e))?;
            }
        }
        // Dropping `tx` on an error path above rolls the whole batch back.
        tx.commit().map_err(|e| backend(format!("cannot commit a batch of {}", batch.len()), e))
    }

    fn current(&self, id: &str) -> Result<Option<StoredResult>, WharfError> {
        Ok(self.select(id, Some(1))?.pop())
    }

    fn history(&self, id: &str) -> Result<Vec<StoredResult>, WharfError> {
        self.select(id, None)
    }

    fn count(&self) -> Result<StoreCount, WharfError> {
        let conn = self.conn();
        conn.query_row(&format!("SELECT COUNT(DISTINCT record_id), COUNT(*) FROM {}", self.table), [], |row| {
            Ok(StoreCount { records: row.get::<_, i64>(0)? as u64, results: row.get::<_, i64>(1)? as u64 })
        })
        .map_err(|e| backend("cannot count the results", e))
    }

    fn ids(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>, WharfError> {
        let conn = self.conn();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT DISTINCT record_id FROM {} WHERE ?1 IS NULL OR record_id > ?1 ORDER BY record_id LIMIT ?2",
                self.table
            ))
            .map_err(|e| backend("cannot prepare the id listing", e))?;
        let rows = stmt
            .query_map(params![after, limit], |row| row.get::<_, String>(0))
            .map_err(|e| backend("cannot list ids", e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| backend("cannot list ids", e))
    }
}
