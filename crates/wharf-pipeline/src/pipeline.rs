//! Pipeline definitions: the builder, its checks, and the entry points of a run.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::Value;
use wharf_core::LineagePort;

use crate::batching::Batching;
use crate::context::RunContext;
use crate::definition::{Definition, OutputOrder, RouterRt, StageRt};
use crate::error::PipelineError;
use crate::item::Item;
use crate::output::RunOutput;
use crate::policy::Policy;
use crate::stage::{Router, Stage};
use crate::stream::RunStream;

/// The bucket every pipeline has: items that no router sent elsewhere land here.
pub const DEFAULT_BUCKET: &str = "default";
/// The policy key that applies to every stage without a policy of its own.
pub const ANY_STAGE: &str = "*";

/// A scoring pipeline: stages in order, then optionally a router whose buckets may each have
/// stages of their own, with an error policy per stage.
///
/// A run cuts its input into batches ([`Batching`]); each batch goes through every stage on
/// one of `workers` threads; at most `max_in_flight` batches are out at once (the input is
/// read no further until one is handed back, which is the backpressure); results come back
/// in input order unless [`OutputOrder::AsCompleted`] is asked for.
///
/// Cloning is cheap and a pipeline can run many times, concurrently.
#[derive(Clone)]
pub struct Pipeline {
    pub(crate) def: Arc<Definition>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("name", &self.def.name)
            .field("stages", &self.stages())
            .field("outputs", &self.outputs())
            .finish()
    }
}

impl Pipeline {
    /// Starts a pipeline definition.
    pub fn builder(name: impl Into<String>) -> PipelineBuilder {
        PipelineBuilder {
            name: name.into(),
            stages: Vec::new(),
            router: None,
            tails: Vec::new(),
            outputs: Vec::new(),
            policies: Vec::new(),
            batching: Batching::fixed(64),
            workers: None,
            max_in_flight: None,
            order: OutputOrder::Preserve,
            lineage: None,
            problems: Vec::new(),
        }
    }

    /// The pipeline's name.
    pub fn name(&self) -> &str {
        &self.def.name
    }

    /// Every stage name in pipeline order: the stages, the router, then each bucket's stages.
    pub fn stages(&self) -> Vec<&str> {
        self.def.slots.iter().map(|(name, _)| &**name).collect()
    }

    /// The output buckets, `default` included, sorted.
    pub fn outputs(&self) -> Vec<&str> {
        self.def.outputs.iter().map(|b| &**b).collect()
    }

    /// The policy that applies to `stage`.
    pub fn policy(&self, stage: &str) -> Option<&Policy> {
        let main = self.def.stages.iter().chain(self.def.tails.values().flatten());
        main.map(|s| (&s.name, &s.policy))
            .chain(self.def.router.iter().map(|r| (&r.name, &r.policy)))
            .find(|(name, _)| &***name == stage)
            .map(|(_, policy)| policy)
    }

    /// Runs the pipeline over payloads (each wrapped as a fresh [`Item`]) and collects every
    /// bucket. On a halt the error carries the batches that completed before the failure.
    pub fn run(&self, payloads: impl IntoIterator<Item = Value>, ctx: RunContext) -> Result<RunOutput, PipelineError> {
        self.run_items(Item::wrap_many(payloads), ctx)
    }

    /// Runs the pipeline over items that already have ids.
    pub fn run_items(
        &self,
        items: impl IntoIterator<Item = Item>,
        ctx: RunContext,
    ) -> Result<RunOutput, PipelineError> {
        let items: Vec<Item> = items.into_iter().collect();
        self.stream(items, ctx)?.collect_output()
    }

    /// Starts a run and hands back its results as a lazy stream of routed items. The input
    /// is read on a thread of the run, only as fast as the stream is consumed (plus
    /// `max_in_flight` batches).
    pub fn stream<I>(&self, items: I, ctx: RunContext) -> Result<RunStream, PipelineError>
    where
        I: IntoIterator<Item = Item>,
        I::IntoIter: Send + 'static,
    {
        RunStream::start(self.def.clone(), items.into_iter(), ctx)
    }
}

