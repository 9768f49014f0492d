//! `ResultStore`: where each record's results are kept, with a current/history view.
//!
//! Every stored result gets a sequence number from the store, increasing with every write.
//! A record id's **current** result is its result with the highest sequence; its
//! **history** is all of them, newest first. Nothing is rewritten when a newer result
//! arrives.
//!
//! A result's rank is its position in [`ResultStore::history`]: the newest (the current
//! result) is at 0, the one before at 1, and so on. It is computed when read, not stored, so
//! a write never has to renumber older rows (which would make every write touch the whole
//! history of its id). The SQL stores also define two views for direct queries:
//! `<table>_current` (one row per id) and `<table>_history`, which adds the rank as the
//! column `current_rank`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use wharf_core::WharfError;

use crate::results::{RecordResult, Results};

mod memory;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
mod postgres;
mod sqlite;

pub use memory::MemoryResultStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::PostgresResultStore;
pub use sqlite::SqliteResultStore;

/// The table SQL stores use unless told otherwise.
pub const DEFAULT_TABLE: &str = "wharf_results";

/// The longest record id a store accepts, in bytes.
pub const MAX_ID_BYTES: usize = 1024;

/// One stored result of one record.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResult {
    /// The store's sequence number: higher is newer, across every record id.
    pub seq: i64,
    /// The record id.
    pub id: String,
    /// When the results were computed.
    pub timestamp: DateTime<Utc>,
    /// `results[name][version]`. The record's input data is not stored.
    pub results: Results,
}

/// How much a store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreCount {
    /// Distinct record ids.
    pub records: u64,
    /// Stored results (every version of every record's history).
    pub results: u64,
}

/// Keeps the results of runs, per record id, with history.
///
/// # Contract
///
/// - [`put_batch`](Self::put_batch) stores every record of the batch or none of them, also
///   when the process is killed half-way: a record is never stored with part of its
///   results, and a batch is never half stored. An empty batch is a no-op. A record with an
///   empty id, or one longer than [`MAX_ID_BYTES`], fails the whole batch with
///   [`WharfError::InvalidInput`] naming it.
/// - Each stored result gets a sequence number higher than every earlier one of the store;
///   within a batch they follow the batch order, so when one id appears twice in a batch
///   the later one is current.
/// - [`current`](Self::current) is the id's result with the highest sequence, `None` for an
///   id never stored. [`history`](Self::history) is every result of the id, newest first
///   (empty for an unknown id); its first entry is the current one.
/// - What is read back equals what was written: results, id, and the timestamp to the
///   microsecond.
/// - [`count`](Self::count) counts distinct ids and stored results;
///   [`ids`](Self::ids) lists distinct ids in ascending byte order, after `after`, at most
///   `limit`, for paging.
/// - The store is shared between threads: concurrent `put_batch` calls all succeed and
///   each stays atomic.
///
/// Backend failures are [`WharfError::Backend`] naming the store; a stored document that no
/// longer reads as results is [`WharfError::InvalidInput`] naming the row.
pub trait ResultStore: Send + Sync {
    /// A short name for reports (`sqlite`, `postgres`, `memory`).
    fn name(&self) -> &str;
    /// Stores a batch in one transaction.
    fn put_batch(&self, batch: &[RecordResult]) -> Result<(), WharfError>;
    /// The newest result of `id`.
    fn current(&self, id: &str) -> Result<Option<StoredResult>, WharfError>;
    /// Every result of `id`, newest first.
    fn history(&self, id: &str) -> Result<Vec<StoredResult>, WharfError>;
    /// Distinct ids and stored results.
    fn count(&self) -> Result<StoreCount, WharfError>;
    /// Distinct ids in ascending order, after `after`, at most `limit`.
    fn ids(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>, WharfError>;
}

macro_rules! forward_result_store {
    ($($wrapper:ident),*) => {$(
        impl<T: ResultStore + ?Sized> ResultStore for $wrapper<T> {
            fn name(&self) -> &str { (**self).name() }
            fn put_batch(&self, batch: &[RecordResult]) -> Result<(), WharfError> { (**self).put_batch(batch) }
            fn current(&self, id: &str) -> Result<Option<StoredResult>, WharfError> { (**self).current(id) }
            fn history(&self, id: &str) -> Result<Vec<StoredResult>, WharfError> { (**self).history(id) }
            fn count(&self) -> Result<StoreCount, WharfError> { (**self).count() }
            fn ids(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>, WharfError> { (**self).ids(after, limit) }
        }
    )*};
}
forward_result_store!(Arc, Box);

/// Checks every record of a batch before anything is written.
pub(crate) fn check_batch(batch: &[RecordResult]) -> Result<(), WharfError> {
    for (i, record) in batch.iter().enumerate() {
        if record.id.is_empty() {
            return Err(WharfError::invalid(format!("batch[{i}].id"), "a record id must not be empty"));
        }
        if record.id.len() > MAX_ID_BYTES {
            return Err(WharfError::invalid(
                format!("batch[{i}].id"),
                format!("a record id must be at most {MAX_ID_BYTES} bytes, this one has {}", record.id.len()),
            ));
        }
    }
    Ok(())
}

/// Checks a table name: 1–48 of `a-z 0-9 _`, starting with a letter. Table names go into
/// SQL text (they cannot be bound as parameters), so nothing else is let through.
pub(crate) fn check_table(table: &str) -> Result<(), WharfError> {
    let ok = !table.is_empty()
        && table.len() <= 48
        && table.as_bytes()[0].is_ascii_lowercase()
        && table.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(WharfError::invalid("table", format!("'{table}' is not a valid table name (a-z, 0-9, _; a letter first)")))
    }
}

/// Reads a stored timestamp (microseconds since the epoch).
pub(crate) fn timestamp_of(micros: i64, row: &str) -> Result<DateTime<Utc>, WharfError> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| WharfError::invalid(row, format!("timestamp {micros} is out of range")))
}

