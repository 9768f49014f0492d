//! The lineage graph, built from the events the lineage port reads back: datasets and
//! models are boxes, jobs are rounded boxes, an edge runs from each input to the job and
//! from the job to each output. So a training job links its dataset to the model version it
//! registered (`registry:NAME/VERSION`), and a scoring job that reads that version links on
//! to its outputs.
//!
//! The layout is done here, in layers: a node sits one layer right of the furthest node
//! feeding it, and a dataset that is only read sits just before its first reader. It needs no script, and the SVG names every node (`data-node`) and edge
//! (`data-from`, `data-to`) so scripts and tests can read the graph back.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::json;
use wharf_core::{LineageEvent, LineageLog, WharfError};

use crate::html::{self, esc, message, url};
use crate::{Page, Ui};

/// `/lineage?limit=N`: the last N events (all by default).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct GraphQuery {
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    format: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Dataset,
    Model,
    Job,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Dataset => "dataset",
            Kind::Model => "model",
            Kind::Job => "job",
        }
    }
    fn of_dataset(name: &str) -> Kind {
        if name.starts_with("registry:") {
            Kind::Model
        } else {
            Kind::Dataset
        }
    }
}

/// Nodes by name (a job and a dataset of the same name are different nodes) and edges.
#[derive(Default)]
struct Graph {
    nodes: BTreeMap<(Kind, String), usize>,
    edges: BTreeSet<((Kind, String), (Kind, String))>,
}

