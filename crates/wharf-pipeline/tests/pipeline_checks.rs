//! The pipeline engine's behaviour, one test (or a few) per promise: items and contexts,
//! definitions, item and batch stages, routers, failure policies, back-pressure, batching,
//! streams and the feature cache.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use wharf_pipeline::{
    Batching, CacheError, FeatureCache, Item, Outcome, OutputOrder, Pipeline, PipelineError, Policy, Router,
    RunContext, Stage, StageError, StageErrorKind,
};

fn int(item: &Item) -> i64 {
    item.payload.as_i64().unwrap_or(i64::MIN)
}

fn ints(values: Vec<&Value>) -> Vec<i64> {
    values.into_iter().map(|v| v.as_i64().unwrap_or(i64::MIN)).collect()
}

fn numbers(range: std::ops::RangeInclusive<i64>) -> Vec<Value> {
    range.map(|i| json!(i)).collect()
}

/// A batch stage multiplying every payload by `factor`.
fn times(name: &str, factor: i64) -> Stage {
    Stage::batch(name, move |items: &[Item], _: &RunContext| Ok(items.iter().map(|i| json!(int(i) * factor)).collect()))
}

#[test]
fn wrapped_items_have_rising_ids_and_updates_keep_identity() {
    let items = Item::wrap_many(numbers(1..=5));
    assert_eq!(items.len(), 5);
    assert!(items.windows(2).all(|w| w[0].id < w[1].id), "ids rise in input order");
    assert!(items.iter().all(|i| i.meta.is_empty()));
    let other = Item::wrap(json!("x"));
    assert!(items.iter().all(|i| i.id != other.id), "ids are unique");

    let mut item = items[2].clone();
    item.put_meta("a", 1);
    let id = item.id;
    let mut updated = item.with_payload(json!("new"));
    assert_eq!((updated.id, &updated.payload, updated.meta.get("a")), (id, &json!("new"), Some(&json!(1))));
    updated.merge_meta(json!({"b": 2, "a": 3}).as_object().cloned().unwrap_or_default());
    assert_eq!(updated.meta.get("a"), Some(&json!(3)));
    assert_eq!(updated.meta.get("b"), Some(&json!(2)));
}

#[test]
fn context_always_has_a_session_and_stages_read_its_metadata() {
    let a = RunContext::new();
    let b = RunContext::new();
    assert!(a.session_id().starts_with("session-") && a.session_id().len() > "session-".len());
    assert_ne!(a.session_id(), b.session_id());
    assert_eq!(RunContext::new().session("mine").session_id(), "mine");
    assert!(!RunContext::new().session("  ").session_id().trim().is_empty(), "a blank id is replaced");

    let seen = |name: &str| {
        Stage::map(name, |item: &Item, ctx: &RunContext| {
            let mut trail = item.payload.as_array().cloned().unwrap_or_default();
            trail.push(json!([ctx.stage(), ctx.get("model_id"), ctx.session_id()]));
            Ok(Value::Array(trail))
        })
    };
    let pipeline = Pipeline::builder("ctx").stage(seen("first")).stage(seen("second")).build().expect("valid");
    let ctx = RunContext::new().session("s-1").meta("model_id", "m-7");
    let out = pipeline.run([json!([])], ctx).expect("runs");
    assert_eq!(out.session_id, "s-1");
    assert_eq!(out.payloads("default"), [&json!([["first", "m-7", "s-1"], ["second", "m-7", "s-1"]])]);
}

#[test]
fn definition_exposes_name_stages_outputs_and_policies() {
    let pipeline = Pipeline::builder("scoring")
        .stage(times("a", 1))
        .stage(times("b", 1))
        .router(Router::new("r").route("high", |_, _| true))
        .output("high")
        .output("low")
        .on_error("a", Policy::Skip)
        .on_error("*", Policy::Mark)
        .build()
        .expect("valid");
    assert_eq!(pipeline.name(), "scoring");
    assert_eq!(pipeline.stages(), ["a", "b", "r"]);
    assert_eq!(pipeline.outputs(), ["default", "high", "low"]);
    assert!(matches!(pipeline.policy("a"), Some(Policy::Skip)), "by name first");
    assert!(matches!(pipeline.policy("b"), Some(Policy::Mark)), "then `*`");
    let plain = Pipeline::builder("plain").stage(times("a", 1)).build().expect("valid");
    assert!(matches!(plain.policy("a"), Some(Policy::Halt)), "then halt");
    assert_eq!(plain.outputs(), ["default"], "default always exists");
}

