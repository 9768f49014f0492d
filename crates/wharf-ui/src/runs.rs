//! The runs pages: the sortable, filterable list, one run in detail, and 2–5 runs compared.
//! Sorting and filtering happen here on the server, so the pages need no JavaScript.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, Query, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;
use wharf_core::{RunQuery, RunRecord, RunStatus, WharfError};

use crate::charts::{bar_figure, metric_figure, plot_id, History};
use crate::html::{self, esc, message, num, url, Format};
use crate::{Page, Ui, UiError};

/// Metric columns the list shows at most (the rest are on each run's page).
const MAX_METRIC_COLUMNS: usize = 12;
/// Rows the list shows unless `?limit=` says otherwise.
const DEFAULT_ROWS: usize = 500;

pub(crate) async fn index() -> Response {
    Redirect::to("/runs").into_response()
}

/// `/runs?q=&status=&sort=&order=&limit=`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    sort: Option<String>,
    #[serde(default)]
    order: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    format: Option<String>,
}

fn parse_status(text: &str) -> Result<RunStatus, UiError> {
    match text.to_ascii_uppercase().as_str() {
        "RUNNING" => Ok(RunStatus::Running),
        "FINISHED" => Ok(RunStatus::Finished),
        "FAILED" => Ok(RunStatus::Failed),
        "KILLED" => Ok(RunStatus::Killed),
        _ => Err(UiError::BadRequest(format!("status '{text}': expected RUNNING, FINISHED, FAILED or KILLED"))),
    }
}

fn duration_s(run: &RunRecord) -> Option<f64> {
    run.end_time.map(|end| (end - run.start_time).num_milliseconds() as f64 / 1000.0)
}

/// The last value logged for each metric (highest step, then latest logged).
fn last_values(run: &RunRecord) -> BTreeMap<&str, f64> {
    let mut last: BTreeMap<&str, (u64, f64)> = BTreeMap::new();
    for m in &run.metrics {
        match last.get(m.key.as_str()) {
            Some((step, _)) if *step > m.step => {}
            _ => {
                last.insert(&m.key, (m.step, m.value));
            }
        }
    }
    last.into_iter().map(|(k, (_, v))| (k, v)).collect()
}

/// The sort key of a column: text or number; missing values sort last either way.
#[derive(PartialEq, PartialOrd)]
enum Key<'a> {
    Text(&'a str),
    Number(f64),
}

fn sort_key<'a>(run: &'a RunRecord, last: &BTreeMap<&str, f64>, column: &str) -> Option<Key<'a>> {
    match column {
        "name" => Some(Key::Text(&run.info.name)),
        "status" => Some(Key::Text(match run.status {
            RunStatus::Running => "RUNNING",
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
            _ => "KILLED",
        })),
        "start" => Some(Key::Number(run.start_time.timestamp_millis() as f64)),
        "duration" => duration_s(run).map(Key::Number),
        other => {
            other.strip_prefix("metric.").and_then(|k| last.get(k)).filter(|v| !v.is_nan()).map(|v| Key::Number(*v))
        }
    }
}

