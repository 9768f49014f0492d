//! The gate on a shadow log: what a challenger did next to the champion on live requests.
//!
//! Live traffic has no labels at first, so the gate has two stages of evidence. Agreement
//! (how often the challenger predicts what the champion predicted), the challenger's errors
//! and its latency say whether it is *safe* to promote; labels that arrive later, joined
//! by request id, say whether it is *better*, by the same paired bootstrap as a holdout
//! ([`compare`]). Without labels the gate can only promote a safe challenger, and says so.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use ndarray::Array2;
use serde::Serialize;
use wharf_core::ports::registry::validate_alias;
use wharf_core::shadow::{for_each_record, ShadowRecord};
use wharf_core::{Column, Result, Selector, Task, Version, WharfError};
use wharf_ml::select::{compare, Bootstrap, Metric, Outputs, Truth};

use super::{conclude, Decision};
use crate::Wharf;

/// What the shadow gate requires.
#[derive(Debug, Clone, PartialEq)]
pub struct ShadowGate {
    /// The alias the challenger was shadowing, and that moves when it passes.
    pub over: String,
    /// The metric labelled rows are compared by (`None`: the task's default).
    pub metric: Option<String>,
    /// How much better the interval's lower bound must be, on labelled rows.
    pub margin: f64,
    /// The bootstrap of the labelled comparison.
    pub bootstrap: Bootstrap,
    /// Least share of rows on which both predict the same (0.9 by default).
    pub min_agreement: f64,
    /// Fewest logged rows to decide on (100 by default).
    pub min_rows: usize,
    /// For a regressor, two predictions agree when they differ by at most this, relative to
    /// the champion's (floored at 1): 0.05 by default.
    pub tolerance: f64,
    /// Most the challenger's p99 scoring latency may be, as a multiple of the champion's;
    /// `None` (the default): reported, not gated.
    pub max_latency_ratio: Option<f64>,
}

impl Default for ShadowGate {
    fn default() -> Self {
        ShadowGate {
            over: "champion".into(),
            metric: None,
            margin: 0.0,
            bootstrap: Bootstrap::default(),
            min_agreement: 0.9,
            min_rows: 100,
            tolerance: 0.05,
            max_latency_ratio: None,
        }
    }
}

/// Outcomes that arrived after the fact: the true answer of row `row` of request
/// `request_id`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShadowLabels {
    /// Where they came from (a file name), for the decision's record.
    pub name: String,
    /// `(request id, row within the request)` → the true answer as text.
    pub answers: HashMap<(String, usize), String>,
}

impl ShadowLabels {
    /// Reads a CSV file with a `request_id` column, an optional `row` column (the row within
    /// a multi-row request; 0 when absent) and the answer in column `target`.
    pub fn read_csv(path: &Path, target: &str) -> Result<Self> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| WharfError::io(path, e))?;
        // Ids and answers stay text: an id `007` or a class `1` must match as written.
        let frame = wharf_ml::read_csv(file, &name, &["request_id".to_string(), target.to_string()], &[])?;
        let column = |wanted: &str| frame.columns().iter().find(|(c, _)| c == wanted).map(|(_, col)| col);
        let (Some(ids), Some(answers)) = (column("request_id"), column(target)) else {
            return Err(WharfError::invalid(&name, format!("labels need the columns request_id and {target}")));
        };
        let rows = column("row");
        let mut labels = ShadowLabels { name: name.clone(), answers: HashMap::new() };
        for i in 0..frame.n_rows() {
            let row = match rows {
                None => 0,
                Some(Column::Numeric(v)) if v[i] >= 0.0 && v[i].fract() == 0.0 => v[i] as usize,
                Some(c) => {
                    return Err(WharfError::invalid(
                        format!("{name}: row[{i}]"),
                        format!("'{}' is not a row number", c.text_at(i)),
                    ))
                }
            };
            let (id, answer) = (ids.text_at(i), answers.text_at(i));
            if id.is_empty() || answer.is_empty() {
                continue;
            }
            labels.answers.insert((id, row), answer);
        }
        Ok(labels)
    }
}

/// Latency quantiles, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quantiles {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
}

