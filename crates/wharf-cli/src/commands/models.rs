//! `wharf models list|show|alias|delete` (and `import`, in `import.rs`): the registry.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use wharf::drift::PROFILE_TAG;
use wharf::{jobs, FeatureKind, ModelRef, Selector, Task, VersionInfo, Wharf};

use super::TIME_FORMAT;
use crate::args::ModelsCommand;
use crate::output::{self, Output};

/// Runs `wharf models …`.
pub fn run(command: ModelsCommand, out: &Output) -> anyhow::Result<()> {
    let ctx = Wharf::load()?;
    match command {
        ModelsCommand::List => list(&ctx, out),
        ModelsCommand::Show { model } => show(&ctx, &model, out),
        ModelsCommand::Import(args) => super::import::run(&ctx, args, out),
        ModelsCommand::Alias { name, alias, delete: true, .. } => {
            ctx.registry().delete_alias(&name, &alias)?;
            if out.json {
                return out.json(&json!({ "name": name, "alias": alias, "deleted": true }));
            }
            out.info(format!("Deleted alias {alias} of {name}"))
        }
        ModelsCommand::Alias { name, alias, version, delete: false } => {
            let version = version.ok_or_else(|| anyhow::anyhow!("a version is required (or --delete)"))?;
            ctx.registry().set_alias(&name, &alias, &version)?;
            if out.json {
                return out.json(&json!({ "name": name, "alias": alias, "version": version.0 }));
            }
            out.info(format!("{name}@{alias} -> version {version}"))
        }
        ModelsCommand::Delete { name, version } => {
            let info = ctx.registry().version_info(&name, &Selector::Version(version))?;
            ctx.registry().delete_version(&name, &version)?;
            if out.json {
                return out.json(&json!({
                    "name": name,
                    "version": version.0,
                    "deleted": true,
                    "removed_aliases": info.aliases,
                }));
            }
            let removed = if info.aliases.is_empty() {
                String::new()
            } else {
                format!(" and its aliases {}", info.aliases.join(", "))
            };
            out.info(format!("Deleted {name} version {version}{removed}"))
        }
    }
}

/// The metric that sums a model up in `models list`.
fn key_metric(info: &VersionInfo) -> Option<(&str, f64)> {
    let preferred: &[&str] = match info.signature.task {
        Task::Classification => &["accuracy", "roc_auc", "f1"],
        Task::Regression => &["r2", "rmse"],
        // Clustering, and tasks added later, have no metric to prefer.
        _ => &[],
    };
    preferred
        .iter()
        .find_map(|k| info.metrics.get_key_value(*k))
        .or_else(|| info.metrics.iter().next())
        .map(|(k, v)| (k.as_str(), *v))
}

fn metrics_json(metrics: &BTreeMap<String, f64>) -> Value {
    Value::Object(metrics.iter().map(|(k, v)| (k.clone(), Value::from(*v))).collect::<Map<_, _>>())
}

fn list(ctx: &Wharf, out: &Output) -> anyhow::Result<()> {
    let models = ctx.registry().list()?;
    // A damaged version is left out of the listing and named here, never fatal to it.
    for m in &models {
        for problem in &m.unreadable {
            output::warning(&format!("{} version {} left out: {}", m.name, problem.version, problem.reason));
        }
    }
    if out.json {
        let items: Vec<Value> = models
            .iter()
            .map(|m| {
                let latest = m.latest();
                json!({
                    "name": m.name,
                    "latest_version": latest.map(|v| v.version.0),
                    "versions": m.versions.iter().map(|v| v.version.0).collect::<Vec<_>>(),
                    "aliases": m.aliases.iter().map(|(a, v)| (a.clone(), Value::from(v.0))).collect::<Map<_, _>>(),
                    "algorithm": latest.map(|v| v.algorithm.clone()),
                    "task": latest.map(|v| v.signature.task.to_string()),
                    "created_at": latest.map(|v| v.created_at.to_rfc3339()),
                    "metrics": latest.map(|v| metrics_json(&v.metrics)),
                    "unreadable": m.unreadable.iter().map(|u| json!({"version": u.version.0, "reason": u.reason})).collect::<Vec<_>>(),
                })
            })
            .collect();
        return out.json(&Value::Array(items));
    }
    if models.is_empty() {
        return out.info(format!("No registered models (registry: {})", ctx.registry().name()));
    }
    let mut table = output::table(["name", "latest", "aliases", "algorithm", "task", "created", "key metric"]);
    for m in &models {
        let Some(latest) = m.latest() else {
            table.add_row(vec![m.name.clone(), "-".into(), "-".into(), "(unreadable)".into()]);
            continue;
        };
        let aliases: Vec<String> = m.aliases.iter().map(|(a, v)| format!("{a}={v}")).collect();
        let metric = key_metric(latest).map(|(k, v)| format!("{k} {}", output::metric(v))).unwrap_or("-".into());
        table.add_row(vec![
            m.name.clone(),
            latest.version.to_string(),
            aliases.join(", "),
            latest.algorithm.clone(),
            latest.signature.task.to_string(),
            latest.created_at.format(TIME_FORMAT).to_string(),
            metric,
        ]);
    }
    out.table(&table)
}

