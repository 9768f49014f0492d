//! Items: the envelope around one piece of work as it moves through a pipeline.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value};

/// Free-form metadata carried by an [`Item`]: what stages learnt about it along the way
/// (`error`, `error_stage`, `skipped`, `parent_id`).
pub type Meta = Map<String, Value>;

/// Ids are handed out from one process-wide counter, so every wrapped item gets an id that
/// no other item of this process has, and ids rise in the order items are wrapped.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Reserves `n` consecutive ids and returns the first. One atomic add per call keeps a
/// batch's ids contiguous even while other threads wrap items too.
pub(crate) fn reserve_ids(n: u64) -> u64 {
    NEXT_ID.fetch_add(n, Ordering::Relaxed)
}

/// One piece of work: a stable id, a JSON payload that stages replace, and metadata that
/// stages add to.
///
/// The id never changes as the item moves through stages, so an output can always be
/// joined back to its input. A fan-out child gets a fresh id and records its parent's in
/// `meta.parent_id`.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Unique within the process when made by [`wrap`](Self::wrap); the caller's own when
    /// made by [`with_id`](Self::with_id).
    pub id: u64,
    /// The data itself. JSON so stages can add and read fields without a shared Rust type.
    pub payload: Value,
    /// What stages attached (errors, lineage).
    pub meta: Meta,
}

impl Item {
    /// Wraps a payload with a fresh id and empty metadata.
    pub fn wrap(payload: impl Into<Value>) -> Item {
        Item { id: reserve_ids(1), payload: payload.into(), meta: Meta::new() }
    }

    /// Wraps many payloads; their ids are unique and rise in input order.
    pub fn wrap_many(payloads: impl IntoIterator<Item = Value>) -> Vec<Item> {
        let payloads: Vec<Value> = payloads.into_iter().collect();
        let first = reserve_ids(payloads.len() as u64);
        payloads.into_iter().zip(first..).map(|(payload, id)| Item { id, payload, meta: Meta::new() }).collect()
    }

    /// An item with an id the caller chose (a database key, a line number), so outputs
    /// carry the caller's own identity.
    pub fn with_id(id: u64, payload: impl Into<Value>) -> Item {
        Item { id, payload: payload.into(), meta: Meta::new() }
    }

    /// The same item (id and metadata kept) with a new payload.
    pub fn with_payload(self, payload: impl Into<Value>) -> Item {
        Item { payload: payload.into(), ..self }
    }

    /// Sets one metadata field, keeping the others.
    pub fn put_meta(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        self.meta.insert(key.into(), value.into());
    }

    /// Merges `meta` into the item's metadata; fields in `meta` win.
    pub fn merge_meta(&mut self, meta: Meta) {
        self.meta.extend(meta);
    }

    /// The error a stage recorded on this item (under the `mark` or `route` policies).
    pub fn error(&self) -> Option<&str> {
        self.meta.get("error").and_then(Value::as_str)
    }

    /// The id of the item this one was fanned out from.
    pub fn parent_id(&self) -> Option<u64> {
        self.meta.get("parent_id").and_then(Value::as_u64)
    }
}