/// What the shadow log showed about the two versions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShadowEvidence {
    /// The log read.
    pub log: String,
    /// Requests of these two versions in the log.
    pub requests: usize,
    /// Rows they held.
    pub rows: usize,
    /// Requests of other versions (before a reload or an alias move), left out.
    pub skipped_requests: usize,
    /// Requests the challenger failed to score.
    pub challenger_errors: usize,
    /// Share of rows on which both predicted the same.
    pub agreement: f64,
    /// The least agreement the gate asked for.
    pub min_agreement: f64,
    /// Rows with an outcome from the labels.
    pub labelled_rows: usize,
    /// Where the labels came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<String>,
    /// The champion's scoring latency.
    pub champion_latency_us: Quantiles,
    /// The challenger's.
    pub challenger_latency_us: Quantiles,
    /// The latency gate, when one was set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_latency_ratio: Option<f64>,
}

/// What the log holds, accumulated record by record.
#[derive(Default)]
struct Tally {
    requests: usize,
    rows: usize,
    skipped: usize,
    versions_seen: BTreeMap<(u64, u64), usize>,
    errors: usize,
    agree: usize,
    compared: usize,
    champion_us: Vec<u64>,
    challenger_us: Vec<u64>,
    truth: Vec<String>,
    champion: Vec<RowOut>,
    challenger: Vec<RowOut>,
}

/// One labelled row's output: its probabilities (in the log's class order) or value.
enum RowOut {
    Proba(Vec<f64>),
    Value(f64),
}

