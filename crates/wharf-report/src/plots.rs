//! The card's chart shapes, drawn by `plotters` into SVG strings: lines, scatter, bars with
//! error bars, a histogram and a heat-map matrix.
//!
//! Conventions the card's tests rely on (and a reader of the SVG can too): data are drawn in
//! the [`PALETTE`] colours and nothing else is; reference lines (the chance diagonal, `y = x`,
//! zero) are [`REFERENCE`] grey polylines; series legends are HTML beside the SVG, never
//! drawn into it. So the points of a plot are its non-grey `<polyline>` vertices, its
//! `<circle>`s, or its coloured `<rect>`s, and that count is what each function returns.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::prelude::*;
use wharf_core::{Result, WharfError};

/// The colours data are drawn in (matplotlib's first eight, which readers know).
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0x1F, 0x77, 0xB4),
    RGBColor(0xFF, 0x7F, 0x0E),
    RGBColor(0x2C, 0xA0, 0x2C),
    RGBColor(0xD6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xBD),
    RGBColor(0x8C, 0x56, 0x4B),
    RGBColor(0xE3, 0x77, 0xC2),
    RGBColor(0x7F, 0x7F, 0x7F),
];

/// The colour of reference lines, which are not data.
pub const REFERENCE: RGBColor = RGBColor(0xBB, 0xBB, 0xBB);

/// A chart's size in pixels.
const SIZE: (u32, u32) = (460, 340);

/// The colour of series `i`, as the SVG writes it (`#1F77B4`).
pub fn colour(i: usize) -> String {
    let c = PALETTE[i % PALETTE.len()];
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}

/// One named series of `(x, y)` points.
pub struct Series {
    /// Shown in the legend.
    pub name: String,
    /// The points, drawn in order.
    pub points: Vec<(f64, f64)>,
}

/// Axes of a chart.
pub struct Axes<'a> {
    /// The x axis' label.
    pub x: &'a str,
    /// The y axis' label.
    pub y: &'a str,
    /// The x values shown.
    pub x_range: Range<f64>,
    /// The y values shown.
    pub y_range: Range<f64>,
}

fn failed<E: std::fmt::Debug>(e: E) -> WharfError {
    WharfError::Unsupported(format!("drawing a plot failed: {e:?}"))
}

/// Runs `draw` on a fresh white SVG canvas and returns the SVG text.
fn canvas(draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<()>) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        draw(&root)?;
        root.present().map_err(failed)?;
    }
    Ok(svg)
}

/// An axis number short enough that neighbours never overlap: at most four significant
/// digits, large and tiny magnitudes in exponent form (`3.2e6`).
pub fn tick(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        format!("{v:.1e}")
    } else {
        let text = format!("{v:.4}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        if text == "-0" {
            "0".into()
        } else {
            text.to_string()
        }
    }
}

/// A range that always has width, padded by 5% either side.
pub fn padded(lo: f64, hi: f64) -> Range<f64> {
    let (lo, hi) = if lo.is_finite() && hi.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let pad = if hi > lo { (hi - lo) * 0.05 } else { 0.5 };
    (lo - pad)..(hi + pad)
}

/// Lines, one per series, over optional grey reference lines. Returns the SVG and the number
/// of data vertices drawn.
pub fn lines(axes: &Axes<'_>, series: &[Series], reference: &[Vec<(f64, f64)>]) -> Result<(String, usize)> {
    let mut drawn = 0;
    let svg = canvas(|root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(38)
            .y_label_area_size(48)
            .build_cartesian_2d(axes.x_range.clone(), axes.y_range.clone())
            .map_err(failed)?;
        chart.configure_mesh().x_desc(axes.x).y_desc(axes.y).light_line_style(WHITE).draw().map_err(failed)?;
        for line in reference {
            chart.draw_series(LineSeries::new(line.iter().copied(), REFERENCE.stroke_width(1))).map_err(failed)?;
        }
        for (i, s) in series.iter().enumerate() {
            let points: Vec<(f64, f64)> =
                s.points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
            drawn += points.len();
            chart.draw_series(LineSeries::new(points, PALETTE[i % PALETTE.len()].stroke_width(2))).map_err(failed)?;
        }
        Ok(())
    })?;
    Ok((svg, drawn))
}

/// Markers at each point, over optional grey reference lines.
pub fn scatter(axes: &Axes<'_>, points: &[(f64, f64)], reference: &[Vec<(f64, f64)>]) -> Result<(String, usize)> {
    let points: Vec<(f64, f64)> = points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
    let drawn = points.len();
    let svg = canvas(|root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(38)
            .y_label_area_size(48)
            .build_cartesian_2d(axes.x_range.clone(), axes.y_range.clone())
            .map_err(failed)?;
        chart.configure_mesh().x_desc(axes.x).y_desc(axes.y).light_line_style(WHITE).draw().map_err(failed)?;
        for line in reference {
            chart.draw_series(LineSeries::new(line.iter().copied(), REFERENCE.stroke_width(1))).map_err(failed)?;
        }
        chart.draw_series(points.iter().map(|p| Circle::new(*p, 2, PALETTE[0].mix(0.6).filled()))).map_err(failed)?;
        Ok(())
    })?;
    Ok((svg, drawn))
}

