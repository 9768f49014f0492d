//! Event-time windowed features: trailing moving averages per entity, with a watermark
//! for late data.
//!
//! # The rule
//!
//! For an event of entity `k` (the values of the key fields, e.g. user + device) at event
//! time `t`, the feature `<field>_avg` is the mean of `field` over every *accepted* event of
//! `k` with event time in `[t - window, t]` (both ends included) that has arrived so far,
//! the event itself included. Events that arrive later do not change results already
//! emitted: a stream emits each result once.
//!
//! The **watermark** is the largest event time seen so far (over all entities) minus the
//! allowed lateness. An event whose time is *before* the watermark is late: it is dropped,
//! counted, and changes no state. An event exactly at the watermark is accepted. Events
//! older than `watermark - window` can never fall in a future event's window, so they are
//! evicted; the state therefore holds about `window + lateness` of events per entity.
//!
//! For events that arrive in event-time order, the result is the plain trailing moving
//! average a hand computation gives; the tests check exactly that.
//!
//! The state is serialisable ([`WindowState`]) and saved in each checkpoint, so a restarted
//! job computes the same features as an uninterrupted one. Values are stored as their bit
//! patterns, because a decimal round trip of a float may change its last bit.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use wharf_core::{json_type, Result, Row, WharfError};

/// What to average, over which window, keyed by what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowSpec {
    /// Fields whose values together name the entity (`User`, `Device`).
    pub keys: Vec<String>,
    /// The event-time field: milliseconds since the epoch, or an RFC 3339 timestamp.
    pub time_field: String,
    /// Numeric fields to average; each gives a feature `<field><suffix>`.
    pub fields: Vec<String>,
    /// Window length in milliseconds (the trailing window is `[t - window, t]`).
    pub window_ms: i64,
    /// How far behind the largest event time seen an event may be and still count.
    pub lateness_ms: i64,
    /// Appended to a field's name to name its average.
    pub suffix: String,
}

impl WindowSpec {
    /// A spec with the usual `_avg` suffix.
    pub fn new(
        keys: &[&str],
        time_field: &str,
        fields: &[&str],
        window_ms: i64,
        lateness_ms: i64,
    ) -> Result<WindowSpec> {
        let spec = WindowSpec {
            keys: keys.iter().map(|s| s.to_string()).collect(),
            time_field: time_field.to_string(),
            fields: fields.iter().map(|s| s.to_string()).collect(),
            window_ms,
            lateness_ms,
            suffix: "_avg".to_string(),
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Checks the lengths and that there is something to average.
    pub fn validate(&self) -> Result<()> {
        if self.window_ms <= 0 {
            return Err(WharfError::invalid("window", "the window length must be positive"));
        }
        if self.lateness_ms < 0 {
            return Err(WharfError::invalid("lateness", "the allowed lateness cannot be negative"));
        }
        if self.fields.is_empty() {
            return Err(WharfError::invalid("window.fields", "name at least one field to average"));
        }
        if self.time_field.trim().is_empty() {
            return Err(WharfError::invalid("window.time_field", "name the event-time field"));
        }
        Ok(())
    }

    /// The names of the features this spec adds (`x_avg`, …), in field order.
    pub fn output_names(&self) -> Vec<String> {
        self.fields.iter().map(|f| format!("{f}{}", self.suffix)).collect()
    }

    /// Every field an event must carry (non-null) to be windowed.
    pub fn required_fields(&self) -> Vec<String> {
        self.keys.iter().chain(std::iter::once(&self.time_field)).chain(&self.fields).cloned().collect()
    }
}

/// One accepted event in an entity's buffer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    t: i64,
    /// `f64::to_bits` of each field's value, in field order.
    bits: Vec<u64>,
}

/// The operator's state: what a checkpoint saves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowState {
    /// The largest event time accepted so far.
    pub max_event_time: Option<i64>,
    /// Late events dropped so far.
    pub late: u64,
    /// Per entity, the accepted events still inside a possible window, in time order.
    buffers: BTreeMap<String, VecDeque<Entry>>,
}

impl WindowState {
    /// How many events are buffered over all entities (for reports and tests).
    pub fn buffered(&self) -> usize {
        self.buffers.values().map(VecDeque::len).sum()
    }
}

/// What happened to one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Windowed {
    /// Accepted; the trailing means of the spec's fields, in field order.
    Means(Vec<f64>),
    /// Before the watermark: dropped.
    Late {
        /// The event's time.
        event_time: i64,
        /// The watermark it missed.
        watermark: i64,
    },
}

/// Trailing moving averages over event-time windows, keyed by entity. See the
/// [module documentation](self) for the exact rule.
#[derive(Debug, Clone)]
pub struct WindowedMeans {
    spec: WindowSpec,
    state: WindowState,
}

impl WindowedMeans {
    /// An operator with empty state.
    pub fn new(spec: WindowSpec) -> Result<WindowedMeans> {
        spec.validate()?;
        Ok(WindowedMeans { spec, state: WindowState::default() })
    }

    /// The spec.
    pub fn spec(&self) -> &WindowSpec {
        &self.spec
    }

