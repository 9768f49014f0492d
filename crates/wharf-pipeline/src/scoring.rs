//! The ML scoring pipe: enrich → featurize → predict → route by confidence, on Wharf's
//! models, feature cache and sessions.
//!
//! Payloads are JSON objects. The input is `{"id": .., "data": {field: number, ..}}` (a
//! payload without `data` is taken as the data itself). What each stage emits:
//!
//! | stage | emits |
//! |---|---|
//! | `enrich` | hit: `{record_id, model_id, features, feature_names, cache_hit: true}`; miss: `{record_id, model_id, raw_data, cache_hit: false}` |
//! | `featurize` | hits unchanged; misses `{record_id, model_id, features, feature_names, cache_hit: false}`, written through to the cache |
//! | `predict` | `{record_id, model_id, prediction, confidence, probabilities}`, or `{.., prediction: null, confidence: 0.0, error}` |
//! | `route_by_confidence` | `high_confidence` (≥ 0.9), `low_confidence` (< 0.6), else `default` |

use std::sync::Arc;

use ndarray::Array2;
use serde_json::{json, Map, Value};
use wharf_core::{json_type, FeatureKind, ModelServerPort, OnError, Records};

use crate::cache::FeatureCache;
use crate::context::RunContext;
use crate::error::{PipelineError, StageError};
use crate::item::Item;
use crate::pipeline::{Pipeline, ANY_STAGE};
use crate::policy::Policy;
use crate::session::{SessionError, Sessions};
use crate::stage::{Router, Stage};

/// The bucket for predictions at or above the high threshold.
pub const HIGH_CONFIDENCE: &str = "high_confidence";
/// The bucket for predictions below the low threshold, and for failed predictions.
pub const LOW_CONFIDENCE: &str = "low_confidence";

/// A record's features: values in the order of `names` (sorted by name when featurize made
/// them). `names` is shared, since most records of a table have the same fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    /// Field names.
    pub names: Arc<[String]>,
    /// Values, one per name.
    pub values: Vec<f64>,
}

/// The feature cache the scoring pipe reads and writes.
pub type FeatureStore = FeatureCache<Features>;

/// Settings of [`scoring_pipeline`].
#[derive(Debug, Clone)]
pub struct ScoringOptions {
    /// Records per batch (default 20).
    pub batch_size: usize,
    /// Worker threads (default: available parallelism).
    pub workers: Option<usize>,
    /// Most batches in flight (default: twice the workers).
    pub max_in_flight: Option<usize>,
    /// Confidence at or above this goes to `high_confidence` (0.9).
    pub high: f64,
    /// Confidence below this goes to `low_confidence` (0.6).
    pub low: f64,
    /// Featurize writes the features of every cache miss back to the cache, so the next run
    /// over the same records is all hits. On by default, since a cache nothing writes
    /// never saves any work.
    pub write_through: bool,
}

impl Default for ScoringOptions {
    fn default() -> Self {
        ScoringOptions { batch_size: 20, workers: None, max_in_flight: None, high: 0.9, low: 0.6, write_through: true }
    }
}

/// The four-stage scoring pipeline `ml_scoring`. Featurize and predict skip failed items,
/// so one bad record does not stop the others being scored; every other stage halts. Runs
/// score with the model named by the run context's `model_id`, held by the session named by
/// its session id.
pub fn scoring_pipeline(
    cache: Arc<FeatureStore>,
    sessions: Arc<Sessions>,
    options: &ScoringOptions,
) -> Result<Pipeline, PipelineError> {
    let mut builder = Pipeline::builder("ml_scoring")
        .stage(enrich(cache.clone()))
        .stage(featurize(options.write_through.then_some(cache)))
        .stage(predict(sessions))
        .router(route_by_confidence(options.high, options.low))
        .output(HIGH_CONFIDENCE)
        .output(LOW_CONFIDENCE)
        .on_error("featurize", Policy::Skip)
        .on_error("predict", Policy::Skip)
        .on_error(ANY_STAGE, Policy::Halt)
        .batch_size(options.batch_size);
    if let Some(workers) = options.workers {
        builder = builder.workers(workers);
    }
    if let Some(max_in_flight) = options.max_in_flight {
        builder = builder.max_in_flight(max_in_flight);
    }
    builder.build()
}

