//! The page frame (navigation, inline CSS) and small HTML helpers. Everything a page shows
//! from a store passes through [`esc`], since run names, params and tags are anyone's text.

use axum::response::{Html, IntoResponse, Json, Response};
use serde::Deserialize;

/// `?format=json` asks for a page's JSON twin.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Format {
    #[serde(default)]
    pub format: Option<String>,
}

impl Format {
    pub(crate) fn json(&self) -> bool {
        self.format.as_deref() == Some("json")
    }
}

/// The page, or its JSON twin when asked.
pub(crate) fn respond(
    json: bool,
    title: &str,
    nav: &str,
    body: impl FnOnce() -> String,
    data: serde_json::Value,
) -> Response {
    if json {
        Json(data).into_response()
    } else {
        Html(layout(title, nav, &body())).into_response()
    }
}

/// Escapes text for HTML content and attribute values.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a path segment or query value.
pub(crate) fn url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A number as a table shows it: short, NaN and infinities spelled out.
pub(crate) fn num(v: f64) -> String {
    if v.is_finite() {
        let a = v.abs();
        if a != 0.0 && !(1e-4..1e7).contains(&a) {
            format!("{v:.4e}")
        } else {
            let text = format!("{v:.6}");
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        }
    } else {
        v.to_string()
    }
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#222}\
header{background:#123;color:#fff;padding:.6em 1.2em;display:flex;gap:1.5em;align-items:baseline}\
header a{color:#cde;text-decoration:none}header a.on{color:#fff;font-weight:bold}\
header strong{font-size:1.2em}main{padding:1em 1.5em}\
table{border-collapse:collapse;margin:.5em 0 1.2em}th,td{border-bottom:1px solid #ddd;padding:.25em .7em;text-align:left;vertical-align:top}\
th a{color:inherit}td.n{text-align:right;font-variant-numeric:tabular-nums}td{white-space:nowrap}\
.message{background:#fff6dd;border-left:4px solid #e5a00d;padding:.5em .8em}\
.plots{display:flex;flex-wrap:wrap;gap:1em}figure.plot{margin:0}figcaption{font-size:.9em;color:#555}\
.legend span{display:inline-block;width:.8em;height:.8em;margin:0 .3em 0 .8em}\
form.filter{margin:.5em 0}code{background:#f4f4f4;padding:0 .2em}.muted{color:#777}";

/// A whole page: navigation with `nav` highlighted, then `body`.
pub(crate) fn layout(title: &str, nav: &str, body: &str) -> String {
    let link = |href: &str, name: &str, key: &str| {
        let on = if key == nav { " class=\"on\"" } else { "" };
        format!("<a href=\"{href}\"{on}>{name}</a>")
    };
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} · Wharf</title>\
         <meta name=\"viewport\" content=\"width=device-width\"><style>{CSS}</style></head><body>\
         <header><strong>Wharf</strong>{}{}{}</header><main><h1>{}</h1>{body}</main></body></html>",
        esc(title),
        link("/runs", "Runs", "runs"),
        link("/models", "Models", "models"),
        link("/lineage", "Lineage", "lineage"),
        esc(title),
    )
}

/// A clear note where something is missing.
pub(crate) fn message(text: &str) -> String {
    format!("<p class=\"message\">{}</p>", esc(text))
}