#[test]
fn item_stage_outcomes_fan_out_and_caught_panics() {
    let step = Stage::step("step", |item: &Item, _: &RunContext| match item.payload.as_str() {
        Some("emit") => Ok(Outcome::Emit(json!("emitted"))),
        Some("skip") => Ok(Outcome::Skip("filtered".into())),
        Some("route") => Ok(Outcome::Route("special".into(), json!("routed"))),
        Some("many") => Ok(Outcome::Many(vec![json!(10), json!(20), json!(30)])),
        Some("fail") => Err(StageError::new("bad item")),
        _ => panic!("handler blew up"),
    });
    let pipeline = Pipeline::builder("outcomes")
        .stage(step)
        .output("special")
        .output("errors")
        .on_error("step", Policy::route("errors"))
        .build()
        .expect("valid");
    let input = Item::wrap_many(["emit", "skip", "route", "many", "fail", "boom"].map(|s| json!(s)));
    let many_id = input[3].id;
    let out = pipeline.run_items(input, RunContext::new()).expect("a panic does not crash the run");

    assert_eq!(out.payloads("special"), [&json!("routed")]);
    let default = out.bucket("default");
    assert_eq!(
        default.iter().map(|i| &i.payload).collect::<Vec<_>>(),
        [&json!("emitted"), &json!(10), &json!(20), &json!(30)]
    );
    let children = &default[1..];
    assert!(children.iter().all(|c| c.parent_id() == Some(many_id) && c.id != many_id));
    assert!(children.windows(2).all(|w| w[0].id != w[1].id), "children get fresh ids");

    let errors = out.bucket("errors");
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0].error(), Some("bad item"));
    assert!(errors[1].error().is_some_and(|e| e.contains("panicked") && e.contains("handler blew up")));
    assert_eq!(errors[1].meta.get("error_stage"), Some(&json!("step")));
    let stats = out.stats.stage("step").expect("counted");
    assert_eq!((stats.items_in, stats.skipped, stats.failed, stats.routed), (6, 1, 2, 3));
}

#[test]
fn batch_stage_gets_batches_and_a_wrong_count_is_an_error() {
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let seen = sizes.clone();
    let recording = Stage::batch("x3", move |items: &[Item], _: &RunContext| {
        seen.lock().map_err(|_| "poisoned")?.push(items.len());
        Ok(items.iter().map(|i| json!(int(i) * 3)).collect())
    });
    let pipeline = Pipeline::builder("batches").stage(recording).batch_size(3).workers(1).build().expect("valid");
    let out = pipeline.run(numbers(1..=7), RunContext::new()).expect("runs");
    assert_eq!(ints(out.payloads("default")), [3, 6, 9, 12, 15, 18, 21]);
    assert_eq!(*sizes.lock().expect("not poisoned"), [3, 3, 1]);

    let short = || {
        Stage::batch("short", |items: &[Item], _: &RunContext| {
            Ok(items.iter().skip(1).map(|i| i.payload.clone()).collect())
        })
    };
    let halting = Pipeline::builder("short").stage(short()).batch_size(3).build().expect("valid");
    match halting.run(numbers(1..=3), RunContext::new()) {
        Err(PipelineError::Halted { stage, item, reason, .. }) => {
            assert_eq!((stage.as_str(), item), ("short", None));
            assert_eq!(reason.kind(), StageErrorKind::WrongCount);
            assert_eq!(reason.message(), "returned 2 results for 3 items");
        }
        other => panic!("expected a halt, got {other:?}"),
    }
    let skipping =
        Pipeline::builder("short").stage(short()).batch_size(3).on_error("short", Policy::Skip).build().expect("valid");
    let out = skipping.run(numbers(1..=3), RunContext::new()).expect("skip keeps the run going");
    assert!(out.is_empty(), "no item is passed on from a batch with the wrong count");
    assert_eq!(out.stats.stage("short").map(|s| (s.failed, s.skipped)), Some((3, 3)));
}

#[test]
fn router_first_match_wins_and_keeps_order() {
    let pipeline = Pipeline::builder("route")
        .router(Router::new("size").route("high", |i, _| int(i) >= 5).route("low", |_, _| true))
        .output("high")
        .output("low")
        .batch_size(2)
        .workers(2)
        .build()
        .expect("valid");
    let out = pipeline.run([1, 3, 5, 7, 2, 8].map(|n| json!(n)), RunContext::new()).expect("runs");
    assert_eq!(ints(out.payloads("high")), [5, 7, 8]);
    assert_eq!(ints(out.payloads("low")), [1, 3, 2]);

    let overlapping = Pipeline::builder("overlap")
        .router(Router::new("r").route("high", |i, _| int(i) > 5).route("low", |i, _| int(i) > 0))
        .output("high")
        .output("low")
        .build()
        .expect("valid");
    let out = overlapping.run([6, 3, 0, 9].map(|n| json!(n)), RunContext::new()).expect("runs");
    assert_eq!(ints(out.payloads("high")), [6, 9], "6 matches both; the first route wins");
    assert_eq!(ints(out.payloads("low")), [3]);
    assert_eq!(ints(out.payloads("default")), [0], "unmatched goes to default");
}