    /// The state, to checkpoint.
    pub fn state(&self) -> &WindowState {
        &self.state
    }

    /// Replaces the state with one from a checkpoint.
    pub fn restore(&mut self, state: WindowState) -> Result<()> {
        let n = self.spec.fields.len();
        if let Some((key, _)) = self.state_entries(&state).find(|(_, e)| e.bits.len() != n) {
            return Err(WharfError::invalid(
                "checkpoint.window",
                format!("entity '{key}' has events with a different number of fields than the {n} averaged now"),
            ));
        }
        self.state = state;
        Ok(())
    }

    fn state_entries<'a>(&self, state: &'a WindowState) -> impl Iterator<Item = (&'a String, &'a Entry)> {
        state.buffers.iter().flat_map(|(k, q)| q.iter().map(move |e| (k, e)))
    }

    /// The current watermark: the largest event time seen minus the allowed lateness.
    pub fn watermark(&self) -> Option<i64> {
        self.state.max_event_time.map(|t| t.saturating_sub(self.spec.lateness_ms))
    }

    /// Adds one event of entity `key` at time `t` and returns its trailing means.
    pub fn push(&mut self, key: &str, t: i64, values: &[f64]) -> Windowed {
        if let Some(watermark) = self.watermark() {
            if t < watermark {
                self.state.late += 1;
                return Windowed::Late { event_time: t, watermark };
            }
        }
        let buffer = self.state.buffers.entry(key.to_string()).or_default();
        // After any equal times, so ties keep their arrival order.
        let at = buffer.partition_point(|e| e.t <= t);
        buffer.insert(at, Entry { t, bits: values.iter().map(|v| v.to_bits()).collect() });

        let from = t.saturating_sub(self.spec.window_ms);
        let mut sums = vec![0.0; values.len()];
        let mut count = 0usize;
        for entry in buffer.iter().filter(|e| e.t >= from && e.t <= t) {
            for (sum, bits) in sums.iter_mut().zip(&entry.bits) {
                *sum += f64::from_bits(*bits);
            }
            count += 1;
        }
        let means = sums.into_iter().map(|s| s / count as f64).collect();

        if self.state.max_event_time.is_none_or(|m| t > m) {
            self.state.max_event_time = Some(t);
            self.evict();
        }
        Windowed::Means(means)
    }

    /// Drops events no future window can include.
    fn evict(&mut self) {
        let Some(watermark) = self.watermark() else { return };
        let horizon = watermark.saturating_sub(self.spec.window_ms);
        self.state.buffers.retain(|_, buffer| {
            while buffer.front().is_some_and(|e| e.t < horizon) {
                buffer.pop_front();
            }
            !buffer.is_empty()
        });
    }

    /// Windows one record: reads its key, event time and fields, and on acceptance adds the
    /// `<field>_avg` features to it. Missing or mistyped fields are errors naming the field.
    pub fn apply(&mut self, row: &mut Row) -> Result<Windowed> {
        let key = entity_key(row, &self.spec.keys)?;
        let t = event_time(row, &self.spec.time_field)?;
        let values = self.spec.fields.iter().map(|f| number(row, f)).collect::<Result<Vec<f64>>>()?;
        let result = self.push(&key, t, &values);
        if let Windowed::Means(means) = &result {
            for (name, mean) in self.spec.output_names().into_iter().zip(means) {
                let value = serde_json::Number::from_f64(*mean).map(Value::Number).unwrap_or(Value::Null);
                row.insert(name, value);
            }
        }
        Ok(result)
    }
}

/// The entity a record belongs to: its key fields' values joined by a separator no value
/// is likely to contain.
pub fn entity_key(row: &Row, keys: &[String]) -> Result<String> {
    let mut parts = Vec::with_capacity(keys.len());
    for k in keys {
        match row.get(k) {
            Some(Value::String(s)) => parts.push(s.clone()),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => parts.push(v.to_string()),
            Some(other) => {
                return Err(WharfError::invalid(
                    k.clone(),
                    format!("a key must be text or a number, not {}", json_type(other)),
                ))
            }
            None => return Err(WharfError::invalid(k.clone(), "missing key field")),
        }
    }
    Ok(parts.join("\u{1f}"))
}

/// An event time in milliseconds: an integer (epoch milliseconds) or an RFC 3339 string.
pub fn event_time(row: &Row, field: &str) -> Result<i64> {
    match row.get(field) {
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite() && f.abs() < 9.0e15).map(|f| f as i64))
            .ok_or_else(|| WharfError::invalid(field, format!("event time {n} is out of range"))),
        Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s).map(|t| t.timestamp_millis()).map_err(|e| {
            WharfError::invalid(field, format!("'{s}' is not an RFC 3339 time or epoch milliseconds: {e}"))
        }),
        Some(other) => Err(WharfError::invalid(
            field,
            format!("an event time must be a number or a string, not {}", json_type(other)),
        )),
        None => Err(WharfError::invalid(field, "missing event-time field")),
    }
}