/// Gates `candidate` of `name` on the shadow log at `log` (a file or the log directory),
/// where it shadowed `gate.over`: refused unless the log holds at least `min_rows` rows of
/// these two versions, the challenger never failed, agreement is at least `min_agreement`,
/// the latency ratio is within bounds when one is set and, when `labels` are given, the
/// labelled rows' paired bootstrap interval clears the margin. Recorded and acted on as
/// [`promote`](super::promote) is.
pub fn promote_from_shadow(
    ctx: &Wharf,
    name: &str,
    candidate: &Selector,
    log: &Path,
    labels: Option<&ShadowLabels>,
    gate: &ShadowGate,
) -> Result<Decision> {
    wharf_core::ports::registry::validate_name(name)?;
    validate_alias(&gate.over)?;
    check_gate(gate)?;
    let registry = ctx.registry();
    let cand = registry.version_info(name, candidate)?.version;
    let champ = registry.version_info(name, &Selector::Alias(gate.over.clone())).map_err(|e| match e {
        WharfError::NotFound { .. } => {
            WharfError::invalid("over", format!("{name}@{} does not exist: no champion was shadowed", gate.over))
        }
        other => other,
    })?;
    let champ = champ.version;
    let model = registry.load_selected(name, &Selector::Version(cand))?;
    let task = model.task();
    if !matches!(task, Task::Classification | Task::Regression) {
        return Err(WharfError::Unsupported(format!("gating {task} models")));
    }
    let metric = match &gate.metric {
        Some(m) => Metric::parse(m, task, model.classes().len())?,
        None => Metric::default_for(task, model.classes().len())?,
    };

    let mut tally = Tally::default();
    for_each_record(log, |record| tally.add(record, name, cand, champ, labels, gate.tolerance))?;
    if tally.requests == 0 {
        let seen: Vec<String> =
            tally.versions_seen.iter().map(|((a, b), n)| format!("{a} shadowed by {b} ({n} requests)")).collect();
        return Err(WharfError::invalid(
            log.display().to_string(),
            format!(
                "no request of {name} version {champ} shadowed by version {cand} in the log{}",
                if seen.is_empty() { String::new() } else { format!("; it holds {}", seen.join(", ")) }
            ),
        ));
    }
    let comparison = match labels {
        Some(_) if tally.truth.len() >= 2 => {
            let (truth, a, b) = tally.labelled(&model, task)?;
            Some(compare(&metric, &truth, &a, &b, &gate.bootstrap)?)
        }
        _ => None,
    };
    let agreement = tally.agree as f64 / tally.compared.max(1) as f64;
    let evidence = ShadowEvidence {
        log: log.display().to_string(),
        requests: tally.requests,
        rows: tally.rows,
        skipped_requests: tally.skipped,
        challenger_errors: tally.errors,
        agreement,
        min_agreement: gate.min_agreement,
        labelled_rows: tally.truth.len(),
        labels: labels.map(|l| l.name.clone()),
        champion_latency_us: quantiles(&mut tally.champion_us),
        challenger_latency_us: quantiles(&mut tally.challenger_us),
        max_latency_ratio: gate.max_latency_ratio,
    };

    // The first reason to refuse, in the order a reader would check them.
    let latency_ratio = evidence.challenger_latency_us.p99 as f64 / evidence.champion_latency_us.p99.max(1) as f64;
    let refusal = if tally.rows < gate.min_rows {
        Some(format!("the log holds {} rows of these versions, fewer than the {} required", tally.rows, gate.min_rows))
    } else if tally.errors > 0 {
        Some(format!("the challenger failed to score {} of {} requests", tally.errors, tally.requests))
    } else if agreement < gate.min_agreement {
        Some(format!("agreement {agreement:.4} is below the {} required", gate.min_agreement))
    } else if gate.max_latency_ratio.is_some_and(|max| latency_ratio > max) {
        Some(format!(
            "the challenger's p99 latency is {latency_ratio:.2}× the champion's, above the {}× allowed",
            gate.max_latency_ratio.unwrap_or_default()
        ))
    } else if labels.is_some() && comparison.is_none() {
        Some(format!("{} labelled rows matched the log: too few to compare", tally.truth.len()))
    } else {
        comparison.as_ref().filter(|c| c.low <= gate.margin).map(|c| {
            format!(
                "on {} labelled rows, {metric} {:.4} vs {:.4}, {:.0}% interval of the improvement [{:+.4}, {:+.4}]: \
                 the lower bound is not above the margin {}",
                c.rows,
                c.candidate,
                c.champion,
                c.bootstrap.confidence * 100.0,
                c.low,
                c.high,
                gate.margin
            )
        })
    };
    let promoted = refusal.is_none();
    let facts = format!(
        "{name} version {cand} in shadow of {name}@{} (version {champ}): {} requests, {} rows, agreement {agreement:.4}, \
         {} challenger errors, p99 latency {} µs vs {} µs",
        gate.over,
        tally.requests,
        tally.rows,
        tally.errors,
        evidence.challenger_latency_us.p99,
        evidence.champion_latency_us.p99
    );
    let reason = match (&refusal, &comparison) {
        (Some(why), _) => format!("{facts}; refused: {why}"),
        (None, Some(c)) => format!(
            "{facts}; on {} labelled rows {metric} {:.4} vs {:.4}, improvement {:+.4}, interval [{:+.4}, {:+.4}] above \
             the margin {}",
            c.rows, c.candidate, c.champion, c.improvement, c.low, c.high, gate.margin
        ),
        (None, None) => format!("{facts}; no labelled outcomes: promoted on agreement, errors and latency alone"),
    };

    let decision = Decision {
        name: name.to_string(),
        candidate: cand,
        alias: gate.over.clone(),
        champion: Some(champ),
        comparison,
        margin: gate.margin,
        promoted,
        reason,
        run_id: String::new(),
        holdout: evidence.log.clone(),
        shadow: Some(evidence.clone()),
    };
    let mut params = BTreeMap::from([
        ("shadow_log".to_string(), evidence.log.clone()),
        ("min_agreement".to_string(), gate.min_agreement.to_string()),
        ("min_rows".to_string(), gate.min_rows.to_string()),
        ("labels".to_string(), evidence.labels.clone().unwrap_or_else(|| "none".into())),
    ]);
    if let Some(max) = gate.max_latency_ratio {
        params.insert("max_latency_ratio".into(), max.to_string());
    }
    let metrics = vec![
        ("shadow_requests", evidence.requests as f64),
        ("shadow_rows", evidence.rows as f64),
        ("agreement", agreement),
        ("challenger_errors", evidence.challenger_errors as f64),
        ("labelled_rows", evidence.labelled_rows as f64),
        ("champion_p99_us", evidence.champion_latency_us.p99 as f64),
        ("challenger_p99_us", evidence.challenger_latency_us.p99 as f64),
    ];
    conclude(ctx, decision, &metric, params, metrics)
}

fn check_gate(gate: &ShadowGate) -> Result<()> {
    if !gate.margin.is_finite() || gate.margin < 0.0 {
        return Err(WharfError::invalid("margin", format!("must be a number ≥ 0, got {}", gate.margin)));
    }
    if !(0.0..=1.0).contains(&gate.min_agreement) {
        return Err(WharfError::invalid("min_agreement", format!("must be in [0, 1], got {}", gate.min_agreement)));
    }
    if !gate.tolerance.is_finite() || gate.tolerance < 0.0 {
        return Err(WharfError::invalid("tolerance", format!("must be a number ≥ 0, got {}", gate.tolerance)));
    }
    if let Some(max) = gate.max_latency_ratio.filter(|m| !m.is_finite() || *m <= 0.0) {
        return Err(WharfError::invalid("max_latency_ratio", format!("must be a number > 0, got {max}")));
    }
    Ok(())
}

