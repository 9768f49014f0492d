//! The card's HTML: one document, its CSS inline, its plots inline SVG, no script and no
//! external reference. It is written as well-formed XML too (void elements self-closed, only
//! XML's five entities), so any XML parser can read it back — which is how its tests do.

use std::fmt::Write as _;

use crate::analysis::show;
use crate::plots::colour;
use crate::report::{ModelReport, Section};

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}\
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}\
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}td,th{border:1px solid #ddd;padding:.25rem .6rem;text-align:left;vertical-align:top}\
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}code,.mono{font-family:ui-monospace,monospace;font-size:.85rem;word-break:break-all}\
.plots{display:flex;flex-wrap:wrap;gap:1rem}figure{margin:0;border:1px solid #e3e3e3;padding:.5rem;background:#fff}\
figcaption{font-size:.85rem;color:#444;max-width:540px}figcaption b{display:block;font-size:1rem;color:#222}\
.legend{list-style:none;padding:0;margin:.3rem 0 0;font-size:.8rem;display:flex;flex-wrap:wrap;gap:.8rem}\
.swatch{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:middle}\
.missing{border:1px dashed #bbb;padding:.8rem;color:#555;background:#fafafa;max-width:520px}\
.missing b{display:block;color:#222}.note{color:#555}";

/// Escapes text for an element or an attribute value.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0 documents.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The SVG without its XML declaration (none is written by the backend, but stay safe).
fn inline_svg(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

fn key_values(out: &mut String, id: &str, rows: impl IntoIterator<Item = (String, String)>) {
    let _ = write!(out, "<table id=\"{id}\"><tbody>");
    for (k, v) in rows {
        let _ = write!(out, "<tr><th>{}</th><td class=\"mono\">{}</td></tr>", escape(&k), escape(&v));
    }
    out.push_str("</tbody></table>");
}

fn metric_table(out: &mut String, id: &str, metrics: &std::collections::BTreeMap<String, f64>) {
    let _ = write!(out, "<table id=\"{id}\"><thead><tr><th>metric</th><th>value</th></tr></thead><tbody>");
    for (k, v) in metrics {
        let _ = write!(
            out,
            "<tr data-metric=\"{}\" data-value=\"{}\"><td>{}</td><td class=\"num\">{}</td></tr>",
            escape(k),
            v,
            escape(k),
            show(*v)
        );
    }
    out.push_str("</tbody></table>");
}

/// The document's head and its `<h1>`, `title` as given: every page of this crate starts so.
pub fn head(out: &mut String, title: &str) {
    let title = escape(title);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\
         <meta name=\"generator\" content=\"wharf-report {}\"/>\
         <title>{title}</title><style>{STYLE}</style></head><body>\
         <h1>{title}</h1>",
        env!("CARGO_PKG_VERSION")
    );
}

/// One plot as a `<figure data-plot="ID" data-points="N">`, with its caption and legend.
pub fn figure(out: &mut String, id: &str, title: &str, caption: &str, points: usize, svg: &str, legend: &[String]) {
    let id = escape(id);
    let _ = write!(
        out,
        "<figure class=\"plot\" id=\"plot-{id}\" data-plot=\"{id}\" data-points=\"{points}\">\
         <figcaption><b>{title}</b>{caption}</figcaption>{svg}",
        title = escape(title),
        caption = escape(caption),
        svg = inline_svg(svg),
    );
    if !legend.is_empty() {
        out.push_str("<ul class=\"legend\">");
        for (i, name) in legend.iter().enumerate() {
            let _ = write!(
                out,
                "<li><span class=\"swatch\" style=\"background:{}\"></span>{}</li>",
                colour(i),
                escape(name)
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("</figure>");
}

/// The whole document.
pub fn render(report: &ModelReport) -> String {
    let mut out = String::with_capacity(64 * 1024);
    head(&mut out, &format!("Model card: {}", report.title));

    out.push_str("<h2>Summary</h2>");
    key_values(&mut out, "summary", report.summary.iter().cloned());

    out.push_str("<h2>Signature</h2><table id=\"signature\"><thead><tr><th>column</th><th>type</th><th>levels / classes</th></tr></thead><tbody>");
    for [name, kind, levels] in &report.signature {
        let _ = write!(
            out,
            "<tr><td class=\"mono\">{}</td><td>{}</td><td>{}</td></tr>",
            escape(name),
            escape(kind),
            escape(levels)
        );
    }
    out.push_str("</tbody></table>");

    out.push_str("<h2>Parameters</h2>");
    if report.params.is_empty() {
        out.push_str("<p class=\"note\">The model records no parameters.</p>");
    } else {
        key_values(&mut out, "parameters", report.params.iter().map(|(k, v)| (k.clone(), v.clone())));
    }

    out.push_str("<h2>Holdout metrics</h2>");
    match &report.holdout_note {
        Some(note) => {
            let _ = write!(out, "<p class=\"missing\" data-missing=\"holdout-metrics\">{}</p>", escape(note));
        }
        None => metric_table(&mut out, "holdout-metrics", &report.holdout_metrics),
    }
    if let Some((classes, cells)) = &report.confusion {
        out.push_str("<table id=\"confusion-matrix\"><thead><tr><th>true \\ predicted</th>");
        for c in classes {
            let _ = write!(out, "<th>{}</th>", escape(c));
        }
        out.push_str("</tr></thead><tbody>");
        for (class, row) in classes.iter().zip(cells) {
            let _ = write!(out, "<tr><th>{}</th>", escape(class));
            for count in row {
                let _ = write!(out, "<td class=\"num\">{count}</td>");
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table>");
    }
    if !report.trained_metrics.is_empty() {
        out.push_str("<p class=\"note\">Recorded with the model at training:</p>");
        metric_table(&mut out, "recorded-metrics", &report.trained_metrics);
    }

    out.push_str("<h2>Plots</h2><div class=\"plots\">");
    for section in &report.sections {
        match section {
            Section::Plot(plot) => {
                figure(&mut out, plot.id, &plot.title, &plot.caption, plot.points, &plot.svg, &plot.legend)
            }
            Section::Missing { id, title, message } => {
                let _ = write!(
                    out,
                    "<div class=\"missing\" data-missing=\"{id}\"><b>{}</b>{}</div>",
                    escape(title),
                    escape(message)
                );
            }
        }
    }
    out.push_str("</div></body></html>\n");
    out
}