#[test]
fn stages_follow_a_router_per_bucket() {
    let pipeline = Pipeline::builder("tails")
        .router(Router::new("parity").route("even", |i, _| int(i) % 2 == 0))
        .output("even")
        .then_in("even", times("halve_even", 100))
        .then_in("default", times("odd_x10", 10))
        .build()
        .expect("valid");
    let out = pipeline.run(numbers(1..=5), RunContext::new()).expect("runs");
    assert_eq!(ints(out.payloads("even")), [200, 400]);
    assert_eq!(ints(out.payloads("default")), [10, 30, 50]);
}

#[test]
fn chained_stages_and_empty_input() {
    let plus_ten = Stage::map("plus_ten", |i: &Item, _: &RunContext| Ok(json!(int(i) + 10)));
    let pipeline = Pipeline::builder("chain")
        .stage(times("double", 2))
        .stage(plus_ten)
        .router(Router::new("r").route("high", |i, _| int(i) > 100))
        .output("high")
        .build()
        .expect("valid");
    let out = pipeline.run(numbers(1..=3), RunContext::new()).expect("runs");
    assert_eq!(ints(out.payloads("default")), [12, 14, 16]);

    let empty = pipeline.run(Vec::new(), RunContext::new()).expect("empty input succeeds");
    assert_eq!(empty.counts().into_iter().collect::<Vec<_>>(), [("default", 0), ("high", 0)]);
}

#[test]
fn undeclared_router_destination_is_rejected_at_build() {
    let built = Pipeline::builder("typo").router(Router::new("r").route("hihg", |_, _| true)).output("high").build();
    match built {
        Err(PipelineError::Definition { message, .. }) => assert!(message.contains("'hihg'"), "{message}"),
        other => panic!("expected a definition error, got {other:?}"),
    }
    let declared = Pipeline::builder("ok")
        .router(Router::new("r").route("high", |i, _| int(i) > 1).route("low", |_, _| true))
        .output("high")
        .output("low")
        .build()
        .expect("valid");
    let out = declared.run(numbers(1..=3), RunContext::new()).expect("runs");
    assert_eq!(out.buckets.keys().collect::<Vec<_>>(), ["default", "high", "low"]);

    // A handler routing to an undeclared bucket fails that item (under its policy).
    let stray = Stage::step("stray", |_: &Item, _: &RunContext| Ok(Outcome::Route("nowhere".into(), json!(0))));
    let pipeline = Pipeline::builder("stray").stage(stray).build().expect("valid");
    match pipeline.run(numbers(1..=1), RunContext::new()) {
        Err(PipelineError::Halted { reason, .. }) => assert_eq!(reason.kind(), StageErrorKind::UnknownBucket),
        other => panic!("expected a halt, got {other:?}"),
    }
    // Other definition mistakes are caught together.
    let bad = Pipeline::builder("bad")
        .stage(times("a", 1))
        .on_error("nope", Policy::Skip)
        .on_error("a", Policy::route("missing"))
        .batch_size(0)
        .build();
    let message = bad.err().map(|e| e.to_string()).unwrap_or_default();
    for part in ["'nope'", "'missing'", "batch size"] {
        assert!(message.contains(part), "{message} should mention {part}");
    }
}

fn failing_on(word: &'static str) -> Stage {
    Stage::map("check", move |item: &Item, _: &RunContext| {
        if item.payload == json!(word) {
            Err(StageError::new(format!("cannot take '{word}'")))
        } else {
            Ok(item.payload.clone())
        }
    })
}

#[test]
fn item_failure_skip_drops_it_and_halt_stops_the_run() {
    let input = || ["ok", "fail", "also_ok"].map(|s| json!(s));
    let skipping =
        Pipeline::builder("skip").stage(failing_on("fail")).on_error("check", Policy::Skip).build().expect("valid");
    let out = skipping.run(input(), RunContext::new()).expect("runs");
    assert_eq!(out.payloads("default"), [&json!("ok"), &json!("also_ok")]);
    assert_eq!(out.stats.stage("check").map(|s| s.skipped), Some(1));

    let halting = Pipeline::builder("halt").stage(failing_on("fail")).batch_size(1).workers(1).build().expect("valid");
    let items = Item::wrap_many(input());
    let failing_id = items[1].id;
    match halting.run_items(items, RunContext::new()) {
        Err(error @ PipelineError::Halted { .. }) => {
            let text = error.to_string();
            assert!(text.contains("'check'") && text.contains("cannot take 'fail'"), "{text}");
            let PipelineError::Halted { item, batch, partial, .. } = error else { unreachable!() };
            assert_eq!((item, batch), (Some(failing_id), 2));
            assert_eq!(partial.payloads("default"), [&json!("ok")], "the batch before the failure");
        }
        other => panic!("expected a halt, got {other:?}"),
    }
}

