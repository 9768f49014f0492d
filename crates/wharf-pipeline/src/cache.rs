//! The feature cache: lock-free reads for many concurrent scorers, one writer at a time,
//! and atomic reload of the whole table.

use std::fmt::Display;
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;

/// Why a cache operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The key has no entry.
    #[error("cache '{cache}': no entry for key '{key}'")]
    NotFound {
        /// The cache's name.
        cache: String,
        /// The key looked for.
        key: String,
    },
    /// A reload's source failed; the old table stays in place, untouched.
    #[error("cache '{cache}': reload failed at row {row}: {message} (the old table is kept)")]
    Reload {
        /// The cache's name.
        cache: String,
        /// The position of the failing row in the source (0-based).
        row: usize,
        /// The source's error.
        message: String,
    },
}

/// One generation of the table. A reload builds a new one and swaps it in whole.
struct Table<V> {
    rows: papaya::HashMap<String, Arc<V>>,
    generation: u64,
}

impl<V> Table<V> {
    fn new(generation: u64) -> Self {
        Table { rows: papaya::HashMap::new(), generation }
    }
}

/// A keyed table of values (feature vectors) shared by every scorer.
///
/// - **Reads take no lock.** The current table sits behind an atomically swapped pointer
///   (`arc-swap`) and is itself a lock-free concurrent map (`papaya`), so scorers on many
///   threads never wait for each other or for a writer.
/// - **One writer at a time.** Writes take a mutex, so a read-modify-write
///   ([`update`](Self::update)) is atomic with respect to every other write. Readers still
///   take no lock.
/// - **Atomic reload.** [`reload`](Self::reload) builds a complete new table off to the side,
///   then swaps it in with one pointer store: a reader sees the old table or the new one,
///   never a mix. A reload whose source fails keeps the old table. Writes made while a new
///   table is being built land in the old one and are replaced with it, as if they had come
///   just before the reload. A [`snapshot`](Self::snapshot) pins one table for reads that
///   must agree with each other.
/// - Values are shared as `Arc<V>`, so a hit costs a reference count, not a copy.
pub struct FeatureCache<V> {
    name: String,
    table: ArcSwap<Table<V>>,
    writer: Mutex<()>,
}

impl<V> std::fmt::Debug for FeatureCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let table = self.table.load();
        f.debug_struct("FeatureCache")
            .field("name", &self.name)
            .field("len", &table.rows.len())
            .field("generation", &table.generation)
            .finish()
    }
}

