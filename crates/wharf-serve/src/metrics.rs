//! A small Prometheus registry: request, error and row counters and a latency histogram per
//! model, version and endpoint, model load times, `wharf_model_info` and the standard
//! `process_*` metrics.
//!
//! Hand-rolled because the server needs a handful of series, and a short mutex held for a few
//! additions costs less than a metrics framework's dynamic label machinery. Every model
//! series carries `model` and `version`, so two versions served side by side (a canary, a
//! challenger) are told apart.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

#[derive(Debug, Default, Clone)]
struct Series {
    requests: u64,
    errors: u64,
    rows: u64,
    buckets: [u64; BUCKETS.len()],
    sum: f64,
}

/// A counter's name, help text and the field it reads.
type Counter = (&'static str, &'static str, fn(&Series) -> u64);

/// A micro-batch counter's name, help text and the field it reads.
type BatchCounter = (&'static str, &'static str, fn(&(u64, u64)) -> u64);

/// A model's series: version → endpoint → series.
type ByVersion = BTreeMap<u64, BTreeMap<&'static str, Series>>;

/// The server's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Model → version → endpoint → series; nested so a request finds its series without
    /// allocating.
    series: Mutex<BTreeMap<String, ByVersion>>,
    loads: Mutex<BTreeMap<(String, u64), f64>>,
    /// (Model, version) → (micro-batches run, requests they answered).
    batches: Mutex<BTreeMap<(String, u64), (u64, u64)>>,
    /// Scoring requests answered 503 because the concurrency limit was reached.
    shed: AtomicU64,
}