#[test]
fn batch_failure_skip_succeeds_and_halt_errors() {
    let broken = || Stage::batch("broken", |_: &[Item], _: &RunContext| Err(StageError::new("backend down")));
    let skipping = Pipeline::builder("skip").stage(broken()).on_error("broken", Policy::Skip).build().expect("valid");
    let out = skipping.run(numbers(1..=3), RunContext::new()).expect("skip succeeds");
    assert!(out.is_empty());
    assert_eq!(out.stats.stage("broken").map(|s| s.failed), Some(3));

    let halting = Pipeline::builder("halt").stage(broken()).build().expect("valid");
    match halting.run(numbers(1..=3), RunContext::new()) {
        Err(PipelineError::Halted { stage, item, reason, .. }) => {
            assert_eq!((stage.as_str(), item, reason.message()), ("broken", None, "backend down"));
        }
        other => panic!("expected a halt, got {other:?}"),
    }
}

/// A batch executor that multiplies by 10 and fails every batch holding 7.
fn fails_on_seven() -> Stage {
    Stage::batch("exec", |items: &[Item], _: &RunContext| {
        if items.iter().any(|i| int(i) == 7) {
            return Err(StageError::new("seven is unlucky"));
        }
        Ok(items.iter().map(|i| json!(int(i) * 10)).collect())
    })
}

fn dispatch(policy: Policy) -> Pipeline {
    Pipeline::builder("dispatch")
        .stage(fails_on_seven())
        .output("failed")
        .on_error("exec", policy)
        .batch_size(3)
        .workers(2)
        .max_in_flight(2)
        .build()
        .expect("valid")
}

#[test]
fn dispatch_policies_halt_mark_replace() {
    match dispatch(Policy::Halt).run(numbers(1..=10), RunContext::new()) {
        Err(PipelineError::Halted { batch, partial, .. }) => {
            assert_eq!(batch, 3);
            assert_eq!(ints(partial.payloads("default")), [10, 20, 30, 40, 50, 60], "completed batches, in order");
        }
        other => panic!("expected a halt, got {other:?}"),
    }

    let out = dispatch(Policy::Mark).run(numbers(1..=10), RunContext::new()).expect("runs");
    let items = out.bucket("default");
    assert_eq!(items.len(), 10, "mark returns every item");
    for item in items {
        if (7..=9).contains(&int(item)) {
            assert_eq!(item.meta.get("skipped"), Some(&json!(true)));
            assert_eq!(item.error(), Some("seven is unlucky"));
        } else {
            assert!(int(item) % 10 == 0 && item.error().is_none());
        }
    }
    assert_eq!(ints(out.payloads("default"))[6..9], [7, 8, 9], "failed payloads unchanged");

    let replace = Policy::replace(|item, error| {
        item.clone().with_payload(json!({"was": item.payload, "error": error.message()}))
    });
    let out = dispatch(replace).run(numbers(7..=7), RunContext::new()).expect("runs");
    assert_eq!(out.payloads("default"), [&json!({"was": 7, "error": "seven is unlucky"})]);

    let out = dispatch(Policy::route("failed")).run(numbers(6..=8), RunContext::new()).expect("runs");
    assert_eq!(ints(out.payloads("failed")), [6, 7, 8]);
}