impl Tally {
    /// Counts one logged request, if it is of these two versions.
    fn add(
        &mut self,
        record: ShadowRecord,
        name: &str,
        cand: Version,
        champ: Version,
        labels: Option<&ShadowLabels>,
        tolerance: f64,
    ) -> Result<()> {
        if record.model != name {
            return Ok(());
        }
        if record.challenger.version != cand.0 || record.champion.version != champ.0 {
            self.skipped += 1;
            *self.versions_seen.entry((record.champion.version, record.challenger.version)).or_default() += 1;
            return Ok(());
        }
        let n = record.champion.predictions.len();
        self.requests += 1;
        self.rows += n;
        self.champion_us.push(record.champion.latency_us);
        self.challenger_us.push(record.challenger.latency_us);
        if record.challenger.error.is_some() || record.challenger.predictions.len() != n {
            self.errors += 1;
            return Ok(());
        }
        for i in 0..n {
            let (a, b) = (&record.champion.predictions[i], &record.challenger.predictions[i]);
            let same = match (a.as_f64(), b.as_f64()) {
                (Some(x), Some(y)) if !a.is_string() => (x - y).abs() <= tolerance * x.abs().max(1.0),
                _ => a == b,
            };
            self.compared += 1;
            self.agree += usize::from(same);
            let Some(answer) = labels.and_then(|l| l.answers.get(&(record.request_id.clone(), i))) else {
                continue;
            };
            let out = |side: &wharf_core::shadow::ShadowSide| match &side.probabilities {
                Some(p) => p.get(i).map(|row| RowOut::Proba(row.iter().map(|v| v.unwrap_or(f64::NAN)).collect())),
                None => side.value(i).map(RowOut::Value),
            };
            if let (Some(x), Some(y)) = (out(&record.champion), out(&record.challenger)) {
                self.truth.push(answer.clone());
                self.champion.push(x);
                self.challenger.push(y);
            }
        }
        Ok(())
    }

    /// The labelled rows as the bootstrap's truth and both models' outputs.
    fn labelled(&self, model: &wharf_core::Model, task: Task) -> Result<(Truth, Outputs, Outputs)> {
        match task {
            Task::Classification => {
                let classes = model.classes();
                let truth = self
                    .truth
                    .iter()
                    .enumerate()
                    .map(|(i, label)| {
                        classes.iter().position(|c| c == label).map(|p| p as u32).ok_or_else(|| {
                            WharfError::invalid(
                                format!("labels[{i}]"),
                                format!("class '{label}' is not one of the model's"),
                            )
                        })
                    })
                    .collect::<Result<Vec<u32>>>()?;
                let matrix = |outs: &[RowOut]| -> Result<Array2<f64>> {
                    let mut values = Vec::with_capacity(outs.len() * classes.len());
                    for out in outs {
                        match out {
                            RowOut::Proba(row) if row.len() == classes.len() => values.extend_from_slice(row),
                            _ => {
                                return Err(WharfError::invalid(
                                    "shadow log",
                                    "a row's probabilities do not match the classes",
                                ))
                            }
                        }
                    }
                    Array2::from_shape_vec((outs.len(), classes.len()), values)
                        .map_err(|e| WharfError::invalid("shadow log", e.to_string()))
                };
                Ok((
                    Truth::Classes(truth),
                    Outputs::Probabilities(matrix(&self.challenger)?),
                    Outputs::Probabilities(matrix(&self.champion)?),
                ))
            }
            _ => {
                let truth = self
                    .truth
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        t.trim()
                            .parse::<f64>()
                            .map_err(|_| WharfError::invalid(format!("labels[{i}]"), format!("'{t}' is not a number")))
                    })
                    .collect::<Result<Vec<f64>>>()?;
                let values = |outs: &[RowOut]| {
                    outs.iter().map(|o| if let RowOut::Value(v) = o { *v } else { f64::NAN }).collect::<Vec<f64>>()
                };
                Ok((
                    Truth::Values(truth),
                    Outputs::Values(values(&self.challenger)),
                    Outputs::Values(values(&self.champion)),
                ))
            }
        }
    }
}

/// p50 and p99 (nearest rank) of `values`, sorted in place.
fn quantiles(values: &mut [u64]) -> Quantiles {
    values.sort_unstable();
    let at = |q: f64| {
        if values.is_empty() {
            0
        } else {
            values[((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1]
        }
    };
    Quantiles { p50: at(0.5), p99: at(0.99) }
}
