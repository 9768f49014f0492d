//! The models pages: every registered name, one name's versions with aliases, signature and
//! metrics, and each version's card as the registry keeps it.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::json;
use wharf_core::{FeatureKind, RegisteredModel, RegistryExt, Version, WharfError};

use crate::html::{self, esc, message, num, url, Format};
use crate::{Page, Ui, UiError};

pub(crate) async fn list(State(ui): State<Ui>, Query(format): Query<Format>) -> Page {
    let models = ui.read(|ui| Ok(ui.registry.list()?)).await?;
    let data = json!({ "models": models });
    let body = || {
        if models.is_empty() {
            return message("No models are registered yet. `wharf train` registers one.");
        }
        let mut out = String::from(
            "<table id=\"models\"><tr><th>Name</th><th>Versions</th><th>Latest</th><th>Algorithm</th><th>Aliases</th></tr>",
        );
        for m in &models {
            let latest = m.latest();
            let aliases: Vec<String> = m.aliases.iter().map(|(a, v)| format!("{} → v{v}", esc(a))).collect();
            out.push_str(&format!(
                "<tr><td><a href=\"/models/{}\">{}</a></td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                url(&m.name),
                esc(&m.name),
                m.versions.len(),
                latest.map(|v| format!("v{} ({})", v.version, v.created_at.format("%Y-%m-%d %H:%M"))).unwrap_or_default(),
                latest.map(|v| esc(&v.algorithm)).unwrap_or_default(),
                aliases.join(", ")
            ));
        }
        out.push_str("</table>");
        out
    };
    Ok(html::respond(format.json(), "Models", "models", body, data))
}

pub(crate) async fn detail(State(ui): State<Ui>, Path(name): Path<String>, Query(format): Query<Format>) -> Page {
    let lookup = name.clone();
    let (model, cards) = ui
        .read(move |ui| {
            let model: RegisteredModel = ui.registry.get(&lookup)?;
            // Whether each version has a card, so the page links only to cards that exist.
            let cards: Vec<bool> =
                model.versions.iter().map(|v| ui.registry.card(&lookup, &v.version).is_ok()).collect();
            Ok((model, cards))
        })
        .await?;
    let data = json!({
        "model": model,
        "cards": model.versions.iter().zip(&cards).filter(|(_, c)| **c)
            .map(|(v, _)| format!("/models/{}/{}/card", url(&name), v.version)).collect::<Vec<_>>(),
    });
    let title = format!("Model {}", model.name);
    let body = || {
        let mut out = String::new();
        if !model.aliases.is_empty() {
            let items: String =
                model.aliases.iter().map(|(a, v)| format!("<li><code>{}</code> → version {v}</li>", esc(a))).collect();
            out.push_str(&format!("<h2>Aliases</h2><ul id=\"aliases\">{items}</ul>"));
        }
        out.push_str("<h2>Versions</h2>");
        if model.versions.is_empty() {
            out.push_str(&message("No readable versions."));
        }
        out.push_str(
            "<table id=\"versions\"><tr><th>Version</th><th>Created</th><th>Algorithm</th><th>Aliases</th><th>Metrics</th><th>Run</th><th>Card</th></tr>",
        );
        for (v, has_card) in model.versions.iter().rev().zip(cards.iter().rev()) {
            let metrics: Vec<String> = v.metrics.iter().map(|(k, x)| format!("{}={}", esc(k), num(*x))).collect();
            let run =
                v.tags.get("tracking_run").map(|r| format!("<a href=\"/runs/{}\">run</a>", url(r))).unwrap_or_default();
            let card = if *has_card {
                format!("<a href=\"/models/{}/{}/card\">card</a>", url(&model.name), v.version)
            } else {
                "<span class=\"muted\">no card</span>".into()
            };
            out.push_str(&format!(
                "<tr data-version=\"{ver}\"><td>v{ver}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{run}</td><td>{card}</td></tr>",
                v.created_at.format("%Y-%m-%d %H:%M:%S"),
                esc(&v.algorithm),
                esc(&v.aliases.join(", ")),
                metrics.join(" "),
                ver = v.version,
            ));
        }
        out.push_str("</table>");
        for u in &model.unreadable {
            out.push_str(&message(&format!("Version {} could not be read: {}", u.version, u.reason)));
        }
        if let Some(latest) = model.latest() {
            let s = &latest.signature;
            out.push_str(&format!(
                "<h2>Signature (v{})</h2><p>Task: {} · target: <code>{}</code>{}</p>",
                latest.version,
                s.task,
                esc(s.target.as_deref().unwrap_or("—")),
                if s.classes.is_empty() {
                    String::new()
                } else {
                    format!(" · classes: {}", esc(&s.classes.join(", ")))
                }
            ));
            out.push_str("<table id=\"signature\"><tr><th>Feature</th><th>Kind</th></tr>");
            for f in &s.features {
                let kind = match &f.kind {
                    FeatureKind::Numeric => "numeric".to_string(),
                    FeatureKind::Categorical { levels } => format!("categorical: {}", levels.join(", ")),
                    other => format!("{other:?}"),
                };
                out.push_str(&format!("<tr><td>{}</td><td>{}</td></tr>", esc(&f.name), esc(&kind)));
            }
            out.push_str("</table>");
        }
        out
    };
    Ok(html::respond(format.json(), &title, "models", body, data))
}

/// The card of one version, exactly as the registry keeps it (a self-contained HTML file).
pub(crate) async fn card(State(ui): State<Ui>, Path((name, version)): Path<(String, String)>) -> Page {
    let number: u64 = version
        .trim_start_matches('v')
        .parse()
        .map_err(|_| UiError::NotFound(format!("'{version}' is not a version of '{name}'")))?;
    let label = format!("{name} version {number}");
    let html = ui
        .read(move |ui| match ui.registry.card(&name, &Version(number)) {
            Ok(bytes) => Ok(bytes),
            Err(WharfError::NotFound { .. }) => Err(UiError::NotFound(format!(
                "{name} version {number} has no model card (`wharf report {name}@{number} --output card.html` makes one)"
            ))),
            Err(WharfError::Unsupported(why)) => {
                Err(UiError::NotFound(format!("the configured registry keeps no cards: {why}")))
            }
            Err(e) => Err(e.into()),
        })
        .await?;
    tracing::debug!(card = %label, bytes = html.len(), "served a card");
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
}