#[test]
fn retry_really_retries() {
    // A pipeline whose stage fails its first two calls, retried up to `attempts` calls.
    let flaky = |attempts: u32| {
        let calls = Arc::new(AtomicU32::new(0));
        let counter = calls.clone();
        let stage = Stage::batch("flaky", move |items: &[Item], _: &RunContext| {
            if counter.fetch_add(1, Ordering::SeqCst) < 2 {
                return Err(StageError::new("transient"));
            }
            Ok(items.iter().map(|i| json!(int(i) + 1)).collect())
        });
        let pipeline =
            Pipeline::builder("retry").stage(stage).on_error("flaky", Policy::retry(attempts, Policy::Halt)).build();
        (pipeline.expect("valid"), calls)
    };
    let (pipeline, calls) = flaky(3);
    let out = pipeline.run(numbers(1..=2), RunContext::new()).expect("the third call succeeds");
    assert_eq!(ints(out.payloads("default")), [2, 3]);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(out.stats.stage("flaky").map(|s| (s.calls, s.retries, s.failed)), Some((3, 2, 0)));

    let (too_few, calls) = flaky(2);
    assert!(matches!(too_few.run(numbers(1..=2), RunContext::new()), Err(PipelineError::Halted { .. })));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn bounded_in_flight_batches_and_ordered_results() {
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (r, p) = (running.clone(), peak.clone());
    let instrumented = Stage::batch("x10", move |items: &[Item], _: &RunContext| {
        let now = r.fetch_add(1, Ordering::SeqCst) + 1;
        p.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(5)); // give other batches the chance to overlap
        r.fetch_sub(1, Ordering::SeqCst);
        Ok(items.iter().map(|i| json!(int(i) * 10)).collect())
    });
    let pipeline = Pipeline::builder("bounded")
        .stage(instrumented)
        .batch_size(3)
        .workers(4)
        .max_in_flight(2)
        .build()
        .expect("valid");
    let out = pipeline.run(numbers(1..=10), RunContext::new()).expect("runs");
    assert_eq!(ints(out.payloads("default")), (1..=10).map(|i| i * 10).collect::<Vec<_>>());
    assert!(peak.load(Ordering::SeqCst) <= 2, "at most 2 batches at once, saw {}", peak.load(Ordering::SeqCst));
    assert_eq!(out.stats.batches, 4);
}

/// Items with the given ids, counting how many the pipeline has read.
fn counted(ids: impl Iterator<Item = u64> + Send + 'static) -> (Arc<AtomicUsize>, impl Iterator<Item = Item> + Send) {
    let read = Arc::new(AtomicUsize::new(0));
    let counter = read.clone();
    let items = ids.map(move |i| {
        counter.fetch_add(1, Ordering::SeqCst);
        Item::with_id(i, json!(i))
    });
    (read, items)
}

#[test]
fn input_is_read_no_faster_than_results_are_taken() {
    let (read, input) = counted(0..1000);
    let pipeline = Pipeline::builder("backpressure").batch_size(10).workers(2).max_in_flight(2).build().expect("valid");
    let mut stream = pipeline.stream(input, RunContext::new()).expect("starts");
    let first = stream.next().and_then(Result::ok).expect("an item");
    assert_eq!(first.item.id, 0);
    std::thread::sleep(Duration::from_millis(50)); // room to overrun, were the input unbounded
                                                   // One batch handed over, two in flight, one more read and waiting for a slot.
    let taken = read.load(Ordering::SeqCst);
    assert!(taken <= 40, "read {taken} items while the consumer held the stream");
    assert_eq!(stream.count(), 999, "the rest still arrives");
}

#[test]
fn batching_by_size_weight_and_key() {
    let sizes = |batches: Vec<Vec<Item>>| batches.iter().map(Vec::len).collect::<Vec<_>>();
    assert_eq!(sizes(Batching::fixed(3).split(Item::wrap_many(numbers(1..=7)))), [3, 3, 1]);
    assert_eq!(sizes(Batching::fixed(10).split(Item::wrap_many(numbers(1..=4)))), [4]);

    let weighted = Batching::weighted(50, |i| int(i) as u64);
    let batches = weighted.split(Item::wrap_many([10, 20, 30, 40, 50, 60, 5].map(|n| json!(n))));
    let weights: Vec<Vec<i64>> = batches.iter().map(|b| b.iter().map(int).collect()).collect();
    assert_eq!(weights, [vec![10, 20], vec![30], vec![40], vec![50], vec![60], vec![5]]);
    assert!(weights.iter().all(|b| b.iter().sum::<i64>() <= 50 || b.len() == 1));
    let all_fit = Batching::weighted(1000, |i| int(i) as u64).split(Item::wrap_many(numbers(1..=5)));
    assert_eq!(all_fit.len(), 1);

    let keyed = Batching::by_key(|i| i.payload.as_str().unwrap_or_default().to_string());
    let batches = keyed.split(Item::wrap_many(["a", "b", "a", "c", "b", "a"].map(|s| json!(s))));
    let keys: Vec<(String, usize)> =
        batches.iter().map(|b| (b[0].payload.as_str().unwrap_or_default().to_string(), b.len())).collect();
    assert_eq!(keys, [("a".into(), 3), ("b".into(), 2), ("c".into(), 1)]);

    // A run uses the strategy: one batch call per key.
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let counting = Stage::batch("count", move |items: &[Item], _: &RunContext| {
        c.fetch_add(1, Ordering::SeqCst);
        Ok(items.iter().map(|i| i.payload.clone()).collect())
    });
    let pipeline = Pipeline::builder("keyed")
        .stage(counting)
        .batching(Batching::by_key(|i| i.payload.as_str().unwrap_or_default().to_string()))
        .build()
        .expect("valid");
    let out = pipeline.run(["b", "a", "b"].map(|s| json!(s)), RunContext::new()).expect("runs");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(out.payloads("default"), [&json!("a"), &json!("b"), &json!("b")], "batches in key order");
}

