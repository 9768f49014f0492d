//! The in-process result store: for tests, trials and runs whose results are read in the
//! same process.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Mutex;

use wharf_core::WharfError;

use super::{check_batch, ResultStore, StoreCount, StoredResult};
use crate::results::RecordResult;

/// Keeps results in memory, behind one lock, so a batch is stored all at once.
#[derive(Debug, Default)]
pub struct MemoryResultStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next_seq: i64,
    /// id → results, oldest first.
    by_id: BTreeMap<String, Vec<StoredResult>>,
}

impl MemoryResultStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-applied batch (the batch is
        // built before the lock is taken), so a poisoned lock is safe to reuse.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ResultStore for MemoryResultStore {
    fn name(&self) -> &str {
        "memory"
    }

    fn put_batch(&self, batch: &[RecordResult]) -> Result<(), WharfError> {
        check_batch(batch)?;
        let mut inner = self.lock();
        let first = inner.next_seq + 1;
        let stored: Vec<StoredResult> = batch
            .iter()
            .zip(first..)
            .map(|(r, seq)| StoredResult { seq, id: r.id.clone(), timestamp: r.timestamp, results: r.results.clone() })
            .collect();
        inner.next_seq += stored.len() as i64;
        for s in stored {
            inner.by_id.entry(s.id.clone()).or_default().push(s);
        }
        Ok(())
    }

    fn current(&self, id: &str) -> Result<Option<StoredResult>, WharfError> {
        Ok(self.lock().by_id.get(id).and_then(|h| h.last().cloned()))
    }

    fn history(&self, id: &str) -> Result<Vec<StoredResult>, WharfError> {
        Ok(self.lock().by_id.get(id).map(|h| h.iter().rev().cloned().collect()).unwrap_or_default())
    }

    fn count(&self) -> Result<StoreCount, WharfError> {
        let inner = self.lock();
        let results = inner.by_id.values().map(Vec::len).sum::<usize>();
        Ok(StoreCount { records: inner.by_id.len() as u64, results: results as u64 })
    }

    fn ids(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>, WharfError> {
        let inner = self.lock();
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(inner.by_id.range::<str, _>((from, Bound::Unbounded)).take(limit).map(|(id, _)| id.clone()).collect())
    }
}