/// The cache key of a record id: a number or a string, as text.
fn record_key(id: &Value) -> Option<String> {
    match id {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// `enrich`: attaches the run's `model_id` and looks the record up in the feature cache.
pub fn enrich(cache: Arc<FeatureStore>) -> Stage {
    Stage::map("enrich", move |item: &Item, ctx: &RunContext| {
        let payload = &item.payload;
        let id = payload.get("id").ok_or("the record has no 'id' field")?;
        let key = record_key(id)
            .ok_or_else(|| format!("the record's 'id' must be a number or a string, not {}", json_type(id)))?;
        let model_id = ctx.get("model_id").cloned().unwrap_or(Value::Null);
        Ok(match cache.get(&key) {
            Some(features) => json!({
                "record_id": id,
                "model_id": model_id,
                "features": features.values,
                "feature_names": &*features.names,
                "cache_hit": true,
            }),
            None => json!({
                "record_id": id,
                "model_id": model_id,
                "raw_data": payload.get("data").unwrap_or(payload),
                "cache_hit": false,
            }),
        })
    })
}

/// `featurize`: cache hits pass through; for a miss, the numeric fields of `raw_data` sorted
/// by name become `features` and `feature_names`. A record with no numeric field fails on
/// its own (and the scoring pipe's policy skips it). With a cache, every miss is written
/// through, once per batch.
pub fn featurize(write_through: Option<Arc<FeatureStore>>) -> Stage {
    Stage::batch_each("featurize", move |items: &[Item], _ctx: &RunContext| {
        let mut results = Vec::with_capacity(items.len());
        let mut writes = Vec::new();
        let mut last_names: Option<Arc<[String]>> = None;
        for item in items {
            if item.payload.get("cache_hit") == Some(&Value::Bool(true)) {
                results.push(Ok(item.payload.clone()));
                continue;
            }
            let result = featurize_one(&item.payload, &mut last_names).map(|(payload, key, features)| {
                if write_through.is_some() {
                    writes.extend(key.map(|key| (key, features)));
                }
                payload
            });
            results.push(result);
        }
        if let Some(cache) = &write_through {
            if !writes.is_empty() {
                cache.put_many(writes);
            }
        }
        Ok(results)
    })
}

fn featurize_one(
    payload: &Value,
    last_names: &mut Option<Arc<[String]>>,
) -> Result<(Value, Option<String>, Features), StageError> {
    let raw = payload.get("raw_data").ok_or("the record has no 'raw_data'")?;
    let raw = raw.as_object().ok_or_else(|| format!("'raw_data' must be an object, not {}", json_type(raw)))?;
    // Sorted here, not by relying on the JSON map's own order, which a serde_json feature
    // elsewhere in the build can change to insertion order.
    let mut fields: Vec<(&String, f64)> = raw.iter().filter_map(|(k, v)| v.as_f64().map(|x| (k, x))).collect();
    if fields.is_empty() {
        return Err("'raw_data' has no numeric field".into());
    }
    fields.sort_by(|a, b| a.0.cmp(b.0));
    let names = match last_names {
        Some(names) if names.len() == fields.len() && names.iter().zip(&fields).all(|(n, (k, _))| n == *k) => {
            names.clone()
        }
        _ => {
            let names: Arc<[String]> = fields.iter().map(|(k, _)| (*k).clone()).collect();
            *last_names = Some(names.clone());
            names
        }
    };
    let values: Vec<f64> = fields.iter().map(|(_, x)| *x).collect();
    let record_id = payload.get("record_id").cloned().unwrap_or(Value::Null);
    let out = json!({
        "record_id": record_id,
        "model_id": payload.get("model_id").cloned().unwrap_or(Value::Null),
        "features": values,
        "feature_names": &*names,
        "cache_hit": false,
    });
    Ok((out, record_key(&record_id), Features { names, values }))
}

/// Rounds to 4 places: more digits say nothing useful about a probability and only make
/// the output harder to read.
fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// A failed prediction: confidence 0, so the router files it under `low_confidence` with
/// the error text, so a failure stays with its record instead of failing the batch.
fn failed_prediction(payload: &Value, message: &str) -> Value {
    json!({
        "record_id": payload.get("record_id").cloned().unwrap_or(Value::Null),
        "model_id": payload.get("model_id").cloned().unwrap_or(Value::Null),
        "prediction": null,
        "confidence": 0.0,
        "error": message,
    })
}

/// `predict`: scores each item with the model its `model_id` names, held by the run's
/// session. Items are grouped by their own `model_id`, not scored with the first item's
/// model, so a batch mixing models scores each record with the model it names. A missing
/// session or model, or features that do not fit the model, is a per-item error in the
/// payload, never another session's model.
pub fn predict(sessions: Arc<Sessions>) -> Stage {
    Stage::batch("predict", move |items: &[Item], ctx: &RunContext| {
        let mut results = vec![Value::Null; items.len()];
        let session = sessions.get(ctx.session_id());
        let mut groups: Vec<(Option<&str>, Vec<usize>)> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let model_id = item.payload.get("model_id").and_then(Value::as_str);
            match groups.iter_mut().find(|(m, _)| *m == model_id) {
                Some((_, group)) => group.push(i),
                None => groups.push((model_id, vec![i])),
            }
        }
        let mut scored = 0;
        for (model_id, group) in groups {
            let server = match (&session, model_id) {
                (Err(e), _) => Err(e.clone()),
                (Ok(_), None) => Err(SessionError::NoModelId),
                (Ok(session), Some(model_id)) => session.server(model_id),
            };
            match server {
                Ok(server) => scored += score_group(&*server, items, &group, &mut results),
                Err(error) => {
                    for &i in &group {
                        results[i] = failed_prediction(&items[i].payload, &error.to_string());
                    }
                }
            }
        }
        if let Ok(session) = &session {
            session.record_predictions(scored);
        }
        Ok(results)
    })
}

/// Reads an item's features in the model's input order.
fn model_row(payload: &Value, inputs: &[&str]) -> Result<Vec<f64>, String> {
    let names = payload.get("feature_names").and_then(Value::as_array).ok_or("the record has no 'feature_names'")?;
    let values = payload.get("features").and_then(Value::as_array).ok_or("the record has no 'features'")?;
    if names.len() != values.len() {
        return Err(format!("{} feature names for {} features", names.len(), values.len()));
    }
    let names: Vec<&str> =
        names.iter().map(Value::as_str).collect::<Option<_>>().ok_or("'feature_names' must all be text")?;
    if names.len() != inputs.len() || inputs.iter().any(|input| !names.contains(input)) {
        return Err(format!("features {names:?} do not match the model's inputs {inputs:?}"));
    }
    inputs
        .iter()
        .map(|input| {
            let at = names.iter().position(|n| n == input).unwrap_or_default();
            values[at].as_f64().ok_or_else(|| format!("feature '{input}' is not a number"))
        })
        .collect()
}

/// Scores the items at `group` with one server; returns how many were scored.
fn score_group(server: &dyn ModelServerPort, items: &[Item], group: &[usize], results: &mut [Value]) -> u64 {
    let fail_all = |results: &mut [Value], message: &str| {
        for &i in group {
            results[i] = failed_prediction(&items[i].payload, message);
        }
    };
    let Some(model) = server.model() else {
        fail_all(results, "the session's model server has no model loaded");
        return 0;
    };
    let signature = model.signature();
    if signature.features.iter().any(|f| !matches!(f.kind, FeatureKind::Numeric)) {
        fail_all(results, "the model has categorical inputs; this pipe scores numeric features only");
        return 0;
    }
    let inputs: Vec<&str> = signature.feature_names().collect();
    let mut rows = Vec::with_capacity(group.len());
    let mut cells = Vec::with_capacity(group.len() * inputs.len());
    for &i in group {
        match model_row(&items[i].payload, &inputs) {
            Ok(row) => {
                cells.extend(row);
                rows.push(i);
            }
            Err(message) => results[i] = failed_prediction(&items[i].payload, &message),
        }
    }
    if rows.is_empty() {
        return 0;
    }
    let records = match Array2::from_shape_vec((rows.len(), inputs.len()), cells) {
        Ok(m) => Records::Matrix(m.into()),
        Err(e) => {
            for &i in &rows {
                results[i] = failed_prediction(&items[i].payload, &format!("prediction failed: {e}"));
            }
            return 0;
        }
    };
    // The one scoring path: a record the model refuses fails alone (checked against the
    // signature here, before a remote server sees the batch), the others are scored.
    let scored = match wharf_core::score(server, &records, OnError::Skip) {
        Ok(scored) => scored,
        Err(e) => {
            for &i in &rows {
                results[i] = failed_prediction(&items[i].payload, &format!("prediction failed: {e}"));
            }
            return 0;
        }
    };
    for reject in &scored.rejects {
        if let Some(&i) = rows.get(reject.index) {
            results[i] = failed_prediction(&items[i].payload, &format!("prediction failed: {}", reject.error));
        }
    }
    if scored.probabilities.is_none() {
        for &r in &scored.kept {
            if let Some(&i) = rows.get(r) {
                results[i] = failed_prediction(
                    &items[i].payload,
                    "prediction failed: the model gives no class probabilities to route by",
                );
            }
        }
        return 0;
    }
    for (k, &r) in scored.kept.iter().enumerate() {
        let Some(&i) = rows.get(r) else { continue };
        let mut confidence = f64::MIN;
        let mut probabilities = Map::new();
        for (class, p) in scored.probabilities_of(k).into_iter().flatten() {
            confidence = confidence.max(p);
            probabilities.insert(class.to_string(), json!(round4(p)));
        }
        let payload = &items[i].payload;
        results[i] = json!({
            "record_id": payload.get("record_id").cloned().unwrap_or(Value::Null),
            "model_id": payload.get("model_id").cloned().unwrap_or(Value::Null),
            "prediction": scored.prediction_json(k),
            "confidence": round4(confidence),
            "probabilities": probabilities,
        });
    }
    scored.len() as u64
}

/// `route_by_confidence`: `>= high` → `high_confidence`, `< low` → `low_confidence`, else
/// `default`. A payload without a confidence counts as 0.
pub fn route_by_confidence(high: f64, low: f64) -> Router {
    let confidence = |item: &Item| item.payload.get("confidence").and_then(Value::as_f64).unwrap_or(0.0);
    Router::new("route_by_confidence")
        .route(HIGH_CONFIDENCE, move |item, _| confidence(item) >= high)
        .route(LOW_CONFIDENCE, move |item, _| confidence(item) < low)
}