/// Builds a [`Pipeline`]; every mistake is reported by [`build`](Self::build) at once.
pub struct PipelineBuilder {
    name: String,
    stages: Vec<Stage>,
    router: Option<Router>,
    tails: Vec<(String, Stage)>,
    outputs: Vec<String>,
    policies: Vec<(String, Policy)>,
    batching: Batching,
    workers: Option<usize>,
    max_in_flight: Option<usize>,
    order: OutputOrder,
    lineage: Option<Arc<dyn LineagePort>>,
    problems: Vec<String>,
}

impl PipelineBuilder {
    /// Appends a stage (before the router; use [`then_in`](Self::then_in) after it).
    pub fn stage(mut self, stage: Stage) -> Self {
        if self.router.is_some() {
            self.problems
                .push(format!("stage '{}' comes after the router: name the bucket it serves with then_in", stage.name));
        }
        self.stages.push(stage);
        self
    }

    /// Sets the router that ends the main chain. Each of its buckets must be declared with
    /// [`output`](Self::output), so a misspelt bucket is caught here, not in production.
    pub fn router(mut self, router: Router) -> Self {
        if self.router.is_some() {
            self.problems.push(format!("a pipeline has at most one router; '{}' is the second", router.name));
        }
        self.router = Some(router);
        self
    }

    /// Appends a stage that only items routed to `bucket` go through (after the router).
    pub fn then_in(mut self, bucket: impl Into<String>, stage: Stage) -> Self {
        self.tails.push((bucket.into(), stage));
        self
    }

    /// Declares an output bucket; it appears in every run's output, even when empty.
    pub fn output(mut self, bucket: impl Into<String>) -> Self {
        self.outputs.push(bucket.into());
        self
    }

    /// Sets the error policy of `stage` (a stage or router name, or `*` for every stage
    /// without its own).
    pub fn on_error(mut self, stage: impl Into<String>, policy: Policy) -> Self {
        self.policies.push((stage.into(), policy));
        self
    }

    /// How input is cut into batches (default: 64 items a batch).
    pub fn batching(mut self, batching: Batching) -> Self {
        self.batching = batching;
        self
    }

    /// Shorthand for [`Batching::fixed`].
    pub fn batch_size(self, size: usize) -> Self {
        self.batching(Batching::fixed(size))
    }

