//! Metric-vs-ε robustness curves.

use std::ops::Range;
use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    fmt_num, nice_ticks, padded, palette, render, widest, DrawResult, Figure, PlotPaths, PlotStyle,
};
use crate::error::{check_finite, ReportError, Result};

/// One curve: a metric measured at several attack strengths ε.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend label, e.g. `"baseline"` or `"grad-reg λ=0.1"`.
    pub label: String,
    /// Attack strengths (x values); need not be sorted.
    pub eps: Vec<f64>,
    /// Metric value at each ε (y values), aligned with `eps`.
    pub values: Vec<f64>,
    /// Optional band (lower, upper) at each ε, aligned with `eps` (e.g. a confidence
    /// interval over seeds), drawn as a translucent area in the series' colour.
    pub band: Option<(Vec<f64>, Vec<f64>)>,
}

impl Series {
    /// A series from its label and aligned ε / value vectors.
    pub fn new(label: impl Into<String>, eps: Vec<f64>, values: Vec<f64>) -> Self {
        Self {
            label: label.into(),
            eps,
            values,
            band: None,
        }
    }

    /// The series with a band (lower, upper) around it, aligned with `eps`.
    ///
    /// ```
    /// let s = dfr_report::Series::new("baseline", vec![0.0, 0.1], vec![0.9, 0.5])
    ///     .with_band(vec![0.85, 0.4], vec![0.95, 0.6]);
    /// assert!(s.band.is_some());
    /// ```
    pub fn with_band(mut self, lower: Vec<f64>, upper: Vec<f64>) -> Self {
        self.band = Some((lower, upper));
        self
    }
}

/// Where the legend box goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LegendPosition {
    /// Top right corner of the plotting area (default: robustness curves fall to the right).
    #[default]
    UpperRight,
    /// Top left corner.
    UpperLeft,
    /// Bottom left corner.
    LowerLeft,
    /// Bottom right corner.
    LowerRight,
}

impl LegendPosition {
    fn to_plotters(self) -> SeriesLabelPosition {
        match self {
            LegendPosition::UpperRight => SeriesLabelPosition::UpperRight,
            LegendPosition::UpperLeft => SeriesLabelPosition::UpperLeft,
            LegendPosition::LowerLeft => SeriesLabelPosition::LowerLeft,
            LegendPosition::LowerRight => SeriesLabelPosition::LowerRight,
        }
    }
}

/// Axis options of [`metric_vs_eps`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CurveAxes {
    /// Logarithmic x axis (every ε must then be > 0).
    pub log_x: bool,
    /// Fixed y range `(min, max)`, e.g. `(0.0, 1.0)` for accuracy; `None` fits the data.
    pub y_range: Option<(f64, f64)>,
    /// Legend placement.
    pub legend: LegendPosition,
}

struct CurveFigure<'a> {
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    /// Points sorted by ε.
    series: Vec<(&'a str, Vec<(f64, f64)>)>,
    /// Bands (ε, lower, upper) sorted by ε, per series (empty: none).
    bands: Vec<Vec<(f64, f64, f64)>>,
    x: (f64, f64),
    y: (f64, f64),
    axes: &'a CurveAxes,
    style: &'a PlotStyle,
}