pub(crate) async fn list(State(ui): State<Ui>, Query(query): Query<ListQuery>) -> Page {
    let mut filter = RunQuery::all();
    if let Some(q) = query.q.as_deref().filter(|q| !q.trim().is_empty()) {
        filter = filter.name_contains(q.trim());
    }
    if let Some(status) = query.status.as_deref().filter(|s| !s.is_empty()) {
        filter = filter.status(parse_status(status)?);
    }
    let started = std::time::Instant::now();
    let listed = ui
        .read(move |ui| match ui.tracker.search_runs(&filter) {
            Ok(runs) => Ok(Ok(runs)),
            Err(WharfError::Unsupported(why)) => Ok(Err(why)),
            Err(e) => Err(e.into()),
        })
        .await?;
    let json = query.format.as_deref() == Some("json");
    let runs = match listed {
        Ok(runs) => runs,
        Err(why) => {
            let text = format!("The configured tracker cannot list runs: {why}");
            return Ok(html::respond(json, "Runs", "runs", || message(&text), json!({ "runs": [], "message": text })));
        }
    };
    let sort = query.sort.clone().unwrap_or_else(|| "start".into());
    let descending = match query.order.as_deref() {
        Some("asc") => false,
        Some("desc") => true,
        _ => sort == "start",
    };
    let lasts: Vec<BTreeMap<&str, f64>> = runs.iter().map(last_values).collect();
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by(|&a, &b| {
        let (ka, kb) = (sort_key(&runs[a], &lasts[a], &sort), sort_key(&runs[b], &lasts[b], &sort));
        match (ka, kb) {
            (Some(x), Some(y)) => {
                let o = x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
                if descending {
                    o.reverse()
                } else {
                    o
                }
            }
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        }
    });
    let total = runs.len();
    let limit = query.limit.unwrap_or(DEFAULT_ROWS);
    order.truncate(limit);
    let keys: BTreeSet<&str> = lasts.iter().flat_map(|l| l.keys().copied()).collect();
    let columns: Vec<&str> = keys.iter().copied().take(MAX_METRIC_COLUMNS).collect();
    let read_ms = started.elapsed().as_millis();

    let data = json!({
        "total": total,
        "shown": order.len(),
        "sort": sort,
        "order": if descending { "desc" } else { "asc" },
        "metric_keys": keys,
        "runs": order.iter().map(|&i| {
            let r = &runs[i];
            json!({
                "id": r.info.id, "name": r.info.name, "status": r.status,
                "start_time": r.start_time, "end_time": r.end_time, "duration_s": duration_s(r),
                "metrics": lasts[i].iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            })
        }).collect::<Vec<_>>(),
    });
    let body = || {
        let q = query.q.clone().unwrap_or_default();
        let status = query.status.clone().unwrap_or_default();
        let keep = format!("q={}&status={}", url(&q), url(&status));
        let header = |column: &str, label: &str| {
            let flip = if sort == column && descending { "asc" } else { "desc" };
            let mark = if sort == column {
                if descending {
                    " ▼"
                } else {
                    " ▲"
                }
            } else {
                ""
            };
            format!(
                "<th><a href=\"/runs?{keep}&sort={}&order={flip}\" data-sort=\"{}\">{}{mark}</a></th>",
                url(column),
                esc(column),
                esc(label)
            )
        };
        let mut out = String::new();
        out.push_str(&format!(
            "<form class=\"filter\" method=\"get\" action=\"/runs\">Name contains <input name=\"q\" value=\"{}\"> \
             Status <select name=\"status\">{}</select> <input type=\"hidden\" name=\"sort\" value=\"{}\">\
             <button>Filter</button></form>",
            esc(&q),
            ["", "RUNNING", "FINISHED", "FAILED", "KILLED"]
                .iter()
                .map(|s| {
                    let sel = if status.eq_ignore_ascii_case(s) { " selected" } else { "" };
                    format!("<option value=\"{s}\"{sel}>{}</option>", if s.is_empty() { "any" } else { s })
                })
                .collect::<String>(),
            esc(&sort)
        ));
        if total == 0 {
            out.push_str(&message("No runs match. Train a model (`wharf train`) and its run shows here."));
            return out;
        }
        out.push_str(&format!(
            "<p class=\"muted\" id=\"count\">{} of {total} run(s), read in {read_ms} ms. Tick 2–5 to compare.</p>",
            order.len()
        ));
        if keys.len() > columns.len() {
            out.push_str(&format!(
                "<p class=\"muted\">{} metric column(s) left out; each run's page shows them all.</p>",
                keys.len() - columns.len()
            ));
        }
        out.push_str("<form method=\"get\" action=\"/compare\"><table id=\"runs\"><thead><tr><th></th>");
        for (column, label) in
            [("name", "Name"), ("status", "Status"), ("start", "Start"), ("duration", "Duration (s)")]
        {
            out.push_str(&header(column, label));
        }
        for key in &columns {
            out.push_str(&header(&format!("metric.{key}"), key));
        }
        out.push_str("</tr></thead><tbody>");
        for &i in &order {
            let r = &runs[i];
            out.push_str(&format!(
                "<tr data-run=\"{id}\"><td><input type=\"checkbox\" name=\"run\" value=\"{id}\"></td>\
                 <td><a href=\"/runs/{uid}\">{name}</a></td><td>{status}</td><td>{start}</td><td class=\"n\">{dur}</td>",
                id = esc(&r.info.id),
                uid = url(&r.info.id),
                name = esc(&r.info.name),
                status = r.status,
                start = r.start_time.format("%Y-%m-%d %H:%M:%S"),
                dur = duration_s(r).map(num).unwrap_or_default(),
            ));
            for key in &columns {
                let cell = lasts[i].get(key).map(|v| num(*v)).unwrap_or_default();
                out.push_str(&format!("<td class=\"n\" data-metric=\"{}\">{cell}</td>", esc(key)));
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table><button id=\"compare\">Compare</button></form>");
        out
    };
    Ok(html::respond(json, "Runs", "runs", body, data))
}

/// The versions a run registered: the registry's versions tagged `tracking_run` = the run.
fn versions_of(ui: &Ui, run_id: &str) -> Result<Vec<(String, u64)>, String> {
    let models = ui.registry.list().map_err(|e| e.to_string())?;
    Ok(models
        .into_iter()
        .flat_map(|m| m.versions)
        .filter(|v| v.tags.get("tracking_run").map(String::as_str) == Some(run_id))
        .map(|v| (v.name, v.version.0))
        .collect())
}

fn get_run(ui: &Ui, id: &str) -> Result<RunRecord, UiError> {
    match ui.tracker.get_run(id) {
        Ok(run) => Ok(run),
        // A malformed id names no run: the same answer as an unknown one.
        Err(WharfError::InvalidInput { .. }) | Err(WharfError::NotFound { .. }) => {
            Err(UiError::NotFound(format!("no run '{id}' in the configured tracker")))
        }
        Err(e) => Err(e.into()),
    }
}

/// Each metric key's points, in step order.
fn histories(run: &RunRecord) -> BTreeMap<&str, Vec<&wharf_core::MetricPoint>> {
    let mut by_key: BTreeMap<&str, Vec<&wharf_core::MetricPoint>> = BTreeMap::new();
    for m in &run.metrics {
        by_key.entry(&m.key).or_default().push(m);
    }
    for points in by_key.values_mut() {
        points.sort_by_key(|p| p.step);
    }
    by_key
}

fn kv_table(id: &str, map: &BTreeMap<String, String>, empty: &str) -> String {
    if map.is_empty() {
        return message(empty);
    }
    let rows: String = map.iter().map(|(k, v)| format!("<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v))).collect();
    format!("<table id=\"{id}\">{rows}</table>")
}

pub(crate) async fn detail(State(ui): State<Ui>, Path(id): Path<String>, Query(format): Query<Format>) -> Page {
    let (run, versions) = ui
        .read(move |ui| {
            let run = get_run(ui, &id)?;
            let versions = versions_of(ui, &run.info.id);
            Ok((run, versions))
        })
        .await?;
    let by_key = histories(&run);
    let data = json!({
        "run": run,
        "model_versions": match &versions {
            Ok(v) => json!(v.iter().map(|(n, v)| json!({"name": n, "version": v, "card": format!("/models/{}/{v}/card", url(n))})).collect::<Vec<_>>()),
            Err(e) => json!({"error": e}),
        },
    });
    let title = format!("Run {}", run.info.name);
    let body = || {
        let mut out = String::new();
        out.push_str(&format!(
            "<table id=\"summary\"><tr><th>Id</th><td><code>{}</code></td></tr><tr><th>Status</th><td>{}</td></tr>\
             <tr><th>Start</th><td>{}</td></tr><tr><th>Duration (s)</th><td>{}</td></tr></table>",
            esc(&run.info.id),
            run.status,
            run.start_time.to_rfc3339(),
            duration_s(&run).map(num).unwrap_or_else(|| "still running".into()),
        ));
        out.push_str("<h2>Model versions</h2>");
        match &versions {
            Ok(v) if v.is_empty() => out.push_str(&message("This run registered no model version.")),
            Ok(v) => {
                out.push_str("<ul id=\"versions\">");
                for (name, version) in v {
                    out.push_str(&format!(
                        "<li><a href=\"/models/{u}\">{n}</a> version {version} — <a href=\"/models/{u}/{version}/card\">model card</a></li>",
                        u = url(name),
                        n = esc(name)
                    ));
                }
                out.push_str("</ul>");
            }
            Err(e) => out.push_str(&message(&format!("The registry could not be read: {e}"))),
        }
        out.push_str("<h2>Metrics</h2>");
        if by_key.is_empty() {
            out.push_str(&message("This run logged no metrics."));
        } else {
            out.push_str(
                "<table id=\"metrics\"><tr><th>Metric</th><th>Last</th><th>Min</th><th>Max</th><th>Steps</th></tr>",
            );
            for (key, points) in &by_key {
                let values = points.iter().map(|p| p.value).filter(|v| !v.is_nan());
                let min = values.clone().fold(f64::INFINITY, f64::min);
                let max = values.fold(f64::NEG_INFINITY, f64::max);
                let last = points.last().map(|p| num(p.value)).unwrap_or_default();
                out.push_str(&format!(
                    "<tr><th>{}</th><td class=\"n\">{last}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                    esc(key),
                    num(min),
                    num(max),
                    points.len()
                ));
            }
            out.push_str("</table>");
            // A chart per history; a metric logged once is its table row.
            let charted: Vec<_> = by_key.iter().filter(|(_, points)| points.len() > 1).collect();
            if charted.is_empty() {
                out.push_str(&message("Every metric was logged once (no history to chart); the table holds them."));
            }
            out.push_str("<div class=\"plots\">");
            for (key, points) in charted {
                let history = History { name: run.info.name.clone(), points: points.clone() };
                out.push_str(&metric_figure(&plot_id(key), key, &[history]));
            }
            out.push_str("</div>");
        }
        out.push_str("<h2>Parameters</h2>");
        out.push_str(&kv_table("params", &run.params, "No parameters were logged."));
        out.push_str("<h2>Datasets</h2>");
        if run.inputs.is_empty() {
            out.push_str(&message("No dataset inputs were logged."));
        } else {
            out.push_str("<table id=\"inputs\"><tr><th>Name</th><th>Context</th><th>Rows</th><th>Source</th><th>Digest</th></tr>");
            for i in &run.inputs {
                out.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td><td><code>{}</code></td></tr>",
                    esc(&i.name),
                    esc(&i.context),
                    i.rows,
                    esc(&i.source),
                    esc(&i.digest)
                ));
            }
            out.push_str("</table>");
        }
        out.push_str("<h2>Artifacts</h2>");
        if run.artifacts.is_empty() {
            out.push_str(&message("No artifacts were logged."));
        } else {
            let items: String = run.artifacts.iter().map(|a| format!("<li><code>{}</code></li>", esc(a))).collect();
            out.push_str(&format!("<ul id=\"artifacts\">{items}</ul>"));
        }
        out.push_str("<h2>Tags</h2>");
        out.push_str(&kv_table("tags", &run.tags, "No tags."));
        out
    };
    Ok(html::respond(format.json(), &title, "runs", body, data))
}

/// The run ids of `/compare?runs=a,b` or `/compare?run=a&run=b` (the list's checkboxes).
fn compare_ids(raw: Option<&str>) -> (Vec<String>, bool) {
    let mut ids = Vec::new();
    let mut json = false;
    for pair in raw.unwrap_or_default().split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "run" | "runs" => ids.extend(v.split([',', ' ']).filter(|s| !s.is_empty()).map(str::to_string)),
            "format" => json = v == "json",
            _ => {}
        }
    }
    // Run ids are letters, digits and dashes: a percent-encoded comma is the only escape a
    // form sends.
    let ids = ids.into_iter().flat_map(|s| s.split("%2C").map(str::to_string).collect::<Vec<_>>()).collect();
    (ids, json)
}