#[test]
fn stream_preserves_order_lazily() {
    let pipeline = Pipeline::builder("stream")
        .stage(Stage::map("text", |i: &Item, _: &RunContext| Ok(json!(int(i).to_string()))))
        .batch_size(2)
        .workers(2)
        .build()
        .expect("valid");
    let texts: Vec<String> = pipeline
        .stream(Item::wrap_many(numbers(1..=5)), RunContext::new())
        .expect("starts")
        .map(|r| r.map(|routed| routed.item.payload.as_str().unwrap_or_default().to_string()))
        .collect::<Result<_, _>>()
        .expect("no failure");
    assert_eq!(texts, ["1", "2", "3", "4", "5"]);
}

#[test]
fn stream_as_completed_yields_in_completion_order() {
    // Batch 1 cannot finish until the consumer has received batch 2, so only completion
    // order can make progress; the timeout is a guard against hanging, not a measurement.
    let (gate_tx, gate_rx) = crossbeam_channel::bounded::<()>(1);
    let gated = Stage::batch("gated", move |items: &[Item], _: &RunContext| {
        if items.iter().any(|i| int(i) == 1) {
            gate_rx.recv_timeout(Duration::from_secs(30)).map_err(|_| "the gate never opened")?;
        }
        Ok(items.iter().map(|i| i.payload.clone()).collect())
    });
    let pipeline = Pipeline::builder("completed")
        .stage(gated)
        .batch_size(1)
        .workers(2)
        .max_in_flight(2)
        .output_order(OutputOrder::AsCompleted)
        .build()
        .expect("valid");
    let mut stream = pipeline.stream(Item::wrap_many(numbers(1..=2)), RunContext::new()).expect("starts");
    let first = stream.next().and_then(Result::ok).expect("an item");
    assert_eq!(first.item.payload, json!(2));
    gate_tx.send(()).expect("the stage waits");
    let second = stream.next().and_then(Result::ok).expect("an item");
    assert_eq!(second.item.payload, json!(1));
    assert!(stream.next().is_none());
}

#[test]
fn batch_timeout_is_a_batch_error_under_the_policy() {
    // The stuck batch blocks on a channel that is only closed when the test ends.
    let (_release, stuck) = crossbeam_channel::bounded::<()>(0);
    let slow = move || {
        let stuck = stuck.clone();
        Stage::batch("slow", move |items: &[Item], _: &RunContext| {
            if items.iter().any(|i| int(i) == 2) {
                let _ = stuck.recv();
            }
            Ok(items.iter().map(|i| i.payload.clone()).collect())
        })
        .timeout(Duration::from_secs(2))
    };
    let skipping = Pipeline::builder("timeout")
        .stage(slow())
        .on_error("slow", Policy::Skip)
        .batch_size(1)
        .workers(1)
        .build()
        .expect("valid");
    let out = skipping.run(numbers(1..=3), RunContext::new()).expect("a timeout does not crash the run");
    assert_eq!(ints(out.payloads("default")), [1, 3]);
    assert_eq!(out.stats.stage("slow").map(|s| s.skipped), Some(1));

    let halting = Pipeline::builder("timeout").stage(slow()).batch_size(1).workers(1).build().expect("valid");
    match halting.run(numbers(1..=3), RunContext::new()) {
        Err(PipelineError::Halted { reason, batch, partial, .. }) => {
            assert_eq!((reason.kind(), batch), (StageErrorKind::TimedOut, 2));
            assert_eq!(ints(partial.payloads("default")), [1]);
        }
        other => panic!("expected a halt, got {other:?}"),
    }
}

#[test]
fn cache_get_put_update_delete_bulk_select() {
    let cache: FeatureCache<i64> = FeatureCache::new("test");
    assert_eq!(cache.get("missing"), None);
    assert_eq!(cache.get_or_err("missing"), Err(CacheError::NotFound { cache: "test".into(), key: "missing".into() }));
    cache.put("key1", 1);
    assert_eq!(cache.get("key1").as_deref(), Some(&1));

    cache.put("counter", 0);
    assert_eq!(*cache.update("counter", |n| n + 1).expect("present"), 1);
    assert_eq!(*cache.update("counter", |n| n + 1).expect("present"), 2);
    assert!(matches!(cache.update("ghost", |n| n + 1), Err(CacheError::NotFound { .. })));
    assert_eq!(cache.get("ghost"), None, "a failed update writes nothing");

    assert_eq!(cache.delete("key1").as_deref(), Some(&1));
    assert_eq!(cache.get("key1"), None);

    assert_eq!(cache.put_many((0..100).map(|i| (format!("k{i}"), i))), 100);
    assert_eq!(cache.len(), 101);
    let mut selected: Vec<i64> = cache.select(|k, v| k.starts_with("k1") && *v < 15).iter().map(|(_, v)| **v).collect();
    selected.sort();
    assert_eq!(selected, [1, 10, 11, 12, 13, 14]);
}

