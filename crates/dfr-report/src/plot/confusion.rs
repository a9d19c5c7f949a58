//! Confusion matrices annotated with counts and row-normalised percentages.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::grid::{cell_center, cell_rect, draw_tick_labels, grid_chart, grid_y_label_area};
use super::{render, text_color_on, Colormap, DrawResult, Figure, PlotPaths, PlotStyle};
use crate::error::{ReportError, Result};

struct ConfusionFigure<'a> {
    title: &'a str,
    class_names: &'a [&'a str],
    counts: &'a [Vec<u64>],
    style: &'a PlotStyle,
}

/// Draw a confusion matrix: rows are true classes (first at the top), columns predicted
/// classes; each cell shows its count and, below, the percentage of its row (the recall
/// of the row's class on the diagonal), coloured by that fraction. Rows without samples
/// show `—` instead of a percentage.
///
/// `counts[i][j]` is the number of samples of true class `i` predicted as class `j`, as
/// returned by [`dfr_metrics::ConfusionMatrix::rows`].
///
/// Writes `<path_stem>.png` and `<path_stem>.svg`. Errors when `class_names` is empty or
/// `counts` is not `n × n` for `n = class_names.len()`.
pub fn confusion_matrix(
    path_stem: impl AsRef<Path>,
    title: &str,
    class_names: &[&str],
    counts: &[Vec<u64>],
    style: &PlotStyle,
) -> Result<PlotPaths> {
    let n = class_names.len();
    if n == 0 {
        return Err(ReportError::empty("confusion matrix class names"));
    }
    if counts.len() != n {
        return Err(ReportError::mismatch(
            "confusion matrix rows vs class names",
            n,
            counts.len(),
        ));
    }
    for (i, row) in counts.iter().enumerate() {
        if row.len() != n {
            return Err(ReportError::mismatch(
                format!("confusion matrix row {i}"),
                n,
                row.len(),
            ));
        }
    }
    let fig = ConfusionFigure {
        title,
        class_names,
        counts,
        style,
    };
    render(&fig, path_stem.as_ref(), style)
}

impl Figure for ConfusionFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let st = self.style;
        let n = self.class_names.len();
        root.fill(&WHITE)?;
        let titled = root
            .margin(st.margin / 2, 0, 0, 0)
            .titled(self.title, st.font(st.title_font_size))?;
        let (w, h) = titled.dim_in_pixel();
        let names: Vec<String> = self.class_names.iter().map(|s| s.to_string()).collect();
        // Keep cells roughly square: centre a grid as wide as it is tall.
        let y_area = grid_y_label_area(&titled, &names, st)?;
        let side = h.saturating_sub(st.x_label_area() + 2 * st.margin);
        let used = (side + y_area + 2 * st.margin).min(w);
        let (area, _) = titled.split_horizontally(used + (w - used) / 2);
        let area = area.margin(0, 0, (w - used) / 2, 0);
        let chart = grid_chart(&area, n, &names, "Predicted class", "True class", st)?;

        let (_, plot_h) = chart.plotting_area().dim_in_pixel();
        let cell_h = (plot_h / n as u32) as i32;
        let line_gap = (st.annotation_font_size as i32 * 6 / 10).min(cell_h / 4);
        let anchor = Pos::new(HPos::Center, VPos::Center);
        for (i, row) in self.counts.iter().enumerate() {
            let total: u64 = row.iter().sum();
            for (j, &count) in row.iter().enumerate() {
                let frac = if total > 0 {
                    Some(count as f64 / total as f64)
                } else {
                    None
                };
                let color = frac.map_or(RGBColor(240, 240, 240), |f| Colormap::Blues.color(f));
                chart
                    .plotting_area()
                    .draw(&Rectangle::new(cell_rect(n, i, j), color.filled()))?;
                let text_color = text_color_on(color);
                let pct = frac.map_or_else(|| "—".to_owned(), |f| format!("{:.1}%", f * 100.0));
                let big = st
                    .font(st.annotation_font_size + 4)
                    .color(&text_color)
                    .pos(anchor);
                let small = st
                    .font(st.annotation_font_size)
                    .color(&text_color)
                    .pos(anchor);
                chart.plotting_area().draw(
                    &(EmptyElement::at(cell_center(n, i, j))
                        + Text::new(count.to_string(), (0, -line_gap), big)
                        + Text::new(pct, (0, line_gap), small)),
                )?;
            }
        }
        // White separators between cells.
        let grid = WHITE.stroke_width(2);
        for k in 1..n {
            let k = k as f64;
            let nf = n as f64;
            chart
                .plotting_area()
                .draw(&PathElement::new(vec![(k, 0.0), (k, nf)], grid))?;
            chart
                .plotting_area()
                .draw(&PathElement::new(vec![(0.0, k), (nf, k)], grid))?;
        }
        draw_tick_labels(root, &chart, &names, &names, st)
    }
}