fn number(row: &Row, field: &str) -> Result<f64> {
    match row.get(field) {
        Some(Value::Number(n)) => n.as_f64().ok_or_else(|| WharfError::invalid(field, "not a finite number")),
        Some(other) => Err(WharfError::invalid(field, format!("expected a number, found {}", json_type(other)))),
        None => Err(WharfError::invalid(field, "missing field")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn means(result: Windowed) -> Vec<f64> {
        match result {
            Windowed::Means(m) => m,
            late => panic!("expected means, got {late:?}"),
        }
    }

    #[test]
    fn window_means_match_hand_computation() {
        // 10-minute trailing window, two entities interleaved, times in minutes.
        let spec = WindowSpec::new(&["user"], "t", &["x"], 10 * MIN, 0).expect("spec");
        let mut op = WindowedMeans::new(spec).expect("op");
        let events = [("a", 0, 1.0), ("b", 1, 100.0), ("a", 4, 3.0), ("a", 10, 8.0), ("b", 5, 200.0), ("a", 11, 4.0)];
        // By hand, for entity a: t=0 → {1} = 1; t=4 → {1,3} = 2; t=10 → {1,3,8} = 4 (0 is
        // inside [0,10]); t=11 → {3,8,4} = 5 (0 has left [1,11]).
        // Entity b: t=1 → 100; t=5 arrives after a's t=10, so the watermark (10, lateness 0)
        // makes it late.
        let mut got = Vec::new();
        for (user, minute, x) in events {
            got.push(op.push(user, minute * MIN, &[x]));
        }
        assert_eq!(means(got[0].clone()), vec![1.0]);
        assert_eq!(means(got[1].clone()), vec![100.0]);
        assert_eq!(means(got[2].clone()), vec![2.0]);
        assert_eq!(means(got[3].clone()), vec![4.0]);
        assert_eq!(got[4], Windowed::Late { event_time: 5 * MIN, watermark: 10 * MIN });
        assert_eq!(means(got[5].clone()), vec![5.0]);
        assert_eq!(op.state().late, 1);
    }

    #[test]
    fn allowed_lateness_accepts_out_of_order_events_up_to_the_watermark() {
        let spec = WindowSpec::new(&["user"], "t", &["x", "y"], 10 * MIN, 3 * MIN).expect("spec");
        let mut op = WindowedMeans::new(spec).expect("op");
        assert_eq!(means(op.push("a", 20 * MIN, &[2.0, 10.0])), vec![2.0, 10.0]);
        // Watermark 17: an event at 17 is accepted (on the line) and sees only itself,
        // since the event at 20 is after it.
        assert_eq!(means(op.push("a", 17 * MIN, &[4.0, 20.0])), vec![4.0, 20.0]);
        // At 16 it is one minute too late.
        assert_eq!(op.push("a", 16 * MIN, &[0.0, 0.0]), Windowed::Late { event_time: 16 * MIN, watermark: 17 * MIN });
        // A later event sees both accepted ones: (2 + 4 + 6) / 3 and (10 + 20 + 30) / 3.
        assert_eq!(means(op.push("a", 21 * MIN, &[6.0, 30.0])), vec![4.0, 20.0]);
    }

    #[test]
    fn old_events_are_evicted_and_state_round_trips() {
        let spec = WindowSpec::new(&["user", "device"], "t", &["x"], 10 * MIN, MIN).expect("spec");
        let mut op = WindowedMeans::new(spec.clone()).expect("op");
        for minute in 0..100 {
            op.push("a", minute * MIN, &[minute as f64 * 0.1]);
        }
        // Watermark 98, horizon 88: events 88..=99 remain.
        assert_eq!(op.state().buffered(), 12);
        let saved: WindowState = serde_json::from_str(&serde_json::to_string(op.state()).expect("ser")).expect("de");
        let mut restored = WindowedMeans::new(spec).expect("op");
        restored.restore(saved).expect("restore");
        assert_eq!(restored.push("a", 100 * MIN, &[0.3]), op.push("a", 100 * MIN, &[0.3]));
    }

    #[test]
    fn records_get_features_and_bad_fields_are_named() {
        let spec = WindowSpec::new(&["user"], "ts", &["x"], 10 * MIN, 0).expect("spec");
        let mut op = WindowedMeans::new(spec).expect("op");
        let mut row: Row = serde_json::from_str(r#"{"user":"u1","ts":"2026-01-01T00:00:00Z","x":3}"#).expect("row");
        assert_eq!(op.apply(&mut row).expect("apply"), Windowed::Means(vec![3.0]));
        assert_eq!(row.get("x_avg"), Some(&serde_json::json!(3.0)));
        let mut bad: Row = serde_json::from_str(r#"{"user":"u1","ts":1,"x":"high"}"#).expect("row");
        let err = op.apply(&mut bad).expect_err("mistyped");
        assert!(err.to_string().contains("x") && err.to_string().contains("a string"), "{err}");
        let mut no_time: Row = serde_json::from_str(r#"{"user":"u1","x":1}"#).expect("row");
        assert!(op.apply(&mut no_time).expect_err("no time").to_string().contains("ts"));
    }
}
