//! A test subscriber sees a span for every run, batch and stage, each opened and
//! closed, plus events for failures and cache writes.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use serde_json::json;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;
use wharf_pipeline::{FeatureCache, Item, Pipeline, Router, RunContext, Stage, StageError};

#[derive(Debug, Clone, Default)]
struct SpanRecord {
    name: String,
    fields: BTreeMap<String, String>,
    closed: bool,
}

#[derive(Debug, Clone)]
struct EventRecord {
    level: Level,
    fields: BTreeMap<String, String>,
}

/// Records every span (with its fields, and whether it closed) and every event.
#[derive(Clone, Default)]
struct Recorder {
    spans: Arc<Mutex<Vec<(Id, SpanRecord)>>>,
    events: Arc<Mutex<Vec<EventRecord>>>,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().to_string(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut record = SpanRecord { name: attrs.metadata().name().to_string(), ..Default::default() };
        attrs.record(&mut Fields(&mut record.fields));
        self.spans.lock().expect("not poisoned").push((id.clone(), record));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut spans = self.spans.lock().expect("not poisoned");
        if let Some((_, record)) = spans.iter_mut().rev().find(|(i, r)| i == id && !r.closed) {
            values.record(&mut Fields(&mut record.fields));
        }
    }

    fn on_close(&self, id: Id, _: Context<'_, S>) {
        let mut spans = self.spans.lock().expect("not poisoned");
        if let Some((_, record)) = spans.iter_mut().rev().find(|(i, r)| *i == id && !r.closed) {
            record.closed = true;
        }
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.events.lock().expect("not poisoned").push(EventRecord { level: *event.metadata().level(), fields });
    }
}

impl Recorder {
    fn spans(&self, name: &str) -> Vec<SpanRecord> {
        self.spans
            .lock()
            .expect("not poisoned")
            .iter()
            .filter(|(_, r)| r.name == name)
            .map(|(_, r)| r.clone())
            .collect()
    }
}

fn pipeline() -> Pipeline {
    Pipeline::builder("traced")
        .stage(Stage::map("check", |item: &Item, _: &RunContext| {
            if item.payload == json!(99) {
                Err(StageError::new("ninety-nine"))
            } else {
                Ok(item.payload.clone())
            }
        }))
        .stage(Stage::batch("echo", |items: &[Item], _: &RunContext| {
            Ok(items.iter().map(|i| i.payload.clone()).collect())
        }))
        .router(Router::new("route").route("big", |i, _| i.payload.as_i64() > Some(3)))
        .output("big")
        .batch_size(3)
        .workers(2)
        .build()
        .expect("valid")
}

#[test]
fn spans_cover_run_batch_and_stage() {
    let recorder = Recorder::default();
    let subscriber = tracing_subscriber::registry().with(recorder.clone());
    tracing::subscriber::with_default(subscriber, || {
        pipeline().run((1..=7).map(|n| json!(n)), RunContext::new().session("traced-session")).expect("runs");
    });

    let runs = recorder.spans("pipeline.run");
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run.fields.get("pipeline").map(String::as_str), Some("traced"));
    assert_eq!(run.fields.get("session_id").map(String::as_str), Some("traced-session"));
    assert_eq!(run.fields.get("input_count").map(String::as_str), Some("7"));
    assert_eq!(run.fields.get("batches").map(String::as_str), Some("3"));

    let mut batches: Vec<(String, String)> = recorder
        .spans("pipeline.batch")
        .iter()
        .map(|b| (b.fields["batch_ref"].clone(), b.fields["batch_size"].clone()))
        .collect();
    batches.sort();
    assert_eq!(batches, [("1".into(), "3".into()), ("2".into(), "3".into()), ("3".into(), "1".into())]);

    let stages = recorder.spans("pipeline.stage");
    assert_eq!(stages.len(), 9, "three stages (the router included) in each of three batches");
    for (stage, kind) in [("check", "item"), ("echo", "batch"), ("route", "router")] {
        let matching = stages.iter().filter(|s| s.fields["stage"] == stage && s.fields["kind"] == kind).count();
        assert_eq!(matching, 3, "stage {stage}");
    }
    let all = recorder.spans.lock().expect("not poisoned").clone();
    assert!(all.iter().all(|(_, s)| s.closed), "every span opened was closed: {all:?}");
}

#[test]
fn failures_and_cache_work_are_reported() {
    let recorder = Recorder::default();
    let subscriber = tracing_subscriber::registry().with(recorder.clone());
    tracing::subscriber::with_default(subscriber, || {
        let failed = pipeline().run([json!(1), json!(99)], RunContext::new());
        assert!(failed.is_err());
        let cache = FeatureCache::new("traced-cache");
        cache.put_many((0..5).map(|i| (i.to_string(), i)));
        cache.reload((0..3).map(|i| Ok::<_, String>((i.to_string(), i)))).expect("reloads");
    });
    let events = recorder.events.lock().expect("not poisoned").clone();
    let failure =
        events.iter().find(|e| e.level == Level::WARN && e.fields.get("stage").map(String::as_str) == Some("check"));
    assert!(failure.is_some_and(|e| e.fields["error"] == "ninety-nine"), "{events:?}");
    assert!(events.iter().any(|e| e.level == Level::ERROR && e.fields["message"] == "run halted"));
    assert!(events.iter().any(|e| e.fields.get("count").map(String::as_str) == Some("5")));
    let reloads = recorder.spans("cache.reload");
    assert_eq!(reloads.len(), 1);
    assert_eq!(reloads[0].fields.get("rows").map(String::as_str), Some("3"));
    assert!(recorder.spans("pipeline.run").iter().all(|s| s.closed), "a halted run's span closes too");
}