impl Graph {
    fn from_events(events: &[LineageEvent]) -> Graph {
        let mut g = Graph::default();
        for e in events {
            let job = (Kind::Job, e.name.clone());
            g.nodes.entry(job.clone()).or_insert(0);
            for i in &e.inputs {
                let d = (Kind::of_dataset(i), i.clone());
                g.nodes.entry(d.clone()).or_insert(0);
                g.edges.insert((d, job.clone()));
            }
            for o in &e.outputs {
                let d = (Kind::of_dataset(o), o.clone());
                g.nodes.entry(d.clone()).or_insert(0);
                g.edges.insert((job.clone(), d));
            }
        }
        // Longest path from a source, relaxed at most once per node so a cycle (a job that
        // rewrites its own input) cannot loop forever.
        for _ in 0..g.nodes.len() {
            let mut changed = false;
            for (from, to) in &g.edges {
                let next = g.nodes[from] + 1;
                if let Some(layer) = g.nodes.get_mut(to) {
                    if *layer < next {
                        *layer = next;
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        // A source (a dataset only read) sits just before the first job reading it, not in
        // the first layer, so its edge never runs under other nodes (new rows scored by a
        // model sit beside the model, not beside the training data).
        let sources: Vec<(Kind, String)> =
            g.nodes.keys().filter(|n| !g.edges.iter().any(|(_, to)| to == *n)).cloned().collect();
        for source in sources {
            let first = g.edges.iter().filter(|(from, _)| *from == source).filter_map(|(_, to)| g.nodes.get(to)).min();
            if let Some(&first) = first {
                if let Some(layer) = g.nodes.get_mut(&source) {
                    *layer = first.saturating_sub(1);
                }
            }
        }
        g
    }

    fn svg(&self) -> String {
        const W: usize = 180;
        const H: usize = 34;
        const GAP_X: usize = 50;
        const GAP_Y: usize = 22;
        let mut layers: BTreeMap<usize, Vec<&(Kind, String)>> = BTreeMap::new();
        for (node, layer) in &self.nodes {
            layers.entry(*layer).or_default().push(node);
        }
        let mut at: BTreeMap<&(Kind, String), (usize, usize)> = BTreeMap::new();
        for (layer, nodes) in &layers {
            for (row, node) in nodes.iter().enumerate() {
                at.insert(node, (10 + layer * (W + GAP_X), 10 + row * (H + GAP_Y)));
            }
        }
        let width = 20 + layers.len() * (W + GAP_X);
        let height = 20 + layers.values().map(Vec::len).max().unwrap_or(0) * (H + GAP_Y);
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"lineage-graph\" width=\"{width}\" height=\"{height}\" \
             viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">\
             <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\">\
             <polygon points=\"0,0 10,5 0,10\" fill=\"#666\"/></marker></defs>"
        );
        for (from, to) in &self.edges {
            let (Some(&(x1, y1)), Some(&(x2, y2))) = (at.get(from), at.get(to)) else { continue };
            svg.push_str(&format!(
                "<line class=\"edge\" data-from=\"{}\" data-to=\"{}\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#666\" marker-end=\"url(#arrow)\"/>",
                esc(&from.1),
                esc(&to.1),
                x1 + W,
                y1 + H / 2,
                x2,
                y2 + H / 2
            ));
        }
        for (node, (x, y)) in &at {
            let (kind, name) = node;
            let (fill, rx) = match kind {
                Kind::Job => ("#dbe9f6", 14),
                Kind::Model => ("#e3f3df", 2),
                Kind::Dataset => ("#fdf0d8", 2),
            };
            let label: String = if name.chars().count() > 25 {
                format!("{}…", name.chars().take(24).collect::<String>())
            } else {
                name.clone()
            };
            svg.push_str(&format!(
                "<a href=\"/lineage/node?name={}\"><g class=\"node\" data-node=\"{n}\" data-kind=\"{k}\">\
                 <title>{k}: {n}</title><rect x=\"{x}\" y=\"{y}\" width=\"{W}\" height=\"{H}\" rx=\"{rx}\" fill=\"{fill}\" stroke=\"#345\"/>\
                 <text x=\"{tx}\" y=\"{ty}\">{}</text></g></a>",
                url(name),
                esc(&label),
                n = esc(name),
                k = kind.name(),
                tx = x + 8,
                ty = y + H / 2 + 4,
            ));
        }
        svg.push_str("</svg>");
        svg
    }
}

async fn read_events(ui: &Ui, limit: Option<usize>) -> Result<Result<LineageLog, String>, crate::UiError> {
    ui.read(move |ui| match ui.lineage.events(limit) {
        Ok(log) => Ok(Ok(log)),
        Err(WharfError::Unsupported(why)) => Ok(Err(why)),
        Err(e) => Err(e.into()),
    })
    .await
}

fn skipped_note(log: &LineageLog) -> String {
    if log.skipped == 0 {
        String::new()
    } else {
        message(&format!(
            "{} line(s) of the lineage log could not be read and were skipped; the graph shows the rest.",
            log.skipped
        ))
    }
}

pub(crate) async fn graph(State(ui): State<Ui>, Query(query): Query<GraphQuery>) -> Page {
    let json = query.format.as_deref() == Some("json");
    let log = match read_events(&ui, query.limit).await? {
        Ok(log) => log,
        Err(why) => {
            let text = format!("The configured lineage sink keeps no events to draw: {why}");
            return Ok(html::respond(json, "Lineage", "lineage", || message(&text), json!({ "message": text })));
        }
    };
    let g = Graph::from_events(&log.events);
    let data = json!({
        "events": log.events.len(),
        "skipped": log.skipped,
        "nodes": g.nodes.iter().map(|((k, n), layer)| json!({"name": n, "kind": k.name(), "layer": layer})).collect::<Vec<_>>(),
        "edges": g.edges.iter().map(|(a, b)| json!({"from": a.1, "to": b.1})).collect::<Vec<_>>(),
    });
    let body = || {
        let mut out = skipped_note(&log);
        if g.nodes.is_empty() {
            out.push_str(&message("No lineage events yet. Training, batch scoring and pipelines record them."));
            return out;
        }
        out.push_str(&format!(
            "<p class=\"muted\">{} event(s). Datasets in orange, model versions in green, jobs rounded in blue; \
             click a node for its events.</p><div style=\"overflow:auto\">{}</div>",
            log.events.len(),
            g.svg()
        ));
        out
    };
    Ok(html::respond(json, "Lineage", "lineage", body, data))
}

/// `/lineage/node?name=X`: the events of job X, or that read or wrote dataset X.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct NodeQuery {
    #[serde(default)]
    name: String,
    #[serde(default)]
    format: Option<String>,
}

pub(crate) async fn node(State(ui): State<Ui>, Query(query): Query<NodeQuery>) -> Page {
    let json = query.format.as_deref() == Some("json");
    let log = match read_events(&ui, None).await? {
        Ok(log) => log,
        Err(why) => {
            let text = format!("The configured lineage sink keeps no events to read: {why}");
            return Ok(html::respond(json, "Lineage", "lineage", || message(&text), json!({ "message": text })));
        }
    };
    let name = query.name;
    let events: Vec<&LineageEvent> =
        log.events.iter().filter(|e| e.name == name || e.inputs.contains(&name) || e.outputs.contains(&name)).collect();
    if events.is_empty() {
        return Err(crate::UiError::NotFound(format!("no lineage event names '{name}'")));
    }
    let data = json!({ "name": name, "events": events });
    let title = format!("Lineage of {name}");
    let body = || {
        let mut out = skipped_note(&log);
        out.push_str(
            "<table id=\"events\"><tr><th>Time</th><th>Type</th><th>Job</th><th>Inputs</th><th>Outputs</th><th>Run</th><th>Facts</th></tr>",
        );
        let list = |items: &[String]| -> String {
            items
                .iter()
                .map(|i| format!("<a href=\"/lineage/node?name={}\">{}</a>", url(i), esc(i)))
                .collect::<Vec<_>>()
                .join("<br>")
        };
        for e in &events {
            let mut facts: Vec<String> =
                e.metadata.iter().map(|(k, v)| format!("{}={}", esc(k), esc(&v.to_string()))).collect();
            if let Some(m) = &e.model {
                facts.push(format!(
                    "model={}{}",
                    esc(&m.name),
                    m.version.map(|v| format!(" v{v}")).unwrap_or_default()
                ));
            }
            let run = match e.metadata.get("tracking_run").and_then(|v| v.as_str()) {
                Some(r) => format!("<a href=\"/runs/{}\">{}</a>", url(r), esc(r)),
                None => format!("<code>{}</code>", esc(&e.run_id)),
            };
            out.push_str(&format!(
                "<tr><td>{}</td><td>{:?}</td><td><a href=\"/lineage/node?name={}\">{}</a></td><td>{}</td><td>{}</td><td>{run}</td><td>{}</td></tr>",
                e.event_time.format("%Y-%m-%d %H:%M:%S"),
                e.event_type,
                url(&e.name),
                esc(&e.name),
                list(&e.inputs),
                list(&e.outputs),
                facts.join("<br>")
            ));
        }
        out.push_str("</table>");
        out
    };
    Ok(html::respond(json, &title, "lineage", body, data))
}
