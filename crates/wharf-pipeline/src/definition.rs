//! A checked pipeline definition as every run uses it: the stages resolved for running,
//! the router, the buckets and the run settings. Built by [`PipelineBuilder`](crate::PipelineBuilder),
//! read by the engine and by each run; it knows nothing of either.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use wharf_core::LineagePort;

use crate::batching::Batching;
use crate::policy::Policy;
use crate::stage::{Predicate, Stage, StageKind};

/// The order in which a run hands back batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputOrder {
    /// Input order: a batch is handed back only after every batch before it.
    #[default]
    Preserve,
    /// Completion order: each batch as soon as it is done (items within a batch stay in
    /// order). [`Pipeline::run`](crate::Pipeline::run) still files each bucket's items by batch order, so this only
    /// changes what a [`RunStream`](crate::RunStream) yields.
    AsCompleted,
}

/// A stage ready to run: its handler, its resolved policy and its counter slot.
pub(crate) struct StageRt {
    pub name: Arc<str>,
    pub kind: StageKind,
    pub timeout: Option<Duration>,
    pub policy: Policy,
    pub index: usize,
}

impl StageRt {
    /// Resolves a stage for running, giving it the next counter slot.
    pub(crate) fn new(stage: Stage, policy: Policy, slots: &mut Vec<(Arc<str>, &'static str)>) -> StageRt {
        slots.push((stage.name.clone(), stage.kind()));
        StageRt { policy, index: slots.len() - 1, name: stage.name, kind: stage.kind, timeout: stage.timeout }
    }
}

pub(crate) struct RouterRt {
    pub name: Arc<str>,
    pub routes: Vec<(Arc<str>, Predicate)>,
    pub policy: Policy,
    pub index: usize,
}

/// A checked pipeline definition, shared by every thread of every run.
pub(crate) struct Definition {
    pub name: Arc<str>,
    pub stages: Vec<StageRt>,
    pub router: Option<RouterRt>,
    pub tails: HashMap<Arc<str>, Vec<StageRt>>,
    pub outputs: BTreeSet<Arc<str>>,
    pub default_bucket: Arc<str>,
    pub batching: Batching,
    pub workers: usize,
    pub max_in_flight: usize,
    pub order: OutputOrder,
    pub lineage: Option<Arc<dyn LineagePort>>,
    /// (name, kind) of every stage, in pipeline order: the counter slots.
    pub slots: Vec<(Arc<str>, &'static str)>,
}
