//! The drift report: a file's (or a prediction log's) distributions next to the training
//! data's, one chart per feature and one of every feature's PSI, in the same self-contained
//! HTML as the model card (`wharf drift --html`).

use std::fmt::Write as _;

use wharf_core::drift::{Bins, DriftReport, Profile, VariableDrift};
use wharf_core::Result;

use crate::analysis::show;
use crate::html::{escape, figure, head};
use crate::plots::{bars, lines, padded, tick, Axes, Series};

/// The drift report of `report` (judged against `profile`) as one HTML document. `model` and
/// `source` name what was compared.
pub fn drift_html(model: &str, source: &str, report: &DriftReport, profile: &Profile) -> Result<String> {
    let mut out = String::with_capacity(64 * 1024);
    let title = format!("Drift of {source} against {model}");
    head(&mut out, &title);
    let _ = write!(
        out,
        "<table id=\"summary\"><tbody>\
         <tr><th>rows compared</th><td class=\"num\">{}</td></tr>\
         <tr><th>training rows</th><td class=\"num\">{}</td></tr>\
         <tr><th>PSI threshold</th><td class=\"num\">{}</td></tr>\
         <tr><th>drifted</th><td>{}</td></tr></tbody></table>",
        report.window_rows,
        report.reference_rows,
        show(report.psi_threshold),
        if !report.judged {
            format!("too few rows to judge ({} of the {} needed)", report.window_rows, report.min_rows)
        } else if report.drifted.is_empty() {
            "no feature".to_string()
        } else {
            escape(&report.drifted.join(", "))
        }
    );
    let variables: Vec<&VariableDrift> = report.features.iter().chain(report.prediction.as_ref()).collect();
    out.push_str(
        "<table id=\"drift\"><thead><tr><th>feature</th><th>kind</th><th>PSI</th><th>KS / JS</th>\
                  <th>missing (training → now)</th><th>drifted</th></tr></thead><tbody>",
    );
    for v in &variables {
        let shape = match (v.ks, v.js) {
            (Some(ks), _) => format!("KS {}", show(ks)),
            (_, Some(js)) => format!("JS {}", show(js)),
            _ => "-".into(),
        };
        let _ = write!(
            out,
            "<tr data-feature=\"{name}\" data-psi=\"{psi}\" data-drifted=\"{drifted}\"><td class=\"mono\">{name}</td>\
             <td>{kind}</td><td class=\"num\">{psi_shown}</td><td>{shape}</td><td>{me:.1}% → {ml:.1}%</td><td>{flag}</td></tr>",
            name = escape(&v.name),
            psi = v.psi,
            drifted = v.drifted,
            kind = v.kind,
            psi_shown = show(v.psi),
            me = 100.0 * v.missing_expected,
            ml = 100.0 * v.missing_live,
            flag = if v.drifted { "DRIFT" } else { "" },
        );
    }
    out.push_str("</tbody></table><h2>Plots</h2><div class=\"plots\">");

    let names: Vec<String> = variables.iter().map(|v| v.name.clone()).collect();
    let psis: Vec<f64> = variables.iter().map(|v| v.psi).collect();
    let (svg, points) = bars("PSI", &names, &psis, None)?;
    let caption = format!(
        "Population stability index of each feature (and the prediction) against the training data; \
         {} or more flags a feature.",
        show(report.psi_threshold)
    );
    figure(&mut out, "drift-psi", "PSI by feature", &caption, points, &svg, &[]);

    let distributions = profile.features.iter().chain(profile.prediction.as_ref());
    for (v, d) in variables.iter().zip(distributions) {
        let bins = v.expected.len().min(v.live.len());
        if bins == 0 {
            continue;
        }
        let series = |name: &str, values: &[f64]| Series {
            name: name.to_string(),
            points: values.iter().take(bins).enumerate().map(|(i, p)| (i as f64, *p)).collect(),
        };
        let top = v.expected.iter().chain(&v.live).copied().fold(0.0f64, f64::max);
        let axes = Axes {
            x: "bin (the last is missing values)",
            y: "share of rows",
            x_range: padded(0.0, (bins - 1) as f64),
            y_range: padded(0.0, top.max(0.01)),
        };
        let (svg, points) = lines(&axes, &[series("training", &v.expected), series("now", &v.live)], &[])?;
        let caption = format!("PSI {}. Bins: {}.", show(v.psi), bin_labels(&d.bins));
        let id = format!("drift-{}", v.name);
        let title = if v.drifted { format!("{} (drifted)", v.name) } else { v.name.clone() };
        figure(&mut out, &id, &title, &caption, points, &svg, &["training".to_string(), "now".to_string()]);
    }
    out.push_str("</div></body></html>\n");
    Ok(out)
}

/// What each bin holds, for the caption: the cut points of a number, the levels of a category.
fn bin_labels(bins: &Bins) -> String {
    match bins {
        Bins::Numeric { edges } => {
            let shown: Vec<String> = edges.iter().map(|e| tick(*e)).collect();
            format!(
                "0 = up to {}, then between the cut points {}, {} = above {}, {} = missing",
                shown.first().cloned().unwrap_or_default(),
                shown.join(", "),
                edges.len(),
                shown.last().cloned().unwrap_or_default(),
                edges.len() + 1
            )
        }
        Bins::Categorical { levels } => {
            let shown: Vec<String> = levels.iter().enumerate().map(|(i, l)| format!("{i} = {l}")).collect();
            format!("{}, {} = missing", shown.join(", "), levels.len())
        }
        _ => "as profiled".to_string(),
    }
}
