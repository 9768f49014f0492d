//! The promotion gate's options, shared by `wharf promote`, `wharf train` and `wharf tune`,
//! and how a decision is shown.

use anyhow::bail;
use clap::Args;
use serde_json::{json, Value};
use wharf::promote::{Decision, Gate};
use wharf::select::Bootstrap;

use crate::output::{self, Output};

/// How sure the gate must be.
#[derive(Debug, Clone, Args)]
pub struct GateArgs {
    /// How much better, in the metric's units, the lower bound of the interval of the
    /// improvement must be before the alias moves.
    #[arg(long, value_name = "X", default_value_t = 0.0, value_parser = parse_margin)]
    pub margin: f64,

    /// Bootstrap resamples of the holdout rows.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub resamples: usize,

    /// Coverage of the bootstrap interval, in (0, 1).
    #[arg(long, value_name = "P", default_value_t = 0.95)]
    pub confidence: f64,
}

impl GateArgs {
    /// The gate over `alias` by `metric` (the task's default when `None`), seeded.
    pub fn gate(&self, alias: &str, metric: Option<String>, seed: u64) -> Gate {
        Gate {
            over: alias.trim_start_matches('@').to_string(),
            metric,
            margin: self.margin,
            bootstrap: Bootstrap { resamples: self.resamples, confidence: self.confidence, seed },
        }
    }
}

fn parse_margin(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(format!("'{s}' is not a margin ≥ 0")),
    }
}

/// `@champion` or `champion` → `champion`, checked as an alias.
pub fn parse_at_alias(s: &str) -> Result<String, String> {
    let alias = s.trim().trim_start_matches('@');
    wharf::ports::registry::validate_alias(alias).map(|()| alias.to_string()).map_err(|e| e.to_string())
}

/// The decision as JSON.
pub fn decision_json(d: &Decision) -> Value {
    serde_json::to_value(d).unwrap_or_else(|_| json!({ "promoted": d.promoted, "reason": d.reason }))
}

/// Prints the decision with its numbers (unless JSON is asked for).
pub fn print(out: &Output, d: &Decision) -> anyhow::Result<()> {
    if out.json {
        return Ok(());
    }
    if let Some(c) = &d.comparison {
        let mut table = output::table(["", "version", &c.metric]);
        table.add_row(vec!["candidate".to_string(), d.candidate.to_string(), output::metric(c.candidate)]);
        let champion = d.champion.map(|v| v.to_string()).unwrap_or_default();
        table.add_row(vec![format!("@{}", d.alias), champion, output::metric(c.champion)]);
        out.table(&table)?;
        out.line(format!(
            "Improvement {:+.4}, {:.0}% interval [{:+.4}, {:+.4}] over {} rows ({} resamples), margin {}",
            c.improvement,
            c.bootstrap.confidence * 100.0,
            c.low,
            c.high,
            c.rows,
            c.bootstrap.resamples,
            d.margin
        ))?;
    }
    if let Some(s) = &d.shadow {
        out.line(format!(
            "Shadow log {}: {} requests, {} rows ({} of other versions left out), agreement {:.4} (at least {}), \
             {} challenger errors",
            s.log, s.requests, s.rows, s.skipped_requests, s.agreement, s.min_agreement, s.challenger_errors
        ))?;
        out.line(format!(
            "Scoring latency p50/p99: champion {}/{} µs, challenger {}/{} µs",
            s.champion_latency_us.p50,
            s.champion_latency_us.p99,
            s.challenger_latency_us.p50,
            s.challenger_latency_us.p99
        ))?;
        if s.labels.is_none() {
            out.line("No labels given: the gate judged agreement, errors and latency only")?;
        }
    }
    if d.comparison.is_none() || d.shadow.is_some() {
        out.line(&d.reason)?;
    }
    if d.promoted {
        out.line(format!("Promoted: {}@{} -> version {}", d.name, d.alias, d.candidate))?;
    } else {
        out.line(format!(
            "Refused: {}@{} stays at version {}",
            d.name,
            d.alias,
            d.champion.map(|v| v.to_string()).unwrap_or_default()
        ))?;
    }
    out.line(format!("Decision recorded in tracking run {}", d.run_id))
}

/// Fails (exit status 1) when the gate refused, so a CI pipeline can gate on the command.
pub fn exit_status(d: &Decision) -> anyhow::Result<()> {
    if d.promoted {
        Ok(())
    } else {
        bail!("promotion refused: {}", d.reason)
    }
}