impl<V: Send + Sync + 'static> FeatureCache<V> {
    /// An empty cache; `name` appears in errors and tracing events.
    pub fn new(name: impl Into<String>) -> Self {
        FeatureCache { name: name.into(), table: ArcSwap::from_pointee(Table::new(0)), writer: Mutex::new(()) }
    }

    /// The cache's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value under `key`, if any. Lock-free.
    pub fn get(&self, key: &str) -> Option<Arc<V>> {
        self.table.load().rows.pin().get(key).cloned()
    }

    /// The value under `key`, or [`CacheError::NotFound`] naming the key.
    pub fn get_or_err(&self, key: &str) -> Result<Arc<V>, CacheError> {
        self.get(key).ok_or_else(|| CacheError::NotFound { cache: self.name.clone(), key: key.to_string() })
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.table.load().rows.len()
    }

    /// True when the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many reloads have replaced the table.
    pub fn generation(&self) -> u64 {
        self.table.load().generation
    }

    /// The current table, pinned: its reads all come from one generation even if a reload
    /// swaps in another meanwhile.
    pub fn snapshot(&self) -> CacheSnapshot<V> {
        CacheSnapshot { table: self.table.load_full() }
    }

    fn write_lock(&self) -> MutexGuard<'_, ()> {
        // The mutex guards no data of its own (it only orders writers), so a writer that
        // panicked cannot have left anything half-done behind it.
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets `key` to `value`.
    pub fn put(&self, key: impl Into<String>, value: V) {
        self.put_many([(key.into(), value)]);
    }

    /// Sets many entries under one write lock (what featurize's write-through uses, once per
    /// batch). Returns how many were written.
    pub fn put_many(&self, rows: impl IntoIterator<Item = (String, V)>) -> usize {
        let _writer = self.write_lock();
        let table = self.table.load();
        let map = table.rows.pin();
        let mut count = 0;
        for (key, value) in rows {
            map.insert(key, Arc::new(value));
            count += 1;
        }
        tracing::trace!(cache = %self.name, count, "cache write");
        count
    }

    /// Replaces the value under `key` with `f(old)`, atomically with respect to other
    /// writes. A missing key is [`CacheError::NotFound`] and writes nothing.
    pub fn update(&self, key: &str, f: impl FnOnce(&V) -> V) -> Result<Arc<V>, CacheError> {
        let _writer = self.write_lock();
        let table = self.table.load();
        let map = table.rows.pin();
        let old =
            map.get(key).ok_or_else(|| CacheError::NotFound { cache: self.name.clone(), key: key.to_string() })?;
        let new = Arc::new(f(old));
        map.insert(key.to_string(), new.clone());
        tracing::trace!(cache = %self.name, count = 1, "cache write");
        Ok(new)
    }

    /// Removes `key`, returning its value.
    pub fn delete(&self, key: &str) -> Option<Arc<V>> {
        let _writer = self.write_lock();
        let removed = self.table.load().rows.pin().remove(key).cloned();
        tracing::trace!(cache = %self.name, count = removed.is_some() as u64, "cache delete");
        removed
    }

    /// Every entry for which `matches` is true (order unspecified).
    pub fn select(&self, matches: impl Fn(&str, &V) -> bool) -> Vec<(String, Arc<V>)> {
        self.snapshot().entries().into_iter().filter(|(k, v)| matches(k, v)).collect()
    }

    /// Replaces the whole table with the rows of `source`. The new table is built completely
    /// before it is swapped in, so readers never see a half-loaded table; if `source` yields
    /// an error, the new table is thrown away and the old one stays.
    pub fn reload<E: Display>(
        &self,
        source: impl IntoIterator<Item = Result<(String, V), E>>,
    ) -> Result<usize, CacheError> {
        let span = tracing::info_span!("cache.reload", cache = %self.name, rows = tracing::field::Empty);
        let _entered = span.enter();
        let next = Table::new(0);
        {
            let map = next.rows.pin();
            for (row, entry) in source.into_iter().enumerate() {
                let (key, value) = entry.map_err(|e| {
                    tracing::warn!(cache = %self.name, row, error = %e, "reload failed; keeping the old table");
                    CacheError::Reload { cache: self.name.clone(), row, message: e.to_string() }
                })?;
                map.insert(key, Arc::new(value));
            }
        }
        let count = next.rows.len();
        let _writer = self.write_lock();
        let generation = self.table.load().generation + 1;
        self.table.store(Arc::new(Table { rows: next.rows, generation }));
        span.record("rows", count);
        Ok(count)
    }
}

/// One generation of a [`FeatureCache`], pinned for consistent reads.
pub struct CacheSnapshot<V> {
    table: Arc<Table<V>>,
}

impl<V> CacheSnapshot<V> {
    /// The value under `key` in this generation.
    pub fn get(&self, key: &str) -> Option<Arc<V>> {
        self.table.rows.pin().get(key).cloned()
    }

    /// Number of entries in this generation.
    pub fn len(&self) -> usize {
        self.table.rows.len()
    }

    /// True when this generation is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Which reload made this generation (0 before any).
    pub fn generation(&self) -> u64 {
        self.table.generation
    }

    /// Every entry (order unspecified).
    pub fn entries(&self) -> Vec<(String, Arc<V>)> {
        self.table.rows.pin().iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}
