//! Fixtures shared by the integration tests: a sensor-like stream and a model trained on
//! its windowed features, and the fixtures and checks the broker adapters' tests share.
#![allow(dead_code)]

use std::time::Duration;

use wharf_core::{Column, Frame, Model};
use wharf_ml::{CsvOptions, Dataset, Trainer};
use wharf_stream::{OnError, StreamOptions, StreamSink, WindowSpec};

pub const MINUTE: i64 = 60_000;

/// The window every test job uses: 10-minute trailing means of `x` per user and device,
/// two minutes of allowed lateness.
pub fn window() -> WindowSpec {
    WindowSpec::new(&["user", "device"], "ts", &["x"], 10 * MINUTE, 2 * MINUTE).expect("window spec")
}

pub fn options(batch_size: usize) -> StreamOptions {
    StreamOptions {
        batch_size,
        max_latency: Duration::from_millis(20),
        ids: vec!["user".into(), "device".into(), "ts".into()],
        window: Some(window()),
        // The tests count and report bad records rather than stop at the first (the
        // library's default is to stop).
        on_error: OnError::Skip,
        ..Default::default()
    }
}

/// A tiny deterministic generator (no dependency on a random crate's stream).
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Self {
        Lcg(seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407))
    }
    pub fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `n` JSON lines: users u0..u3 on two devices, an event every 20 s per entity, `x` high
/// while the user is "active" (alternating 15-minute phases). Every 97th record has a null
/// `x`; every 251st is 5 minutes late (beyond the allowed 2); line 1000 is not JSON.
pub fn stream_lines(n: usize) -> Vec<String> {
    let mut rng = Lcg::new(7);
    let mut lines = Vec::with_capacity(n);
    for i in 0..n {
        let entity = i % 8;
        let (user, device) = (format!("u{}", entity / 2), if entity % 2 == 0 { "phone" } else { "watch" });
        let mut ts = (i / 8) as i64 * 20_000 + entity as i64 * 1_000;
        let active = (ts / (15 * MINUTE)) % 2 == 1;
        let x = if active { 5.0 } else { 1.0 } + rng.next_f64() * 2.0 + entity as f64 * 0.1;
        if i % 251 == 250 {
            ts -= 5 * MINUTE;
        }
        let line = if i == 1000 {
            "{not json".to_string()
        } else if i % 97 == 96 {
            format!(r#"{{"user":"{user}","device":"{device}","ts":{ts},"x":null}}"#)
        } else {
            format!(r#"{{"user":"{user}","device":"{device}","ts":{ts},"x":{x}}}"#)
        };
        lines.push(line);
    }
    lines
}

/// A decision tree on `device` (categorical, one-hot encoded) and `x_avg`, labelled by the
/// phase: "active" when x_avg is high, or the other way round when `flipped` (a second
/// version that disagrees with the first on every record).
pub fn phase_model(flipped: bool) -> Model {
    let mut rng = Lcg::new(11);
    let (mut device, mut x_avg, mut label) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..400 {
        let high = i % 2 == 0;
        device.push(Some(if i % 3 == 0 { "phone" } else { "watch" }.to_string()));
        x_avg.push(if high { 5.0 } else { 1.0 } + rng.next_f64() * 2.0);
        label.push(Some(if high != flipped { "active" } else { "rest" }.to_string()));
    }
    let frame = Frame::from_columns(vec![
        ("device".into(), Column::Text(device)),
        ("x_avg".into(), Column::Numeric(x_avg)),
        ("label".into(), Column::Text(label)),
    ])
    .expect("frame");
    let options = CsvOptions { target: Some("label".into()), ..Default::default() };
    let data = Dataset::from_frame("fixture:phases", frame, &options).expect("dataset");
    Trainer::decision_tree().seed(3).fit(&data).expect("fit")
}

/// The model most tests score with.
pub fn model() -> Model {
    phase_model(false)
}

// --- Broker adapters (Redis, NATS): the same fixtures and checks for each. ---

/// The value of the variable naming a test broker, or `None` after printing a `skipped:`
/// line (a failure under `WHARF_TEST_REQUIRE_BACKENDS=1`).
pub fn broker(var: &str) -> Option<String> {
    match std::env::var(var).ok().filter(|v| !v.is_empty()) {
        Some(url) => Some(url),
        None if std::env::var("WHARF_TEST_REQUIRE_BACKENDS").as_deref() == Ok("1") => {
            panic!("{var} is not set but WHARF_TEST_REQUIRE_BACKENDS=1")
        }
        None => {
            // Straight to stderr, past libtest's capture, so the skip shows in the output.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "skipped: {var} not set (run cargo xtask test)");
            None
        }
    }
}

/// A stream name no other test or earlier run uses.
pub fn unique(test: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{test}-{nanos}")
}

/// An iris record with id `id`, of one of the three species by `id % 3`.
pub fn iris(id: usize) -> String {
    let (petal_length, petal_width) = [(1.4, 0.2), (4.5, 1.4), (5.8, 2.2)][id % 3];
    format!(
        r#"{{"id":{id},"sepal_length":5.8,"sepal_width":3.0,"petal_length":{petal_length},"petal_width":{petal_width}}}"#
    )
}

/// A decision tree on iris, for the broker tests.
pub fn iris_scorer() -> wharf_stream::FixedModel {
    use wharf_ml::{datasets, Trainer};
    let model = Trainer::decision_tree().fit(&datasets::iris()).expect("fit");
    wharf_stream::FixedModel::new(wharf_stream::ScoringModel::new("iris", 1, model))
}

/// Broker job options: small latency, an idle timeout that ends the job once drained.
pub fn broker_options(batch_size: usize) -> StreamOptions {
    StreamOptions {
        batch_size,
        max_latency: Duration::from_millis(50),
        idle_timeout: Some(Duration::from_millis(400)),
        ids: vec!["id".into()],
        on_error: OnError::Skip,
        ..Default::default()
    }
}

/// A result line as the job writes it, for commits made by hand.
pub fn result_line(id: usize, who: &str, key: &str) -> String {
    format!("{{\"id\":{id},\"prediction\":\"{who}\",\"key\":\"{key}\"}}\n")
}

/// The redelivery clause every broker pair must meet: `slow` and `fast` hold the same record
/// (`fast` got it again after `slow` went quiet: same key, a later attempt); `fast` commits
/// first, then `slow`. Both commits succeed and acknowledge, and the output holds one result,
/// `fast`'s (checked by the caller through `written`, which counts the output's results).
pub fn a_record_committed_twice_is_written_once(
    (slow, slow_batch): (&mut dyn StreamSink, &[wharf_stream::Delivery]),
    (fast, fast_batch): (&mut dyn StreamSink, &[wharf_stream::Delivery]),
    written: impl Fn() -> usize,
) {
    assert_eq!(slow_batch.len(), 1);
    assert_eq!(fast_batch.len(), 1);
    assert_eq!(slow_batch[0].key, fast_batch[0].key, "a redelivery keeps its key");
    assert!(fast_batch[0].attempt > slow_batch[0].attempt, "a redelivery counts its attempt");
    assert!(slow.exactly_once() && fast.exactly_once(), "paired sinks are exactly once");
    let key = &fast_batch[0].key;
    assert!(fast.write_acked(result_line(1, "fast", key).as_bytes(), fast_batch).expect("fast commit"));
    assert!(slow.write_acked(result_line(1, "slow", key).as_bytes(), slow_batch).expect("slow commit"));
    assert_eq!(written(), 1, "the second commit of the same record must not be stored");
}