/// Plot one metric against attack strength ε, one line with markers per series (e.g.
/// baseline vs regularised models for one attack), with a legend.
///
/// Writes `<path_stem>.png` and `<path_stem>.svg`. Errors when `series` is empty, a series
/// is empty or has `eps` and `values` of different lengths, a value is not finite, or
/// `axes.log_x` is set with some ε ≤ 0, or `axes.y_range` is not an increasing finite pair.
pub fn metric_vs_eps(
    path_stem: impl AsRef<Path>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    axes: &CurveAxes,
    style: &PlotStyle,
) -> Result<PlotPaths> {
    if series.is_empty() {
        return Err(ReportError::empty("series"));
    }
    let mut sorted = Vec::with_capacity(series.len());
    let mut bands = Vec::with_capacity(series.len());
    for s in series {
        let name = format!("series {:?}", s.label);
        if s.eps.is_empty() {
            return Err(ReportError::empty(format!("{name} has no points")));
        }
        if s.values.len() != s.eps.len() {
            return Err(ReportError::mismatch(
                format!("{name}: values vs eps"),
                s.eps.len(),
                s.values.len(),
            ));
        }
        check_finite(&format!("{name} eps"), &s.eps)?;
        check_finite(&format!("{name} values"), &s.values)?;
        if axes.log_x {
            if let Some(index) = s.eps.iter().position(|e| *e <= 0.0) {
                return Err(ReportError::InvalidArgument(format!(
                    "{name}: eps[{index}] = {} cannot be shown on a log x axis",
                    s.eps[index]
                )));
            }
        }
        let mut pts: Vec<(f64, f64)> = s
            .eps
            .iter()
            .copied()
            .zip(s.values.iter().copied())
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        sorted.push((s.label.as_str(), pts));
        let mut band = Vec::new();
        if let Some((lo, hi)) = &s.band {
            for (what, v) in [("band lower", lo), ("band upper", hi)] {
                if v.len() != s.eps.len() {
                    return Err(ReportError::mismatch(
                        format!("{name}: {what} vs eps"),
                        s.eps.len(),
                        v.len(),
                    ));
                }
                check_finite(&format!("{name} {what}"), v)?;
            }
            band = (0..s.eps.len()).map(|i| (s.eps[i], lo[i], hi[i])).collect();
            band.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        bands.push(band);
    }
    let all = sorted.iter().flat_map(|(_, p)| p.iter());
    let (mut x_lo, mut x_hi, mut y_lo, mut y_hi) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for &(x, y) in all {
        x_lo = x_lo.min(x);
        x_hi = x_hi.max(x);
        y_lo = y_lo.min(y);
        y_hi = y_hi.max(y);
    }
    for &(_, lo, hi) in bands.iter().flatten() {
        y_lo = y_lo.min(lo);
        y_hi = y_hi.max(hi);
    }
    let x = if axes.log_x {
        let (a, b) = if x_hi > x_lo {
            (x_lo / 1.15, x_hi * 1.15)
        } else {
            (x_lo / 2.0, x_hi * 2.0)
        };
        if !(a > 0.0 && b.is_finite() && a.log10().is_finite()) {
            return Err(ReportError::InvalidArgument(format!(
                "eps range [{x_lo}, {x_hi}] cannot be drawn on a log axis"
            )));
        }
        (a, b)
    } else {
        padded(x_lo, x_hi, 0.03)?
    };
    let y = match axes.y_range {
        Some((lo, hi)) => {
            if !(lo.is_finite() && hi.is_finite() && lo < hi && (hi - lo).is_finite()) {
                return Err(ReportError::InvalidArgument(format!(
                    "y_range ({lo}, {hi}) must be finite and increasing"
                )));
            }
            (lo, hi)
        }
        None => padded(y_lo, y_hi, 0.06)?,
    };
    let fig = CurveFigure {
        title,
        x_label,
        y_label,
        series: sorted,
        bands,
        x,
        y,
        axes,
        style,
    };
    render(&fig, path_stem.as_ref(), style)
}

impl Figure for CurveFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let st = self.style;
        root.fill(&WHITE)?;
        let tick_font = st.font(st.tick_font_size);
        let y_ticks = nice_ticks(self.y.0, self.y.1, 8);
        let tick_w = widest(root, y_ticks.iter().map(|v| fmt_num(*v)), &tick_font)?;
        let log = self.axes.log_x;
        // A log axis is drawn as a linear axis over log10(ε), labelled at the data's ε.
        let tx = |x: f64| if log { x.log10() } else { x };
        let x: Range<f64> = tx(self.x.0)..tx(self.x.1);
        let y: Range<f64> = self.y.0..self.y.1;
        let mut chart = ChartBuilder::on(root)
            .caption(self.title, st.font(st.title_font_size))
            .margin(st.margin)
            .margin_right(st.margin * 2)
            .x_label_area_size(st.x_label_area())
            .y_label_area_size(st.y_label_area(tick_w))
            .build_cartesian_2d(x, y)?;
        let fmt = |v: &f64| fmt_num(*v);
        let (light, bold) = st.grid_colors();
        chart
            .configure_mesh()
            .x_desc(self.x_label)
            .y_desc(self.y_label)
            .axis_desc_style(st.font(st.label_font_size))
            .label_style(tick_font.clone())
            .x_label_formatter(&fmt)
            .y_label_formatter(&fmt)
            .x_labels(if log { 0 } else { 8 })
            .y_labels(8)
            .max_light_lines(4)
            .light_line_style(light)
            .bold_line_style(bold)
            .draw()?;
        if log {
            self.draw_log_ticks(root, &chart, bold)?;
        }
        let line_w = st.line_width.max(1);
        let ms = st.marker_size;
        for (i, band) in self.bands.iter().enumerate() {
            if band.len() < 2 {
                continue;
            }
            let mut poly: Vec<(f64, f64)> = band.iter().map(|&(x, lo, _)| (tx(x), lo)).collect();
            poly.extend(band.iter().rev().map(|&(x, _, hi)| (tx(x), hi)));
            chart.draw_series(std::iter::once(Polygon::new(
                poly,
                palette(i).mix(0.18).filled(),
            )))?;
        }
        for (i, (label, pts)) in self.series.iter().enumerate() {
            let color = palette(i);
            let pts: Vec<(f64, f64)> = pts.iter().map(|&(x, y)| (tx(x), y)).collect();
            chart
                .draw_series(LineSeries::new(
                    pts.iter().copied(),
                    color.stroke_width(line_w),
                ))?
                .label(*label)
                .legend(move |(lx, ly)| {
                    EmptyElement::at((lx + 10, ly))
                        + PathElement::new(vec![(-10, 0), (10, 0)], color.stroke_width(line_w))
                        + marker(i, ms.max(3), color)
                });
            if ms > 0 {
                chart.draw_series(
                    pts.iter()
                        .map(|&p| EmptyElement::at(p) + marker(i, ms, color)),
                )?;
            }
        }
        chart
            .configure_series_labels()
            .position(self.axes.legend.to_plotters())
            .margin(12)
            .label_font(st.font(st.legend_font_size))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .draw()?;
        Ok(())
    }
}