fn show(ctx: &Wharf, model: &ModelRef, out: &Output) -> anyhow::Result<()> {
    let info = ctx.registry().version_info(&model.name, &model.selector)?;
    if out.json {
        return out.json(&serde_json::to_value(&info)?);
    }
    let sig = &info.signature;
    let mut rows = vec![
        ("model", format!("{}@{}", info.name, info.version)),
        ("version", info.version.to_string()),
        ("created", info.created_at.format(TIME_FORMAT).to_string()),
        ("sha256", info.sha256.clone()),
        ("algorithm", info.algorithm.clone()),
        ("task", sig.task.to_string()),
    ];
    if let Some(target) = &sig.target {
        rows.push(("target", target.clone()));
    }
    if !sig.classes.is_empty() {
        rows.push(("classes", sig.classes.join(", ")));
    }
    rows.push(("aliases", if info.aliases.is_empty() { "-".into() } else { info.aliases.join(", ") }));
    out.line(output::key_values(&rows))?;

    out.line(format!("\nFeatures ({})", sig.features.len()))?;
    let mut features = output::table(["feature", "type", "levels"]);
    for f in &sig.features {
        let (kind, levels) = match &f.kind {
            FeatureKind::Numeric => ("numeric", String::new()),
            FeatureKind::Categorical { levels } => ("categorical", summarize_levels(levels)),
            _ => ("other", String::new()),
        };
        features.add_row(vec![f.name.clone(), kind.to_string(), levels]);
    }
    out.table(&features)?;

    if !info.metrics.is_empty() {
        out.line("\nMetrics")?;
        let mut metrics = output::table(["metric", "value"]);
        for (k, v) in &info.metrics {
            metrics.add_row(vec![k.clone(), output::metric(*v)]);
        }
        out.table(&metrics)?;
    }
    // A booster's feature importance, as a table of its own.
    let gain = info.tags.get(GAIN_TAG).map(|t| importance(t)).unwrap_or_default();
    if !gain.is_empty() {
        let splits: std::collections::BTreeMap<String, String> =
            info.tags.get(SPLITS_TAG).map(|t| importance(t)).unwrap_or_default().into_iter().collect();
        out.line("\nFeature importance")?;
        let mut table = output::table(["feature", "gain", "splits"]);
        for (feature, g) in gain {
            let n = splits.get(&feature).cloned().unwrap_or_else(|| "-".into());
            table.add_row(vec![feature, g, n]);
        }
        out.table(&table)?;
    }
    if info.tags.contains_key(PROFILE_TAG) {
        out.line("\nDrift reference: the training data's profile is kept (`wharf drift` compares with it)")?;
    }
    // The id columns tag is bookkeeping for `wharf score` (it copies those columns), and the
    // profile is data for `wharf drift`; the table lists the model's inputs and what
    // describes it, and `--json` still has every tag.
    let hidden = [jobs::ID_COLUMNS_TAG, GAIN_TAG, SPLITS_TAG, PROFILE_TAG];
    let shown: Vec<(&String, &String)> = info.tags.iter().filter(|(k, _)| !hidden.contains(&k.as_str())).collect();
    if !shown.is_empty() {
        out.line("\nTags")?;
        let mut tags = output::table(["tag", "value"]);
        for (k, v) in shown {
            tags.add_row(vec![k.clone(), v.clone()]);
        }
        out.table(&tags)?;
    }
    Ok(())
}

/// The levels of a categorical feature, shortened when there are many.
fn summarize_levels(levels: &[String]) -> String {
    const SHOWN: usize = 12;
    if levels.len() <= SHOWN {
        levels.join(", ")
    } else {
        format!("{}, … ({} levels)", levels[..SHOWN].join(", "), levels.len())
    }
}

/// The tags a trained booster stores its feature importance in (`name=value, …`, largest
/// first).
const GAIN_TAG: &str = "feature_importance_gain";
const SPLITS_TAG: &str = "feature_importance_splits";

/// `(feature, value)` pairs of an importance tag; an entry without `=` is skipped.
fn importance(tag: &str) -> Vec<(String, String)> {
    tag.split(", ")
        .filter_map(|entry| entry.rsplit_once('='))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}