/// Opens the store a URL names:
///
/// - `sqlite://results.db` (relative to the working directory), `sqlite:///var/lib/results.db`
///   (absolute), `sqlite::memory:` (in memory, for trials);
/// - `postgres://user@host:port/db` or `postgresql://…` (needs the `postgres` feature);
/// - `memory:` — the in-process [`MemoryResultStore`].
///
/// The SQL stores use the table [`DEFAULT_TABLE`], created if missing, unless the URL ends
/// in `?table=NAME` (`sqlite://results.db?table=lead_scores`). Other query parameters of a
/// PostgreSQL URL (`connect_timeout=10`, …) are passed on to the client.
pub fn open_store(url: &str) -> Result<Box<dyn ResultStore>, WharfError> {
    let (url, table) = split_table(url.trim())?;
    let table = table.as_deref().unwrap_or(DEFAULT_TABLE);
    if url == "sqlite::memory:" {
        return Ok(Box::new(SqliteResultStore::in_memory_table(table)?));
    }
    if let Some(path) = url.strip_prefix("sqlite://") {
        if path.is_empty() {
            return Err(WharfError::config("store", "sqlite:// needs a file path (sqlite://results.db)"));
        }
        return Ok(Box::new(SqliteResultStore::open_table(path, table)?));
    }
    if url == "memory:" {
        return Ok(Box::new(MemoryResultStore::new()));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        #[cfg(feature = "postgres")]
        return Ok(Box::new(PostgresResultStore::connect_table(&url, table)?));
        #[cfg(not(feature = "postgres"))]
        return Err(WharfError::config(
            "store",
            "PostgreSQL support is not compiled in: build with the Cargo feature 'postgres' \
             (of wharf-runner, or of wharf-cli for the `wharf` command)",
        ));
    }
    // Only the scheme is repeated: the rest of a URL may hold a password.
    let scheme = url.split_once(':').map_or(url.as_str(), |(scheme, _)| scheme);
    Err(WharfError::config(
        "store",
        format!("unknown store scheme '{scheme}' (use sqlite://FILE, sqlite::memory:, postgres://…, or memory:)"),
    ))
}

/// Takes `table=NAME` out of a URL's query string: the URL without it, and the name.
fn split_table(url: &str) -> Result<(String, Option<String>), WharfError> {
    let Some((base, query)) = url.split_once('?') else { return Ok((url.to_string(), None)) };
    let mut table = None;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.strip_prefix("table=") {
            Some(name) => {
                check_table(name).map_err(|e| WharfError::config("store", e.to_string()))?;
                table = Some(name.to_string());
            }
            None => rest.push(pair),
        }
    }
    let url = if rest.is_empty() { base.to_string() } else { format!("{base}?{}", rest.join("&")) };
    Ok((url, table))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_comes_out_of_the_query_and_the_rest_stays() {
        let split = |u: &str| split_table(u).unwrap();
        assert_eq!(split("sqlite://r.db"), ("sqlite://r.db".into(), None));
        assert_eq!(split("sqlite://r.db?table=leads"), ("sqlite://r.db".into(), Some("leads".into())));
        assert_eq!(
            split("postgres://u@h/db?connect_timeout=5&table=leads&sslmode=disable"),
            ("postgres://u@h/db?connect_timeout=5&sslmode=disable".into(), Some("leads".into()))
        );
        assert!(split_table("sqlite://r.db?table=Bad-Name").is_err());
    }
}
