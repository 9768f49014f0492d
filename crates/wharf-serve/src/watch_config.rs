//! `[serving.log]` and `[serving.drift]`: the prediction log's and live drift's settings,
//! read from the configuration as their own tables (each key also settable from the
//! environment, e.g. `WHARF_SERVING__LOG__SAMPLE=0.1`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use wharf_core::config::{lenient, ServingConfig};
use wharf_core::drift::DriftRule;
use wharf_core::WharfError;

use crate::watch::{DriftWatch, PredictionLog};

#[derive(Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct LogTable {
    #[serde(deserialize_with = "lenient::f64")]
    sample: f64,
    path: PathBuf,
    #[serde(deserialize_with = "lenient::string_list")]
    models: Vec<String>,
}

impl Default for LogTable {
    fn default() -> Self {
        let d = PredictionLog::default();
        LogTable { sample: d.sample, path: d.dir, models: d.models }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct DriftTable {
    #[serde(deserialize_with = "lenient::bool")]
    enabled: bool,
    #[serde(deserialize_with = "lenient::u64")]
    window: u64,
    #[serde(deserialize_with = "lenient::f64")]
    psi_threshold: f64,
    #[serde(deserialize_with = "lenient::u64")]
    min_rows: u64,
}

impl Default for DriftTable {
    fn default() -> Self {
        let d = DriftWatch::default();
        DriftTable {
            enabled: d.enabled,
            window: d.window as u64,
            psi_threshold: d.rule.psi_threshold,
            min_rows: d.rule.min_rows as u64,
        }
    }
}

/// `[serving.log]`, checked: the sample is a fraction.
pub(crate) fn prediction_log(config: &ServingConfig) -> Result<PredictionLog, WharfError> {
    let t: LogTable = table(config, "log")?;
    if !(0.0..=1.0).contains(&t.sample) {
        return Err(WharfError::config("serving.log.sample", format!("{}: expected a fraction from 0 to 1", t.sample)));
    }
    Ok(PredictionLog { dir: t.path, sample: t.sample, models: t.models, ..PredictionLog::default() })
}

/// `[serving.drift]`, checked: a window holds at least one row, the threshold is positive.
pub(crate) fn drift(config: &ServingConfig) -> Result<DriftWatch, WharfError> {
    let t: DriftTable = table(config, "drift")?;
    if t.window == 0 {
        return Err(WharfError::config("serving.drift.window", "a window holds at least one row"));
    }
    if t.psi_threshold.is_nan() || t.psi_threshold <= 0.0 {
        return Err(WharfError::config("serving.drift.psi_threshold", "expected a positive number"));
    }
    Ok(DriftWatch {
        enabled: t.enabled,
        window: usize::try_from(t.window).unwrap_or(usize::MAX),
        rule: DriftRule { psi_threshold: t.psi_threshold, min_rows: usize::try_from(t.min_rows).unwrap_or(usize::MAX) },
    })
}

fn table<T: for<'de> Deserialize<'de> + Default>(config: &ServingConfig, name: &str) -> Result<T, WharfError> {
    match config.adapters.get(name) {
        None => Ok(T::default()),
        Some(value) => {
            T::deserialize(value.clone()).map_err(|e| WharfError::config(format!("serving.{name}"), e.to_string()))
        }
    }
}

/// `wharf serve`'s own tables of `[serving]` with their defaults, by key: what the
/// configuration reference documents.
pub fn default_tables() -> Vec<(&'static str, serde_json::Value)> {
    let json = |v: serde_json::Result<serde_json::Value>| v.unwrap_or_default();
    vec![
        ("serving.log", json(serde_json::to_value(LogTable::default()))),
        ("serving.drift", json(serde_json::to_value(DriftTable::default()))),
    ]
}
