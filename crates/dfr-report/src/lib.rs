//! Reports for deepfake-robustness experiments.
//!
//! - [`table`]: polars DataFrames written as CSV, Parquet and Markdown tables.
//! - [`plot`]: figures drawn with plotters as PNG and SVG, text set in an embedded font
//!   (no system fonts or fontconfig needed): metric-vs-ε curves, α × r ablation heatmaps,
//!   ROC curves, confusion matrices, and galleries of clean / adversarial Grad-CAM overlays.
//! - [`markdown`]: a Markdown report page linking tables and figures.
//!
//! Every file is written atomically (temporary file in the destination directory, then
//! rename), and bad input gives a typed [`ReportError`], never a panic.

mod atomic;
pub mod error;
pub mod markdown;
pub mod plot;
pub mod table;

pub use error::{ReportError, Result};
pub use markdown::ReportPage;
pub use plot::{
    cam_overlay, confusion_matrix, gallery, gallery_size, heatmap, labelled_heatmap, metric_vs_eps,
    roc_curves, Colormap, CurveAxes, GalleryRow, GalleryStyle, LegendPosition, PlotPaths,
    PlotStyle, RocSeries, Series, Tile,
};
pub use table::{frame, write_all, MarkdownOptions, TablePaths};

/// The polars version this crate is built against, re-exported so callers build
/// DataFrames with matching types (`dfr_report::polars::prelude::*`).
pub use polars;
