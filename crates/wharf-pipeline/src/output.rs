//! What a run hands back: items by output bucket, and counters per stage.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::Value;

use crate::item::Item;

/// The result of a whole run: every output bucket (declared ones appear even when empty),
/// each holding its items in input order, and the run's counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunOutput {
    /// The run's session id.
    pub session_id: String,
    /// Bucket name → items, in input order within each bucket.
    pub buckets: BTreeMap<String, Vec<Item>>,
    /// Counters for the run and each stage.
    pub stats: RunStats,
}

impl RunOutput {
    /// The items in `bucket` (empty if there is no such bucket).
    pub fn bucket(&self, bucket: &str) -> &[Item] {
        self.buckets.get(bucket).map(Vec::as_slice).unwrap_or_default()
    }

    /// The payloads in `bucket`, in order.
    pub fn payloads(&self, bucket: &str) -> Vec<&Value> {
        self.bucket(bucket).iter().map(|item| &item.payload).collect()
    }

    /// How many items each bucket holds.
    pub fn counts(&self) -> BTreeMap<&str, usize> {
        self.buckets.iter().map(|(name, items)| (name.as_str(), items.len())).collect()
    }

    /// Items over all buckets.
    pub fn len(&self) -> usize {
        self.buckets.values().map(Vec::len).sum()
    }

    /// True when no bucket holds an item.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Counters of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Items read from the input.
    pub items_in: u64,
    /// Batches formed from the input.
    pub batches: u64,
    /// One entry per stage (the router included), in pipeline order.
    pub stages: Vec<StageStats>,
}

impl RunStats {
    /// The counters of the stage called `name`.
    pub fn stage(&self, name: &str) -> Option<&StageStats> {
        self.stages.iter().find(|s| s.name == name)
    }
}

/// Counters of one stage in one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StageStats {
    /// The stage's name.
    pub name: String,
    /// `item`, `batch` or `router`.
    pub kind: &'static str,
    /// Items that reached the stage.
    pub items_in: u64,
    /// Items it passed on (to the next stage, or to a bucket for a router).
    pub items_out: u64,
    /// Items dropped: by the `skip` policy or by the handler's own [`Outcome::Skip`](crate::Outcome::Skip).
    pub skipped: u64,
    /// Items that failed after every attempt (whatever the policy then did).
    pub failed: u64,
    /// Extra calls made by the `retry` policy.
    pub retries: u64,
    /// Items sent straight to a bucket by the `route` policy or [`Outcome::Route`](crate::Outcome::Route).
    pub routed: u64,
    /// Handler calls (one per item for item stages, one per batch for batch stages).
    pub calls: u64,
}

#[derive(Default)]
pub(crate) struct StageCounters {
    pub items_in: AtomicU64,
    pub items_out: AtomicU64,
    pub skipped: AtomicU64,
    pub failed: AtomicU64,
    pub retries: AtomicU64,
    pub routed: AtomicU64,
    pub calls: AtomicU64,
}

/// Live counters shared by a run's threads; read with [`Counters::snapshot`].
pub(crate) struct Counters {
    pub items_in: AtomicU64,
    pub batches: AtomicU64,
    pub stages: Vec<(Arc<str>, &'static str, StageCounters)>,
}

pub(crate) fn bump(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    pub fn new(stages: impl IntoIterator<Item = (Arc<str>, &'static str)>) -> Self {
        Counters {
            items_in: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            stages: stages.into_iter().map(|(name, kind)| (name, kind, StageCounters::default())).collect(),
        }
    }

    pub fn stage(&self, index: usize) -> &StageCounters {
        &self.stages[index].2
    }

    pub fn snapshot(&self) -> RunStats {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RunStats {
            items_in: read(&self.items_in),
            batches: read(&self.batches),
            stages: self
                .stages
                .iter()
                .map(|(name, kind, c)| StageStats {
                    name: name.to_string(),
                    kind,
                    items_in: read(&c.items_in),
                    items_out: read(&c.items_out),
                    skipped: read(&c.skipped),
                    failed: read(&c.failed),
                    retries: read(&c.retries),
                    routed: read(&c.routed),
                    calls: read(&c.calls),
                })
                .collect(),
        }
    }
}
