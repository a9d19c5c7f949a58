//! Annotated heatmaps, e.g. an ablation metric over regularisation weight α × radius r.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::grid::{cell_center, cell_rect, draw_tick_labels, grid_chart};
use super::{
    fmt_num, nice_ticks, padded, render, text_color_on, widest, Colormap, DrawResult, Figure,
    PlotPaths, PlotStyle,
};
use crate::error::{check_finite, ReportError, Result};
use crate::table::format_float;

/// Colour of cells without a value.
const MISSING: RGBColor = RGBColor(225, 225, 225);

struct HeatmapFigure<'a> {
    title: &'a str,
    row_label: &'a str,
    col_label: &'a str,
    rows: Vec<String>,
    cols: Vec<String>,
    values: &'a [Vec<Option<f64>>],
    range: (f64, f64),
    style: &'a PlotStyle,
}

/// Draw a heatmap of `values[i][j]` (row `rows[i]`, column `cols[j]`), every cell annotated
/// with its value (`—` for `None`, drawn grey), with a viridis colour bar on the right.
/// The first row is drawn at the top.
///
/// Writes `<path_stem>.png` and `<path_stem>.svg`. Errors when `rows` or `cols` is empty,
/// `values` is not `rows.len()` × `cols.len()`, or a row/column coordinate or a present
/// value is not finite. All cells may be `None`.
#[allow(clippy::too_many_arguments)]
pub fn heatmap(
    path_stem: impl AsRef<Path>,
    title: &str,
    row_label: &str,
    col_label: &str,
    rows: &[f64],
    cols: &[f64],
    values: &[Vec<Option<f64>>],
    style: &PlotStyle,
) -> Result<PlotPaths> {
    check_finite("heatmap rows", rows)?;
    check_finite("heatmap cols", cols)?;
    let names = |v: &[f64]| v.iter().map(|x| fmt_num(*x)).collect::<Vec<_>>();
    labelled_heatmap(
        path_stem,
        title,
        row_label,
        col_label,
        &names(rows),
        &names(cols),
        values,
        style,
    )
}

/// [`heatmap`] with named rows and columns (arms × held-out sources, say).
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let rows = ["baseline".to_string(), "gradreg".to_string()];
/// let cols = ["faceapp".to_string(), "stargan".to_string()];
/// let values = vec![vec![Some(0.71), Some(0.64)], vec![Some(0.74), None]];
/// let paths = dfr_report::labelled_heatmap(
///     dir.path().join("auc"), "held-out AUC", "arm", "held-out source",
///     &rows, &cols, &values, &dfr_report::PlotStyle::default(),
/// ).unwrap();
/// assert!(paths.png.exists() && paths.svg.exists());
/// ```
#[allow(clippy::too_many_arguments)]
pub fn labelled_heatmap(
    path_stem: impl AsRef<Path>,
    title: &str,
    row_label: &str,
    col_label: &str,
    rows: &[String],
    cols: &[String],
    values: &[Vec<Option<f64>>],
    style: &PlotStyle,
) -> Result<PlotPaths> {
    if rows.is_empty() {
        return Err(ReportError::empty("heatmap rows"));
    }
    if cols.is_empty() {
        return Err(ReportError::empty("heatmap cols"));
    }
    if values.len() != rows.len() {
        return Err(ReportError::mismatch(
            "heatmap values rows",
            rows.len(),
            values.len(),
        ));
    }
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for (i, row) in values.iter().enumerate() {
        if row.len() != cols.len() {
            return Err(ReportError::mismatch(
                format!("heatmap values row {i}"),
                cols.len(),
                row.len(),
            ));
        }
        let present: Vec<f64> = row.iter().flatten().copied().collect();
        check_finite(&format!("heatmap values row {i}"), &present)?;
        for v in present {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    let range = if lo > hi {
        (0.0, 1.0)
    } else {
        padded(lo, hi, 0.0)?
    };
    let fig = HeatmapFigure {
        title,
        row_label,
        col_label,
        rows: rows.to_vec(),
        cols: cols.to_vec(),
        values,
        range,
        style,
    };
    render(&fig, path_stem.as_ref(), style)
}

impl Figure for HeatmapFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let st = self.style;
        root.fill(&WHITE)?;
        let titled = root
            .margin(st.margin / 2, 0, 0, 0)
            .titled(self.title, st.font(st.title_font_size))?;
        let (w, _) = titled.dim_in_pixel();
        let bar_ticks = nice_ticks(self.range.0, self.range.1, 6);
        let bar_tick_w = widest(
            root,
            bar_ticks.iter().map(|v| fmt_num(*v)),
            &st.font(st.tick_font_size),
        )?;
        let bar_w = (bar_tick_w + st.margin + 50).min(w / 3);
        let (main, bar) = titled.split_horizontally(w - bar_w);

        let (n_rows, n_cols) = (self.rows.len(), self.cols.len());
        let (row_labels, col_labels) = (&self.rows, &self.cols);
        let chart = grid_chart(
            &main,
            n_cols,
            row_labels,
            self.col_label,
            self.row_label,
            st,
        )?;

        let (lo, hi) = self.range;
        let anchor = Pos::new(HPos::Center, VPos::Center);
        for (i, row) in self.values.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                let color = v.map_or(MISSING, |v| Colormap::Viridis.color((v - lo) / (hi - lo)));
                chart
                    .plotting_area()
                    .draw(&Rectangle::new(cell_rect(n_rows, i, j), color.filled()))?;
                let text = v.map_or_else(
                    || "—".to_owned(),
                    |v| format_float(v, st.annotation_decimals),
                );
                let text_color = text_color_on(color);
                let font = st
                    .font(st.annotation_font_size)
                    .color(&text_color)
                    .pos(anchor);
                chart
                    .plotting_area()
                    .draw(&Text::new(text, cell_center(n_rows, i, j), font))?;
            }
        }
        draw_tick_labels(root, &chart, col_labels, row_labels, st)?;
        draw_colorbar(&bar, self.range, Colormap::Viridis, st)
    }
}

/// A vertical colour bar for `range` with tick labels on its right.
pub(crate) fn draw_colorbar<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (lo, hi): (f64, f64),
    cmap: Colormap,
    st: &PlotStyle,
) -> DrawResult<DB> {
    let tick_w = widest(
        area,
        nice_ticks(lo, hi, 6).iter().map(|v| fmt_num(*v)),
        &st.font(st.tick_font_size),
    )?;
    let mut chart = ChartBuilder::on(area)
        .margin_top(st.margin)
        .margin_bottom(st.margin + st.x_label_area())
        .margin_left(4)
        .margin_right(st.margin)
        .right_y_label_area_size(tick_w + 14)
        .build_cartesian_2d(0.0..1.0, lo..hi)?;
    let fmt = |v: &f64| fmt_num(*v);
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .set_tick_mark_size(LabelAreaPosition::Right, 5)
        .y_labels(6)
        .y_label_formatter(&fmt)
        .label_style(st.font(st.tick_font_size))
        .draw()?;
    let steps = 128;
    let step = (hi - lo) / steps as f64;
    chart.draw_series((0..steps).map(|k| {
        let y0 = lo + step * k as f64;
        let color = cmap.color((k as f64 + 0.5) / steps as f64);
        Rectangle::new([(0.0, y0), (1.0, y0 + step)], color.filled())
    }))?;
    chart.draw_series(std::iter::once(Rectangle::new(
        [(0.0, lo), (1.0, hi)],
        RGBColor(120, 120, 120).stroke_width(1),
    )))?;
    Ok(())
}