/// A run as compare names it: runs often share a name (`train-lead`), so with the end of its
/// id (time-ordered ids share their start).
fn label(run: &RunRecord) -> String {
    let chars: Vec<char> = run.info.id.chars().collect();
    let short: String = chars[chars.len().saturating_sub(8)..].iter().collect();
    format!("{} · {short}", run.info.name)
}

pub(crate) async fn compare(State(ui): State<Ui>, RawQuery(raw): RawQuery) -> Page {
    let (ids, json) = compare_ids(raw.as_deref());
    if !(2..=5).contains(&ids.len()) {
        return Err(UiError::BadRequest(format!(
            "compare takes 2 to 5 runs (?runs=ID,ID); {} given — tick them on the runs page",
            ids.len()
        )));
    }
    let runs = ui.read(move |ui| ids.iter().map(|id| get_run(ui, id)).collect::<Result<Vec<_>, _>>()).await?;
    let data = json!({ "runs": runs });
    let body = || {
        let mut out = String::new();
        let params: BTreeSet<&str> = runs.iter().flat_map(|r| r.params.keys().map(String::as_str)).collect();
        let lasts: Vec<BTreeMap<&str, f64>> = runs.iter().map(last_values).collect();
        let keys: BTreeSet<&str> = lasts.iter().flat_map(|l| l.keys().copied()).collect();
        out.push_str("<table id=\"compare\"><tr><th></th>");
        for r in &runs {
            out.push_str(&format!("<th><a href=\"/runs/{}\">{}</a></th>", url(&r.info.id), esc(&label(r))));
        }
        out.push_str("</tr><tr><th>Status</th>");
        for r in &runs {
            out.push_str(&format!("<td>{}</td>", r.status));
        }
        out.push_str("</tr>");
        for p in &params {
            out.push_str(&format!("<tr><th>param {}</th>", esc(p)));
            for r in &runs {
                out.push_str(&format!("<td>{}</td>", esc(r.params.get(*p).map(String::as_str).unwrap_or("—"))));
            }
            out.push_str("</tr>");
        }
        for k in &keys {
            out.push_str(&format!("<tr><th>{}</th>", esc(k)));
            for l in &lasts {
                out.push_str(&format!(
                    "<td class=\"n\">{}</td>",
                    l.get(k).map(|v| num(*v)).unwrap_or_else(|| "—".into())
                ));
            }
            out.push_str("</tr>");
        }
        out.push_str("</table>");
        if keys.is_empty() {
            out.push_str(&message("None of these runs logged metrics."));
            return out;
        }
        let by_run: Vec<BTreeMap<&str, Vec<&wharf_core::MetricPoint>>> = runs.iter().map(histories).collect();
        out.push_str("<div class=\"plots\">");
        for k in &keys {
            let history = by_run.iter().any(|h| h.get(k).is_some_and(|p| p.len() > 1));
            if history {
                // Histories overlaid, one line per run.
                let lines: Vec<History<'_>> = runs
                    .iter()
                    .zip(&by_run)
                    .map(|(r, h)| History { name: label(r), points: h.get(k).cloned().unwrap_or_default() })
                    .collect();
                out.push_str(&metric_figure(&plot_id(k), k, &lines));
            } else {
                // Logged once: a bar per run that has it.
                let (labels, values): (Vec<String>, Vec<f64>) =
                    runs.iter().zip(&lasts).filter_map(|(r, l)| l.get(k).map(|v| (label(r), *v))).unzip();
                out.push_str(&bar_figure(&plot_id(k), k, &labels, &values));
            }
        }
        out.push_str("</div>");
        out
    };
    Ok(html::respond(json, "Compare runs", "runs", body, data))
}