#[test]
fn reads_do_not_wait_for_the_writer() {
    let cache = Arc::new(FeatureCache::new("locks"));
    cache.put("a", 1_i64);
    cache.put("b", 10_i64);
    // Inside `update` the writer lock is held; a reader on another thread must still get
    // through (it would deadlock here if reads took the writer's lock).
    let updated = cache
        .update("a", |old| {
            let reader = cache.clone();
            let seen = std::thread::scope(|s| s.spawn(move || reader.get("b").map(|v| *v)).join());
            old + seen.ok().flatten().unwrap_or(-1000)
        })
        .expect("present");
    assert_eq!(*updated, 11);
}

#[test]
fn reload_swaps_the_whole_table_atomically() {
    const ROWS: u64 = 500;
    let cache = Arc::new(FeatureCache::new("versions"));
    let rows = |version: u64| (0..ROWS).map(move |k| Ok::<_, String>((format!("row{k}"), version)));
    assert_eq!(cache.reload(rows(0)), Ok(ROWS as usize));

    let reloads = 30;
    std::thread::scope(|s| {
        for _ in 0..3 {
            let cache = cache.clone();
            s.spawn(move || {
                let mut last_generation = 0;
                loop {
                    let snapshot = cache.snapshot();
                    assert!(snapshot.generation() >= last_generation, "generations never go back");
                    last_generation = snapshot.generation();
                    let versions: Vec<u64> =
                        (0..ROWS).map(|k| snapshot.get(&format!("row{k}")).map(|v| *v).unwrap_or(u64::MAX)).collect();
                    assert!(versions.iter().all(|v| *v == versions[0]), "a mix of versions: {versions:?}");
                    assert_eq!(snapshot.len() as u64, ROWS);
                    if versions[0] == reloads {
                        break;
                    }
                }
            });
        }
        for version in 1..=reloads {
            assert_eq!(cache.reload(rows(version)), Ok(ROWS as usize));
        }
    });

    let failing = (0..ROWS).map(|k| if k == 250 { Err("disk error".to_string()) } else { Ok((format!("row{k}"), 99)) });
    assert_eq!(
        cache.reload(failing),
        Err(CacheError::Reload { cache: "versions".into(), row: 250, message: "disk error".into() })
    );
    assert_eq!(cache.get("row0").as_deref(), Some(&reloads), "the old table is kept");
    assert_eq!(cache.len() as u64, ROWS);
    assert_eq!(cache.generation(), reloads + 1);
}

#[test]
fn definition_mistakes_are_reported_at_build() {
    let message =
        |builder: wharf_pipeline::PipelineBuilder| builder.build().err().map(|e| e.to_string()).unwrap_or_default();
    let after_router = Pipeline::builder("p").router(Router::new("r")).stage(times("late", 1));
    assert!(message(after_router).contains("then_in"));
    let unknown_tail = Pipeline::builder("p").router(Router::new("r")).then_in("ghost", times("t", 1));
    assert!(message(unknown_tail).contains("'ghost'"));
    let nested =
        Pipeline::builder("p").stage(times("a", 1)).on_error("a", Policy::retry(2, Policy::retry(2, Policy::Halt)));
    assert!(message(nested).contains("another retry"));
    let duplicate = Pipeline::builder("p").stage(times("a", 1)).stage(times("a", 2));
    assert!(message(duplicate).contains("two stages are called 'a'"));
    assert!(message(Pipeline::builder("p").workers(0).max_in_flight(0)).contains("worker"));
}

#[test]
fn a_panicking_input_is_a_run_error_not_a_short_result() {
    let input = (0..10).map(|i| if i == 5 { panic!("input broke") } else { Item::with_id(i, json!(i)) });
    let pipeline = Pipeline::builder("input").batch_size(2).workers(1).build().expect("valid");
    let results: Vec<_> = pipeline.stream(input, RunContext::new()).expect("starts").collect();
    let (ok, failed): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
    assert_eq!(ok.len(), 4, "the two whole batches read before the panic");
    match failed.as_slice() {
        [Err(PipelineError::Runtime { message, .. })] => assert!(message.contains("input broke"), "{message}"),
        other => panic!("expected one runtime error, got {other:?}"),
    }
}

