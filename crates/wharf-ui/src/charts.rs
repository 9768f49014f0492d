//! Metric histories as line charts, drawn by `wharf-report`'s plotting code so a run's
//! charts look like the card's and follow its convention: a `<figure data-plot="ID"
//! data-points="N">`, `N` the vertices drawn (one per logged step with a finite value).

use wharf_core::MetricPoint;
use wharf_report::plots::{self, Axes, Series};

use crate::html::esc;

/// One metric's history per run: `(series name, points)`.
pub(crate) struct History<'a> {
    pub name: String,
    pub points: Vec<&'a MetricPoint>,
}

/// A chart of `key` with one line per history; a figure whose drawing failed says so
/// instead of failing the page.
pub(crate) fn metric_figure(id: &str, key: &str, histories: &[History<'_>]) -> String {
    let series: Vec<Series> = histories
        .iter()
        .map(|h| Series { name: h.name.clone(), points: h.points.iter().map(|p| (p.step as f64, p.value)).collect() })
        .collect();
    let finite = || series.iter().flat_map(|s| s.points.iter()).filter(|(x, y)| x.is_finite() && y.is_finite());
    let (x_lo, x_hi) = finite().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (x, _)| (lo.min(*x), hi.max(*x)));
    let (y_lo, y_hi) = finite().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (_, y)| (lo.min(*y), hi.max(*y)));
    let axes = Axes { x: "step", y: key, x_range: plots::padded(x_lo, x_hi), y_range: plots::padded(y_lo, y_hi) };
    let legend = if histories.len() > 1 {
        let items: String = histories
            .iter()
            .enumerate()
            .map(|(i, h)| format!("<span style=\"background:{}\"></span>{}", plots::colour(i), esc(&h.name)))
            .collect();
        format!("<div class=\"legend\">{items}</div>")
    } else {
        String::new()
    };
    match plots::lines(&axes, &series, &[]) {
        Ok((svg, points)) => format!(
            "<figure class=\"plot\" id=\"plot-{id}\" data-plot=\"{id}\" data-points=\"{points}\">{svg}\
             <figcaption>{}</figcaption>{legend}</figure>",
            esc(key)
        ),
        Err(e) => format!(
            "<figure class=\"plot\" data-plot=\"{id}\" data-points=\"0\"><p class=\"message\">{}: {}</p></figure>",
            esc(key),
            esc(&e.to_string())
        ),
    }
}

/// A plot id safe in an attribute and a fragment: `metric-` and the key's letters.
pub(crate) fn plot_id(key: &str) -> String {
    let clean: String =
        key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    format!("metric-{clean}")
}

/// One bar per run for a metric logged once (a holdout score): a line of one point shows
/// nothing, a bar compares at a glance.
pub(crate) fn bar_figure(id: &str, key: &str, labels: &[String], values: &[f64]) -> String {
    match plots::bars(key, labels, values, None) {
        Ok((svg, points)) => format!(
            "<figure class=\"plot\" id=\"plot-{id}\" data-plot=\"{id}\" data-points=\"{points}\">{svg}\
             <figcaption>{}</figcaption></figure>",
            esc(key)
        ),
        Err(e) => format!(
            "<figure class=\"plot\" data-plot=\"{id}\" data-points=\"0\"><p class=\"message\">{}: {}</p></figure>",
            esc(key),
            esc(&e.to_string())
        ),
    }
}
