//! How a run's input is cut into batches: by size, by weight, or by key.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::item::Item;

/// Weighs an item for [`Batching::weighted`].
pub type WeightFn = Arc<dyn Fn(&Item) -> u64 + Send + Sync>;
/// Names an item's partition for [`Batching::by_key`].
pub type KeyFn = Arc<dyn Fn(&Item) -> String + Send + Sync>;

/// How input items are grouped into batches. A batch is the unit of parallel work: it goes
/// through every stage on one worker, and batch stages receive it whole.
#[derive(Clone)]
pub struct Batching(Strategy);

#[derive(Clone)]
enum Strategy {
    Fixed(usize),
    Weighted { max_weight: u64, weight: WeightFn },
    ByKey(KeyFn),
}

impl Batching {
    /// Batches of `size` items (the last may be smaller). A built pipeline refuses 0.
    pub fn fixed(size: usize) -> Self {
        Batching(Strategy::Fixed(size))
    }

    /// Batches whose total weight stays within `max_weight`: a new batch starts when the
    /// next item would push the total over. An item heavier than the cap on its own forms a
    /// batch by itself rather than being refused. A built pipeline refuses a cap of 0.
    pub fn weighted(max_weight: u64, weight: impl Fn(&Item) -> u64 + Send + Sync + 'static) -> Self {
        Batching(Strategy::Weighted { max_weight, weight: Arc::new(weight) })
    }

    /// One batch per key, in key order, each keeping input order. This needs the whole input
    /// before the first batch can start, so it suits bounded inputs, not endless streams.
    pub fn by_key(key: impl Fn(&Item) -> String + Send + Sync + 'static) -> Self {
        Batching(Strategy::ByKey(Arc::new(key)))
    }

    /// Cuts `items` into batches (what a run does with its input, here for planning and
    /// tests). A size or cap of 0 is treated as 1.
    pub fn split(&self, items: Vec<Item>) -> Vec<Vec<Item>> {
        self.batches(items.into_iter()).collect()
    }

    /// Why this strategy cannot be used, if it cannot.
    pub(crate) fn problem(&self) -> Option<&'static str> {
        match self.0 {
            Strategy::Fixed(0) => Some("batch size must be at least 1"),
            Strategy::Weighted { max_weight: 0, .. } => Some("maximum batch weight must be at least 1"),
            _ => None,
        }
    }

    /// Lazily cuts an item iterator into batches (except by key, which must see everything).
    pub(crate) fn batches<I: Iterator<Item = Item>>(&self, input: I) -> Batches<I> {
        Batches { input, strategy: self.0.clone(), pending: None, keyed: None }
    }
}

impl fmt::Debug for Batching {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Strategy::Fixed(size) => write!(f, "Batching::fixed({size})"),
            Strategy::Weighted { max_weight, .. } => write!(f, "Batching::weighted({max_weight}, ..)"),
            Strategy::ByKey(_) => f.write_str("Batching::by_key(..)"),
        }
    }
}

/// The lazy batch iterator behind [`Batching`].
pub(crate) struct Batches<I> {
    input: I,
    strategy: Strategy,
    /// An item read but not yet placed (it did not fit the previous weighted batch).
    pending: Option<(Item, u64)>,
    keyed: Option<std::vec::IntoIter<Vec<Item>>>,
}

impl<I: Iterator<Item = Item>> Iterator for Batches<I> {
    type Item = Vec<Item>;

    fn next(&mut self) -> Option<Vec<Item>> {
        match &self.strategy {
            Strategy::Fixed(size) => {
                let size = (*size).max(1);
                let batch: Vec<Item> = self.input.by_ref().take(size).collect();
                (!batch.is_empty()).then_some(batch)
            }
            Strategy::Weighted { max_weight, weight } => {
                let (max_weight, weight) = (*max_weight, weight.clone());
                let mut batch = Vec::new();
                let mut total = 0u64;
                loop {
                    let (item, w) = match self.pending.take() {
                        Some(pending) => pending,
                        None => match self.input.next() {
                            Some(item) => {
                                let w = weight(&item);
                                (item, w)
                            }
                            None => break,
                        },
                    };
                    if !batch.is_empty() && total.saturating_add(w) > max_weight {
                        self.pending = Some((item, w));
                        break;
                    }
                    total = total.saturating_add(w);
                    batch.push(item);
                }
                (!batch.is_empty()).then_some(batch)
            }
            Strategy::ByKey(key) => {
                if self.keyed.is_none() {
                    let mut groups: BTreeMap<String, Vec<Item>> = BTreeMap::new();
                    for item in self.input.by_ref() {
                        groups.entry(key(&item)).or_default().push(item);
                    }
                    self.keyed = Some(groups.into_values().collect::<Vec<_>>().into_iter());
                }
                self.keyed.as_mut().and_then(Iterator::next)
            }
        }
    }
}