#[test]
fn dropping_a_stream_stops_reading_the_input() {
    /// Sets its flag when dropped: the run has let go of the input.
    struct Released(Arc<std::sync::atomic::AtomicBool>);
    impl Drop for Released {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let released = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let guard = Released(released.clone());
    let (read, endless) = counted(0..);
    let endless = endless.inspect(move |_| {
        let _held = &guard;
    });
    let pipeline = Pipeline::builder("endless").batch_size(5).workers(1).max_in_flight(1).build().expect("valid");
    let mut stream = pipeline.stream(endless, RunContext::new()).expect("starts");
    assert!(stream.next().is_some_and(|r| r.is_ok()));
    assert!(!released.load(Ordering::SeqCst), "the run still reads an endless input");
    drop(stream);
    // The input thread ends and drops the endless input; poll for it (a guard against a
    // hang, not a measurement).
    for _ in 0..3000 {
        if released.load(Ordering::SeqCst) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(released.load(Ordering::SeqCst), "the input was released once the stream was dropped");
    let read = read.load(Ordering::SeqCst);
    assert!(read <= 15, "read {read}: one batch handed over, one in flight, one waiting for a slot");
}

#[test]
fn a_router_failure_follows_the_router_policy() {
    let pipeline = Pipeline::builder("router-policy")
        .router(Router::new("r").route("even", |i, _| {
            assert!(int(i) != 3, "cannot route three");
            int(i) % 2 == 0
        }))
        .output("even")
        .output("errors")
        .on_error("r", Policy::route("errors"))
        .build()
        .expect("valid");
    let out = pipeline.run(numbers(1..=4), RunContext::new()).expect("runs");
    assert_eq!(ints(out.payloads("even")), [2, 4]);
    assert_eq!(ints(out.payloads("default")), [1]);
    assert_eq!(ints(out.payloads("errors")), [3]);
    assert!(out.bucket("errors")[0].error().is_some_and(|e| e.contains("cannot route three")));
    assert_eq!(out.stats.stage("r").map(|s| (s.items_in, s.items_out, s.failed)), Some((4, 3, 1)));
}

#[test]
fn batch_stage_can_fail_single_items() {
    let picky = Stage::batch_each("picky", |items: &[Item], _: &RunContext| {
        Ok(items
            .iter()
            .map(|i| if int(i) % 2 == 0 { Ok(json!(int(i) * 100)) } else { Err(StageError::new("odd")) })
            .collect())
    });
    let pipeline = Pipeline::builder("each").stage(picky).on_error("picky", Policy::Skip).build().expect("valid");
    let out = pipeline.run(numbers(1..=5), RunContext::new()).expect("runs");
    assert_eq!(ints(out.payloads("default")), [200, 400]);
    assert_eq!(out.stats.stage("picky").map(|s| (s.calls, s.failed, s.skipped)), Some((1, 3, 3)));
}

#[test]
fn runs_report_lineage_start_and_complete_or_fail() {
    use wharf_core::{FileLineage, LineageEventType};
    let dir = tempfile::tempdir().expect("a temp dir");
    let lineage = Arc::new(FileLineage::new(dir.path().join("lineage.jsonl")));
    let pipeline = Pipeline::builder("reported")
        .stage(failing_on("bad"))
        .router(Router::new("r").route("big", |i, _| i.payload.as_str() == Some("big")))
        .output("big")
        .lineage(lineage.clone())
        .build()
        .expect("valid");
    pipeline.run(["big", "small", "small"].map(|s| json!(s)), RunContext::new().session("s1")).expect("runs");
    assert!(pipeline.run([json!("bad")], RunContext::new()).is_err());
    let mut stream = pipeline.stream(Item::wrap_many(["a", "b"].map(|s| json!(s))), RunContext::new()).expect("starts");
    assert!(stream.next().is_some());
    drop(stream);

    let events = lineage.read_all().expect("readable");
    let kinds: Vec<LineageEventType> = events.iter().map(|e| e.event_type).collect();
    use LineageEventType::*;
    assert_eq!(kinds, [Start, Complete, Start, Fail, Start, Abort]);
    assert!(events.chunks(2).all(|pair| pair[0].run_id == pair[1].run_id && pair[0].name == "reported"));
    let complete = &events[1];
    assert_eq!(complete.metadata.get("session_id"), Some(&json!("s1")));
    assert_eq!(complete.metadata.get("items_in"), Some(&json!(3)));
    assert_eq!(complete.metadata.get("bucket.big"), Some(&json!(1)));
    assert_eq!(complete.metadata.get("bucket.default"), Some(&json!(2)));
    assert_eq!(complete.outputs, ["pipeline:reported/big", "pipeline:reported/default"]);
    assert!(events[3].metadata.get("error").and_then(Value::as_str).is_some_and(|e| e.contains("cannot take 'bad'")));
}
