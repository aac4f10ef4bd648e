//! Inline SVG charts (no script, no external file): stacked bars per month, one colour per series.

use std::fmt::Write;

use crate::html::esc;

const PALETTE: [&str; 10] =
    ["#1f4e79", "#4f8fc0", "#7fb069", "#e0a458", "#c05746", "#8e6c8a", "#5d9b9b", "#b5b867", "#d4a5a5", "#6c757d"];

/// Values per series and month.
pub struct Stacked<'a> {
    /// What the chart shows, for its title and `aria-label`.
    pub title: &'a str,
    /// The x axis (months, `YYYY-MM`).
    pub categories: &'a [String],
    /// Series names, in stacking order.
    pub series: &'a [String],
    /// `values[s][c]`: series `s` in category `c`.
    pub values: &'a [Vec<u64>],
}

/// A rounded-up axis maximum and its tick step.
fn axis(max: u64) -> (u64, u64) {
    if max == 0 {
        return (4, 1);
    }
    let raw = (max as f64 / 4.0).max(1.0);
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(raw);
    let step = step.ceil() as u64;
    (step * max.div_ceil(step), step)
}

/// The chart as an `<svg>` element.
pub fn stacked_bars(chart: &Stacked<'_>) -> String {
    let (width, height) = (1000.0, 300.0);
    let (left, right, top, bottom) = (64.0, 16.0, 16.0, 64.0);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let totals: Vec<u64> = (0..chart.categories.len())
        .map(|c| chart.values.iter().map(|v| v.get(c).copied().unwrap_or(0)).sum())
        .collect();
    let (max, step) = axis(totals.iter().copied().max().unwrap_or(0));
    let y = |v: u64| top + plot_h - plot_h * v as f64 / max as f64;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {}\" width=\"{width}\" height=\"{}\" role=\"img\" aria-label=\"{}\" font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"11\">\n<title>{}</title>\n",
        height + 20.0 * chart.series.len().div_ceil(5) as f64,
        height + 20.0 * chart.series.len().div_ceil(5) as f64,
        esc(chart.title),
        esc(chart.title)
    );
    let mut tick = 0;
    while tick <= max {
        let ty = y(tick);
        let _ = writeln!(
            out,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{ty:.1}\" y2=\"{ty:.1}\" stroke=\"#e3e6ea\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#5b6472\">{tick}</text>",
            left + plot_w,
            left - 6.0,
            ty + 4.0
        );
        tick += step;
    }
    let n = chart.categories.len().max(1) as f64;
    let slot = plot_w / n;
    let bar = (slot * 0.7).min(60.0);
    for (c, category) in chart.categories.iter().enumerate() {
        let x = left + slot * c as f64 + (slot - bar) / 2.0;
        let mut base = 0u64;
        for (s, series) in chart.series.iter().enumerate() {
            let v = chart.values.get(s).and_then(|v| v.get(c)).copied().unwrap_or(0);
            if v == 0 {
                continue;
            }
            let (y1, y0) = (y(base + v), y(base));
            let _ = writeln!(
                out,
                "<rect x=\"{x:.1}\" y=\"{y1:.1}\" width=\"{bar:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{} {}: {v}</title></rect>",
                (y0 - y1).max(0.5),
                PALETTE[s % PALETTE.len()],
                esc(series),
                esc(category)
            );
            base += v;
        }
        if totals[c] > 0 {
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#1d2330\" font-size=\"10\">{}</text>",
                x + bar / 2.0,
                y(totals[c]) - 4.0,
                totals[c]
            );
        }
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#1d2330\">{}</text>",
            x + bar / 2.0,
            top + plot_h + 16.0,
            esc(category)
        );
    }
    let _ = writeln!(
        out,
        "<line x1=\"{left}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#1d2330\"/>",
        left + plot_w,
        top + plot_h,
        top + plot_h
    );
    for (s, series) in chart.series.iter().enumerate() {
        let (row, col) = (s / 5, s % 5);
        let (lx, ly) = (left + 185.0 * col as f64, height - 22.0 + 20.0 * row as f64);
        let _ = writeln!(
            out,
            "<rect x=\"{lx:.1}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            ly - 10.0,
            PALETTE[s % PALETTE.len()],
            lx + 17.0,
            ly,
            esc(&truncate(series, 26))
        );
    }
    out.push_str("</svg>\n");
    out
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max { text.to_string() } else { text.chars().take(max - 1).collect::<String>() + "…" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_stack_and_labels_are_escaped() {
        let categories = vec!["2024-01".to_string(), "2024-02".to_string()];
        let series = vec!["a<script>".to_string(), "b".to_string()];
        let values = vec![vec![3, 0], vec![4, 10]];
        let svg = stacked_bars(&Stacked { title: "t", categories: &categories, series: &series, values: &values });
        assert!(svg.starts_with("<svg") && svg.contains("a&lt;script&gt;") && !svg.contains("<script"));
        assert_eq!(svg.matches("<rect x").count(), 3 + 2, "three bars and two legend keys");
        assert!(svg.contains(">7</text>") && svg.contains(">10</text>"), "totals above the bars");
        assert_eq!(axis(7), (8, 2));
        assert_eq!(axis(0), (4, 1));
        assert_eq!(axis(1234), (1500, 500));
    }
}