impl CurveFigure<'_> {
    /// Tick marks, labels and vertical grid lines at the distinct ε of the data on a log
    /// x axis, skipping labels that would overlap their left neighbour.
    fn draw_log_ticks<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        chart: &ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
        grid: RGBColor,
    ) -> DrawResult<DB> {
        let st = self.style;
        let mut eps: Vec<f64> = self
            .series
            .iter()
            .flat_map(|(_, p)| p.iter().map(|q| q.0))
            .collect();
        eps.sort_by(f64::total_cmp);
        eps.dedup();
        let font = st
            .font(st.tick_font_size)
            .pos(Pos::new(HPos::Center, VPos::Top));
        let mut right_edge = i32::MIN;
        let (y0, y1) = (self.y.0, self.y.1);
        for e in eps {
            let x = e.log10();
            chart
                .plotting_area()
                .draw(&PathElement::new(vec![(x, y0), (x, y1)], grid))?;
            let (px, py) = chart.backend_coord(&(x, y0));
            root.draw(&PathElement::new(vec![(px, py), (px, py + 5)], BLACK))?;
            let label = fmt_num(e);
            let (w, _) = root.estimate_text_size(&label, &font)?;
            let left = px - w as i32 / 2;
            if left > right_edge + 6 {
                root.draw(&Text::new(label, (px, py + 8), font.clone()))?;
                right_edge = px + w as i32 / 2;
            }
        }
        Ok(())
    }
}

/// Marker shape `i` (circle, triangle, square, diamond, cross, cycling), centred at (0, 0).
fn marker<DB: DrawingBackend>(
    i: usize,
    size: u32,
    color: RGBColor,
) -> DynElement<'static, DB, (i32, i32)> {
    let s = size as i32;
    let fill = color.filled();
    match i % 5 {
        0 => Circle::new((0, 0), size, fill).into_dyn(),
        1 => TriangleMarker::new((0, 0), s + 1, fill).into_dyn(),
        2 => Rectangle::new([(-s, -s), (s, s)], fill).into_dyn(),
        3 => Polygon::new(vec![(0, -s - 1), (s + 1, 0), (0, s + 1), (-s - 1, 0)], fill).into_dyn(),
        _ => Cross::new((0, 0), s, color.stroke_width(2)).into_dyn(),
    }
}