    /// Worker threads per run (default: the machine's available parallelism).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = Some(workers);
        self
    }

    /// Most batches out at once, being processed or waiting to be handed back (default:
    /// twice the workers).
    pub fn max_in_flight(mut self, max_in_flight: usize) -> Self {
        self.max_in_flight = Some(max_in_flight);
        self
    }

    /// The order results are handed back in (default: input order).
    pub fn output_order(mut self, order: OutputOrder) -> Self {
        self.order = order;
        self
    }

    /// Reports every run to `lineage`: START when it begins, then COMPLETE (with the
    /// session, item and batch counts and each bucket's count), FAIL (with the error) or
    /// ABORT (the stream was dropped early), all under one run id. A sink that fails is
    /// logged as a warning and does not fail the run: the scored items matter more than
    /// their lineage record.
    pub fn lineage(mut self, lineage: Arc<dyn LineagePort>) -> Self {
        self.lineage = Some(lineage);
        self
    }

    /// Checks the definition and builds the pipeline.
    pub fn build(self) -> Result<Pipeline, PipelineError> {
        let mut problems = self.problems;
        if self.name.trim().is_empty() {
            problems.push("the pipeline needs a name".into());
        }
        let mut outputs: BTreeSet<Arc<str>> = self.outputs.iter().map(|b| Arc::from(b.as_str())).collect();
        let default_bucket: Arc<str> = DEFAULT_BUCKET.into();
        outputs.insert(default_bucket.clone());

        let mut names: Vec<&str> = self.stages.iter().map(|s| &*s.name).collect();
        names.extend(self.router.iter().map(|r| &*r.name));
        names.extend(self.tails.iter().map(|(_, s)| &*s.name));
        for (i, name) in names.iter().enumerate() {
            if name.trim().is_empty() || *name == ANY_STAGE {
                problems.push(format!("'{name}' cannot name a stage"));
            } else if names[..i].contains(name) {
                problems.push(format!("two stages are called '{name}'"));
            }
        }
        if let Some(router) = &self.router {
            for bucket in router.buckets() {
                if !outputs.contains(bucket) {
                    problems
                        .push(format!("router '{}' sends to '{bucket}', which is not a declared output", router.name));
                }
            }
        }
        for (bucket, stage) in &self.tails {
            let served = self.router.as_ref().is_some_and(|r| r.buckets().any(|b| b == bucket));
            if !served && bucket != DEFAULT_BUCKET {
                problems.push(format!("stage '{}' follows bucket '{bucket}', which no router sends to", stage.name));
            }
        }
        for (stage, policy) in &self.policies {
            if stage != ANY_STAGE && !names.contains(&stage.as_str()) {
                problems.push(format!("a policy names stage '{stage}', which does not exist"));
            }
            let (_, last) = policy.attempts();
            if let Policy::Retry { max_attempts: 0, .. } = policy {
                problems.push(format!("the retry policy of '{stage}' needs at least one attempt"));
            }
            if matches!(last, Policy::Retry { .. }) {
                problems.push(format!("the retry policy of '{stage}' cannot end in another retry"));
            }
            if let Policy::Route(bucket) = last {
                if !outputs.contains(bucket.as_str()) {
                    problems
                        .push(format!("the policy of '{stage}' routes to '{bucket}', which is not a declared output"));
                }
            }
        }
        if let Some(problem) = self.batching.problem() {
            problems.push(problem.into());
        }
        if self.workers == Some(0) {
            problems.push("a run needs at least one worker".into());
        }
        if self.max_in_flight == Some(0) {
            problems.push("max_in_flight must be at least 1".into());
        }
        if !problems.is_empty() {
            return Err(PipelineError::Definition { pipeline: self.name, message: problems.join("; ") });
        }

        // The last policy given for a name wins, so a later on_error overrides an earlier one.
        let policy_of = |name: &str| -> Policy {
            let find = |key: &str| self.policies.iter().rev().find(|(s, _)| s == key).map(|(_, p)| p.clone());
            find(name).or_else(|| find(ANY_STAGE)).unwrap_or_default()
        };
        let mut slots = Vec::new();
        let stages: Vec<StageRt> = self
            .stages
            .into_iter()
            .map(|s| {
                let policy = policy_of(&s.name);
                StageRt::new(s, policy, &mut slots)
            })
            .collect();
        let mut router_slot = None;
        if let Some(router) = &self.router {
            router_slot = Some(slots.len());
            slots.push((router.name.clone(), "router"));
        }
        let mut tails: HashMap<Arc<str>, Vec<StageRt>> = HashMap::new();
        for (bucket, stage) in self.tails {
            let policy = policy_of(&stage.name);
            tails.entry(bucket.into()).or_default().push(StageRt::new(stage, policy, &mut slots));
        }
        let router = self.router.zip(router_slot).map(|(r, index)| RouterRt {
            policy: policy_of(&r.name),
            name: r.name,
            routes: r.routes,
            index,
        });
        let workers =
            self.workers.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
        Ok(Pipeline {
            def: Arc::new(Definition {
                name: self.name.into(),
                stages,
                router,
                tails,
                outputs,
                default_bucket,
                batching: self.batching,
                workers,
                max_in_flight: self.max_in_flight.unwrap_or(workers * 2),
                order: self.order,
                lineage: self.lineage,
                slots,
            }),
        })
    }
}
