//! ROC curves.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{fmt_num, palette, render, widest, DrawResult, Figure, PlotPaths, PlotStyle};
use crate::error::{check_range, ReportError, Result};

/// One ROC curve with its area under the curve.
#[derive(Debug, Clone, PartialEq)]
pub struct RocSeries {
    /// Legend label (the AUC is appended).
    pub label: String,
    /// False positive rates in `[0, 1]`.
    pub fpr: Vec<f64>,
    /// True positive rates in `[0, 1]`, aligned with `fpr`.
    pub tpr: Vec<f64>,
    /// Area under the curve, shown in the legend.
    pub auc: f64,
}

impl RocSeries {
    /// A series from a [`dfr_metrics::RocCurve`], its AUC computed with the trapezoid rule.
    pub fn from_curve(label: impl Into<String>, curve: &dfr_metrics::RocCurve) -> Result<Self> {
        let auc = dfr_metrics::trapezoid(&curve.fpr, &curve.tpr)?;
        Ok(Self {
            label: label.into(),
            fpr: curve.fpr.clone(),
            tpr: curve.tpr.clone(),
            auc,
        })
    }
}

struct RocFigure<'a> {
    title: &'a str,
    curves: &'a [RocSeries],
    style: &'a PlotStyle,
}

/// Plot ROC curves (false positive rate vs true positive rate, both on `[0, 1]`) with the
/// chance diagonal and a legend giving each curve's AUC.
///
/// Writes `<path_stem>.png` and `<path_stem>.svg`. Errors when `curves` is empty, a curve
/// is empty or has `fpr`/`tpr` of different lengths, a rate is not finite or outside
/// `[0, 1]`, or an AUC is not finite.
pub fn roc_curves(
    path_stem: impl AsRef<Path>,
    title: &str,
    curves: &[RocSeries],
    style: &PlotStyle,
) -> Result<PlotPaths> {
    if curves.is_empty() {
        return Err(ReportError::empty("ROC curves"));
    }
    for c in curves {
        let name = format!("ROC curve {:?}", c.label);
        if c.fpr.is_empty() {
            return Err(ReportError::empty(format!("{name} has no points")));
        }
        if c.tpr.len() != c.fpr.len() {
            return Err(ReportError::mismatch(
                format!("{name}: tpr vs fpr"),
                c.fpr.len(),
                c.tpr.len(),
            ));
        }
        check_range(&format!("{name} fpr"), &c.fpr, 0.0, 1.0)?;
        check_range(&format!("{name} tpr"), &c.tpr, 0.0, 1.0)?;
        if !c.auc.is_finite() {
            return Err(ReportError::NonFinite {
                what: format!("{name} auc"),
                index: 0,
                value: c.auc,
            });
        }
    }
    render(
        &RocFigure {
            title,
            curves,
            style,
        },
        path_stem.as_ref(),
        style,
    )
}

impl Figure for RocFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let st = self.style;
        root.fill(&WHITE)?;
        let tick_w = widest(root, ["0.8".to_owned()], &st.font(st.tick_font_size))?;
        let (light, bold) = st.grid_colors();
        let mut chart = ChartBuilder::on(root)
            .caption(self.title, st.font(st.title_font_size))
            .margin(st.margin)
            .margin_right(st.margin * 2)
            .x_label_area_size(st.x_label_area())
            .y_label_area_size(st.y_label_area(tick_w))
            .build_cartesian_2d(-0.01..1.01, -0.01..1.01)?;
        let fmt = |v: &f64| fmt_num(*v);
        chart
            .configure_mesh()
            .x_desc("False positive rate")
            .y_desc("True positive rate")
            .axis_desc_style(st.font(st.label_font_size))
            .label_style(st.font(st.tick_font_size))
            .x_label_formatter(&fmt)
            .y_label_formatter(&fmt)
            .x_labels(6)
            .y_labels(6)
            .max_light_lines(4)
            .light_line_style(light)
            .bold_line_style(bold)
            .draw()?;
        let grey = RGBColor(150, 150, 150);
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, 0.0), (1.0, 1.0)],
                8,
                6,
                grey.stroke_width(1),
            ))?
            .label("chance")
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], grey.stroke_width(1))
            });
        let line_w = st.line_width.max(1);
        for (i, c) in self.curves.iter().enumerate() {
            let color = palette(i);
            chart
                .draw_series(LineSeries::new(
                    c.fpr.iter().copied().zip(c.tpr.iter().copied()),
                    color.stroke_width(line_w),
                ))?
                .label(format!("{} (AUC = {:.3})", c.label, c.auc))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(line_w))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .margin(12)
            .label_font(st.font(st.legend_font_size))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .draw()?;
        Ok(())
    }
}