impl Metrics {
    /// Records one request to `endpoint` of `model` at `version`.
    pub fn observe(&self, model: &str, version: u64, endpoint: &'static str, elapsed: Duration, ok: bool, rows: usize) {
        let seconds = elapsed.as_secs_f64();
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        if !series.contains_key(model) {
            series.insert(model.to_string(), BTreeMap::new());
        }
        let Some(by_version) = series.get_mut(model) else { return };
        let by_endpoint = by_version.entry(version).or_default();
        let s = by_endpoint.entry(endpoint).or_default();
        s.requests += 1;
        if !ok {
            s.errors += 1;
        }
        s.rows += rows as u64;
        s.sum += seconds;
        for (bound, count) in BUCKETS.iter().zip(s.buckets.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
    }

    /// Records a scoring request shed at the concurrency limit.
    pub fn shed(&self) {
        self.shed.fetch_add(1, Ordering::Relaxed);
    }

    /// Scoring requests shed so far.
    pub fn shed_count(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    /// Records a micro-batch of `requests` single-row requests to `model` at `version`.
    pub fn micro_batch(&self, model: &str, version: u64, requests: usize) {
        let mut batches = self.batches.lock().unwrap_or_else(|e| e.into_inner());
        let entry = batches.entry((model.to_string(), version)).or_default();
        entry.0 += 1;
        entry.1 += requests as u64;
    }

    /// Micro-batches run for `model` (every version) and the requests they answered.
    pub fn micro_batches(&self, model: &str) -> (u64, u64) {
        let batches = self.batches.lock().unwrap_or_else(|e| e.into_inner());
        batches.iter().filter(|((m, _), _)| m == model).fold((0, 0), |acc, (_, b)| (acc.0 + b.0, acc.1 + b.1))
    }

    /// Records how long loading `model` at `version` took.
    pub fn model_loaded(&self, model: &str, version: u64, seconds: f64) {
        self.loads.lock().unwrap_or_else(|e| e.into_inner()).insert((model.to_string(), version), seconds);
    }

    /// The Prometheus text exposition: the server's series, then `wharf_model_info` of the
    /// versions in `served`, then the `process_*` metrics.
    pub fn render(&self, uptime: Duration, served: &[ModelInfo]) -> String {
        let series: Vec<(String, Series)> = self
            .series
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .flat_map(|(model, by_version)| by_version.iter().map(move |(version, by)| (model, version, by)))
            .flat_map(|(model, version, by)| {
                by.iter().map(move |(endpoint, s)| {
                    let labels = format!("model=\"{}\",version=\"{version}\",endpoint=\"{endpoint}\"", escape(model));
                    (labels, s.clone())
                })
            })
            .collect();
        let loads = self.loads.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut out = String::new();
        let _ = writeln!(out, "# HELP wharf_uptime_seconds Seconds since the server started.");
        let _ = writeln!(out, "# TYPE wharf_uptime_seconds gauge");
        let _ = writeln!(out, "wharf_uptime_seconds {}", uptime.as_secs_f64());
        let name = "wharf_requests_shed_total";
        let _ = writeln!(out, "# HELP {name} Scoring requests answered 503 at the concurrency limit.");
        let _ = writeln!(out, "# TYPE {name} counter\n{name} {}", self.shed_count());
        let counters: [Counter; 3] = [
            ("wharf_requests_total", "Requests per model and endpoint.", |s| s.requests),
            ("wharf_request_errors_total", "Requests answered with an error.", |s| s.errors),
            ("wharf_rows_predicted_total", "Records scored.", |s| s.rows),
        ];
        for (name, help, get) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, s) in &series {
                let _ = writeln!(out, "{name}{{{labels}}} {}", get(s));
            }
        }
        let name = "wharf_request_duration_seconds";
        let _ = writeln!(out, "# HELP {name} Request latency.\n# TYPE {name} histogram");
        for (labels, s) in &series {
            for (bound, count) in BUCKETS.iter().zip(s.buckets.iter()) {
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {count}");
            }
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", s.requests);
            let _ = writeln!(out, "{name}_sum{{{labels}}} {}", s.sum);
            let _ = writeln!(out, "{name}_count{{{labels}}} {}", s.requests);
        }
        let batches = self.batches.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if !batches.is_empty() {
            let counters: [BatchCounter; 2] = [
                ("wharf_micro_batches_total", "Micro-batches of single-row requests scored.", |b| b.0),
                ("wharf_micro_batched_requests_total", "Requests answered through micro-batches.", |b| b.1),
            ];
            for (name, help, get) in counters {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
                for ((model, version), b) in &batches {
                    let _ = writeln!(out, "{name}{{model=\"{}\",version=\"{version}\"}} {}", escape(model), get(b));
                }
            }
        }
        let name = "wharf_model_load_seconds";
        let _ = writeln!(out, "# HELP {name} Time to load and self-test a model version.\n# TYPE {name} gauge");
        for ((model, version), seconds) in &loads {
            let _ = writeln!(out, "{name}{{model=\"{}\",version=\"{version}\"}} {seconds}", escape(model));
        }
        let name = "wharf_model_info";
        let _ =
            writeln!(out, "# HELP {name} A served model version: its kind and artifact checksum.\n# TYPE {name} gauge");
        for info in served {
            let _ = writeln!(
                out,
                "{name}{{model=\"{}\",version=\"{}\",kind=\"{}\",sha256=\"{}\"}} 1",
                escape(&info.model),
                info.version,
                escape(&info.kind),
                escape(&info.sha256)
            );
        }
        crate::process::render(&mut out);
        out
    }
}

/// One served version, for `wharf_model_info`.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// Registered name.
    pub model: String,
    /// Version number.
    pub version: u64,
    /// The model kind's id (`wharf.tree-ensemble`, …).
    pub kind: String,
    /// SHA-256 of the stored artifact.
    pub sha256: String,
}

/// A label value as the text format writes it: backslash, quote and newline escaped.
fn escape(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return value.into();
    }
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n").into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_series_has_its_version_and_labels_are_escaped() {
        let metrics = Metrics::default();
        metrics.observe("lead", 1, "predict", Duration::from_millis(2), true, 3);
        metrics.observe("lead", 2, "predict", Duration::from_millis(2), false, 0);
        let info = ModelInfo { model: "a\"b".into(), version: 7, kind: "k".into(), sha256: "00".into() };
        let text = metrics.render(Duration::from_secs(1), &[info]);
        assert!(text.contains("wharf_requests_total{model=\"lead\",version=\"1\",endpoint=\"predict\"} 1"), "{text}");
        assert!(text.contains("wharf_request_errors_total{model=\"lead\",version=\"2\",endpoint=\"predict\"} 1"));
        assert!(text.contains("wharf_model_info{model=\"a\\\"b\",version=\"7\",kind=\"k\",sha256=\"00\"} 1"), "{text}");
        assert_eq!(escape("a\\b\nc"), "a\\\\b\\nc");
    }
}
