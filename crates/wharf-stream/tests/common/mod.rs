//! Fixtures shared by the integration tests: a sensor-like stream and a model trained on
//! its windowed features.
#![allow(dead_code)]

use std::time::Duration;

use wharf_core::{Column, CsvOptions, Dataset, Frame, Model, Trainer};
use wharf_stream::{StreamOptions, WindowSpec};

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
