//! Shared drawing of cell grids (heatmaps, confusion matrices).
//!
//! plotters' segmented coordinates misplace single-cell grids, so grids use plain `f64`
//! coordinates `0..n_cols × 0..n_rows` (cell `(i, j)` spans `[j, j+1] × [n_rows-1-i,
//! n_rows-i]`, first row at the top) and tick labels are drawn by hand at cell centres.

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{widest, DrawResult, PlotStyle};

/// `text` shortened with `…` to fit in `max_w` pixels.
pub(crate) fn ellipsize<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    font: &TextStyle<'_>,
    max_w: u32,
) -> Result<String, DrawingAreaErrorKind<DB::ErrorType>> {
    if area.estimate_text_size(text, font)?.0 <= max_w {
        return Ok(text.to_owned());
    }
    let chars: Vec<char> = text.chars().collect();
    for keep in (1..chars.len()).rev() {
        let candidate = chars[..keep]
            .iter()
            .collect::<String>()
            .trim_end()
            .to_owned()
            + "…";
        if area.estimate_text_size(&candidate, font)?.0 <= max_w {
            return Ok(candidate);
        }
    }
    Ok("…".to_owned())
}

pub(crate) type GridChart<'a, DB> =
    ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Width of the y label area needed by `row_labels`.
pub(crate) fn grid_y_label_area<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    row_labels: &[String],
    st: &PlotStyle,
) -> Result<u32, DrawingAreaErrorKind<DB::ErrorType>> {
    let w = widest(
        area,
        row_labels.iter().cloned(),
        &st.font(st.tick_font_size),
    )?;
    Ok(st.y_label_area(w))
}

/// Build the grid chart on `area` with axis descriptions but no automatic tick labels.
pub(crate) fn grid_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    n_cols: usize,
    row_labels: &[String],
    x_desc: &str,
    y_desc: &str,
    st: &PlotStyle,
) -> Result<GridChart<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    let n_rows = row_labels.len();
    let y_area = grid_y_label_area(area, row_labels, st)?;
    let mut chart = ChartBuilder::on(area)
        .margin(st.margin)
        .x_label_area_size(st.x_label_area())
        .y_label_area_size(y_area)
        .build_cartesian_2d(0.0..n_cols as f64, 0.0..n_rows as f64)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(0)
        .y_labels(0)
        .x_desc(x_desc)
        .y_desc(y_desc)
        .axis_desc_style(st.font(st.label_font_size))
        .draw()?;
    Ok(chart)
}

/// Corner coordinates of cell `(i, j)` (row `i` counted from the top).
pub(crate) fn cell_rect(n_rows: usize, i: usize, j: usize) -> [(f64, f64); 2] {
    let top = (n_rows - i) as f64;
    [(j as f64, top - 1.0), (j as f64 + 1.0, top)]
}

/// Centre of cell `(i, j)`.
pub(crate) fn cell_center(n_rows: usize, i: usize, j: usize) -> (f64, f64) {
    (j as f64 + 0.5, (n_rows - i) as f64 - 0.5)
}

/// Draw column labels under and row labels left of the grid, at cell centres, on the
/// unshifted `root` area (whose pixel coordinates are the backend's).
pub(crate) fn draw_tick_labels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &GridChart<'_, DB>,
    col_labels: &[String],
    row_labels: &[String],
    st: &PlotStyle,
) -> DrawResult<DB> {
    let n_rows = row_labels.len();
    let font = st.font(st.tick_font_size);
    let below = font.pos(Pos::new(HPos::Center, VPos::Top));
    let left = font.pos(Pos::new(HPos::Right, VPos::Center));
    let tick = BLACK.stroke_width(1);
    let n_cols = col_labels.len().max(1);
    let (plot_w, _) = chart.plotting_area().dim_in_pixel();
    let cell_w = plot_w / n_cols as u32;
    for (j, label) in col_labels.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(j as f64 + 0.5, 0.0));
        root.draw(&PathElement::new(vec![(x, y), (x, y + 5)], tick))?;
        let label = ellipsize(root, label, &below, cell_w.saturating_sub(6))?;
        root.draw(&Text::new(label, (x, y + 8), below.clone()))?;
    }
    for (i, label) in row_labels.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(0.0, (n_rows - i) as f64 - 0.5));
        root.draw(&PathElement::new(vec![(x - 5, y), (x, y)], tick))?;
        root.draw(&Text::new(label.clone(), (x - 8, y), left.clone()))?;
    }
    Ok(())
}