/// Vertical bars over `[edges[i], edges[i + 1])` with heights `counts` (a histogram).
pub fn histogram(x: &str, edges: &[f64], counts: &[usize]) -> Result<(String, usize)> {
    let drawn = counts.len();
    let top = counts.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.08;
    let (lo, hi) = (edges.first().copied().unwrap_or(0.0), edges.last().copied().unwrap_or(1.0));
    let svg = canvas(|root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(38)
            .y_label_area_size(48)
            .build_cartesian_2d(padded(lo, hi), 0f64..top)
            .map_err(failed)?;
        chart.configure_mesh().x_desc(x).y_desc("rows").light_line_style(WHITE).draw().map_err(failed)?;
        chart
            .draw_series(counts.iter().enumerate().map(|(i, c)| {
                Rectangle::new([(edges[i], 0.0), (edges[i + 1], *c as f64)], PALETTE[0].mix(0.8).filled())
            }))
            .map_err(failed)?;
        Ok(())
    })?;
    Ok((svg, drawn))
}

/// Horizontal bars, one per label (the first at the top), with optional ± error bars.
pub fn bars(x: &str, labels: &[String], values: &[f64], errors: Option<&[f64]>) -> Result<(String, usize)> {
    let n = labels.len();
    let lo = values.iter().zip(errors.unwrap_or(&vec![0.0; n])).map(|(v, e)| v - e).fold(0.0f64, f64::min);
    let hi = values.iter().zip(errors.unwrap_or(&vec![0.0; n])).map(|(v, e)| v + e).fold(0.0f64, f64::max);
    let height = (60 + 22 * n as u32).max(SIZE.1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (SIZE.0 + 80, height)).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(38)
            .y_label_area_size(128)
            .build_cartesian_2d(padded(lo, hi), (0..n.saturating_sub(1)).into_segmented())
            .map_err(failed)?;
        let label = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) if *i < n => labels[n - 1 - *i].clone(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .x_desc(x)
            .x_labels(6)
            .x_label_formatter(&|v| tick(*v))
            .y_labels(n)
            .y_label_formatter(&label)
            .light_line_style(WHITE)
            .disable_y_mesh()
            .draw()
            .map_err(failed)?;
        // Row `i` of the input is drawn in segment `n - 1 - i`, so the first label is on top.
        chart
            .draw_series(values.iter().enumerate().map(|(i, v)| {
                let row = n - 1 - i;
                let mut bar = Rectangle::new(
                    [(0.0, SegmentValue::Exact(row)), (*v, SegmentValue::Exact(row + 1))],
                    PALETTE[0].mix(0.8).filled(),
                );
                bar.set_margin(3, 3, 0, 0);
                bar
            }))
            .map_err(failed)?;
        if let Some(errors) = errors {
            chart
                .draw_series(values.iter().zip(errors).enumerate().map(|(i, (v, e))| {
                    ErrorBar::new_horizontal(SegmentValue::CenterOf(n - 1 - i), v - e, *v, v + e, BLACK.filled(), 6)
                }))
                .map_err(failed)?;
        }
        root.present().map_err(failed)?;
    }
    Ok((svg, n))
}

/// A `k × k` matrix of counts as shaded cells with their numbers: rows are the true class
/// (top to bottom), columns the predicted class.
pub fn matrix(labels: &[String], cells: &[Vec<u64>]) -> Result<(String, usize)> {
    let k = labels.len();
    let most = cells.iter().flatten().copied().max().unwrap_or(0).max(1) as f64;
    let svg = canvas(|root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(38)
            .y_label_area_size(80)
            .build_cartesian_2d((0..k.saturating_sub(1)).into_segmented(), (0..k.saturating_sub(1)).into_segmented())
            .map_err(failed)?;
        let name = |v: &SegmentValue<usize>, flip: bool| match v {
            SegmentValue::CenterOf(i) if *i < k => labels[if flip { k - 1 - *i } else { *i }].clone(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .x_desc("predicted")
            .y_desc("true")
            .x_labels(k)
            .y_labels(k)
            .x_label_formatter(&|v| name(v, false))
            .y_label_formatter(&|v| name(v, true))
            .disable_mesh()
            .draw()
            .map_err(failed)?;
        let mut shapes = Vec::new();
        let mut texts = Vec::new();
        for (t, row) in cells.iter().enumerate() {
            for (p, count) in row.iter().enumerate() {
                let y = k - 1 - t;
                // Never white: an empty cell is still a drawn cell.
                let shade = 0.08 + 0.85 * (*count as f64 / most);
                shapes.push(Rectangle::new(
                    [
                        (SegmentValue::Exact(p), SegmentValue::Exact(y)),
                        (SegmentValue::Exact(p + 1), SegmentValue::Exact(y + 1)),
                    ],
                    PALETTE[0].mix(shade).filled(),
                ));
                let ink = if shade > 0.5 { WHITE } else { BLACK };
                texts.push(Text::new(
                    count.to_string(),
                    (SegmentValue::CenterOf(p), SegmentValue::CenterOf(y)),
                    ("sans-serif", 15).into_font().color(&ink),
                ));
            }
        }
        chart.draw_series(shapes).map_err(failed)?;
        chart.draw_series(texts).map_err(failed)?;
        Ok(())
    })?;
    Ok((svg, k * k))
}

#[cfg(test)]
mod tests {
    use super::tick;

    #[test]
    fn ticks_are_short() {
        assert_eq!(tick(0.0), "0");
        assert_eq!(tick(0.05), "0.05");
        assert_eq!(tick(-0.0001), "-1.0e-4");
        assert_eq!(tick(2500.0), "2500");
        assert_eq!(tick(3_000_000.0), "3.0e6");
    }
}
