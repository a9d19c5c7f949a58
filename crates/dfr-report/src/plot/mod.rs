//! Figures drawn with plotters, written as PNG and SVG with an embedded font.
//!
//! Text is rendered with DejaVu Sans (a subset, see `assets/README.md`) embedded in the
//! binary and registered with plotters' `ab_glyph` backend, so no system font or
//! fontconfig is needed. Every file is written atomically.
//!
//! Each `*_plot` function takes a *path stem* (e.g. `out/fgsm_accuracy`) and writes
//! `<stem>.png` and `<stem>.svg`, returning both paths as [`PlotPaths`].

mod colormap;
mod confusion;
mod curves;
mod gallery;
mod grid;
mod heatmap;
mod roc;
mod text;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use text::TextBackend;

use crate::atomic::{write_atomic, write_bytes};
use crate::error::{ReportError, Result};

pub use colormap::Colormap;
pub use confusion::confusion_matrix;
pub use curves::{metric_vs_eps, CurveAxes, LegendPosition, Series};
pub use gallery::{cam_overlay, gallery, gallery_size, GalleryRow, GalleryStyle, Tile};
pub use heatmap::{heatmap, labelled_heatmap};
pub use roc::{roc_curves, RocSeries};

/// The embedded font (a subset of DejaVu Sans).
pub(crate) static FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans-subset.ttf");

/// Font family the embedded font is registered under; SVG files name it as their CSS
/// `font-family`, so viewers use DejaVu Sans where installed and their sans-serif otherwise.
pub(crate) const FONT_FAMILY: &str = "DejaVu Sans, sans-serif";

/// Register the embedded font with plotters, once per process.
pub(crate) fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        [FONT_FAMILY, "sans-serif"].into_iter().all(|family| {
            [FontStyle::Normal, FontStyle::Bold]
                .into_iter()
                .all(|style| plotters::style::register_font(family, style, FONT_BYTES).is_ok())
        })
    });
    if ok {
        Ok(())
    } else {
        Err(ReportError::Font)
    }
}

/// Sizes of a figure and of its text, lines and markers.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotStyle {
    /// Figure width in pixels.
    pub width: u32,
    /// Figure height in pixels.
    pub height: u32,
    /// Title font size in pixels.
    pub title_font_size: u32,
    /// Axis description font size in pixels.
    pub label_font_size: u32,
    /// Tick label font size in pixels.
    pub tick_font_size: u32,
    /// Legend font size in pixels.
    pub legend_font_size: u32,
    /// Font size of the values written inside heatmap and confusion-matrix cells.
    pub annotation_font_size: u32,
    /// Digits after the decimal point of heatmap cell values.
    pub annotation_decimals: usize,
    /// Line width in pixels.
    pub line_width: u32,
    /// Marker radius in pixels (0 disables markers).
    pub marker_size: u32,
    /// Blank margin around the figure in pixels.
    pub margin: u32,
}

impl Default for PlotStyle {
    /// 800×600 figure with readable text.
    fn default() -> Self {
        Self {
            width: 800,
            height: 600,
            title_font_size: 30,
            label_font_size: 22,
            tick_font_size: 18,
            legend_font_size: 19,
            annotation_font_size: 19,
            annotation_decimals: 3,
            line_width: 2,
            marker_size: 4,
            margin: 16,
        }
    }
}

impl PlotStyle {
    /// The default style with another figure size.
    pub fn sized(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            ..Self::default()
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        validate_size(self.width, self.height)?;
        let fonts = [
            ("title_font_size", self.title_font_size),
            ("label_font_size", self.label_font_size),
            ("tick_font_size", self.tick_font_size),
            ("legend_font_size", self.legend_font_size),
            ("annotation_font_size", self.annotation_font_size),
        ];
        for (name, v) in fonts {
            if v > MAX_FONT {
                return Err(ReportError::InvalidArgument(format!(
                    "{name} {v} exceeds {MAX_FONT} pixels"
                )));
            }
        }
        if self.line_width > 64 || self.marker_size > 64 {
            return Err(ReportError::InvalidArgument(format!(
                "line_width {} and marker_size {} must be at most 64 pixels",
                self.line_width, self.marker_size
            )));
        }
        let max_margin = self.width.min(self.height) / 4;
        if self.margin > max_margin {
            return Err(ReportError::InvalidArgument(format!(
                "margin {} exceeds a quarter of the smaller side ({max_margin} pixels)",
                self.margin
            )));
        }
        Ok(())
    }

    pub(crate) fn font(&self, size: u32) -> TextStyle<'static> {
        TextStyle::from((FONT_FAMILY, f64::from(size)).into_font())
    }
}

pub(crate) const MIN_SIDE: u32 = 64;
/// Largest accepted font size in pixels.
pub(crate) const MAX_FONT: u32 = 256;
pub(crate) const MAX_SIDE: u32 = 8_192;

pub(crate) fn validate_size(width: u32, height: u32) -> Result<()> {
    for (name, v) in [("width", width), ("height", height)] {
        if !(MIN_SIDE..=MAX_SIDE).contains(&v) {
            return Err(ReportError::InvalidArgument(format!(
                "figure {name} {v} is outside [{MIN_SIDE}, {MAX_SIDE}] pixels"
            )));
        }
    }
    Ok(())
}

/// The two files written for one figure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlotPaths {
    /// `<stem>.png`
    pub png: PathBuf,
    /// `<stem>.svg`
    pub svg: PathBuf,
}

impl PlotPaths {
    /// `<stem>.png` and `<stem>.svg` (the extension is appended, so a stem may contain dots).
    pub fn from_stem(stem: impl AsRef<Path>) -> Result<Self> {
        let stem = stem.as_ref();
        if stem.file_name().is_none() {
            return Err(ReportError::InvalidArgument(format!(
                "plot path stem {} does not end in a file name",
                stem.display()
            )));
        }
        let with = |ext: &str| {
            let mut s: OsString = stem.as_os_str().to_owned();
            s.push(".");
            s.push(ext);
            PathBuf::from(s)
        };
        Ok(Self {
            png: with("png"),
            svg: with("svg"),
        })
    }
}

/// Result of drawing on a plotters drawing area.
pub(crate) type DrawResult<DB> =
    std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A figure that can be drawn on any plotters backend.
pub(crate) trait Figure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB>;
}

fn draw_err(e: impl std::fmt::Display) -> ReportError {
    ReportError::Draw(e.to_string())
}

/// Draw `fig` into a PNG and an SVG of `style`'s size at `<stem>.png` / `<stem>.svg`.
pub(crate) fn render<F: Figure>(fig: &F, stem: &Path, style: &PlotStyle) -> Result<PlotPaths> {
    style.validate()?;
    ensure_font()?;
    let paths = PlotPaths::from_stem(stem)?;
    let size = (style.width, style.height);
    let png = render_rgb(fig, size)?;
    write_png(&paths.png, &png)?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        fig.draw(&root).map_err(draw_err)?;
        root.present().map_err(draw_err)?;
    }
    write_bytes(&paths.svg, svg.as_bytes())?;
    Ok(paths)
}

/// Draw `fig` into an in-memory RGB image of the given size.
pub(crate) fn render_rgb<F: Figure>(fig: &F, (w, h): (u32, u32)) -> Result<image::RgbImage> {
    validate_size(w, h)?;
    ensure_font()?;
    let mut buf = vec![255u8; w as usize * h as usize * 3];
    {
        let root =
            TextBackend::new(BitMapBackend::with_buffer(&mut buf, (w, h))).into_drawing_area();
        fig.draw(&root).map_err(draw_err)?;
        root.present().map_err(draw_err)?;
    }
    image::RgbImage::from_raw(w, h, buf)
        .ok_or_else(|| ReportError::Draw("bitmap buffer has the wrong size".to_owned()))
}

/// Encode `img` as PNG at `path`, atomically.
pub(crate) fn write_png(path: &Path, img: &image::RgbImage) -> Result<()> {
    use image::ImageEncoder;
    write_atomic(path, |w| {
        image::codecs::png::PngEncoder::new(w).write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )?;
        Ok(())
    })
}

/// Series colours (matplotlib's tab10).
pub(crate) const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

pub(crate) fn palette(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Format a number compactly for ticks and labels: at most 4 significant digits,
/// trailing zeros removed, scientific notation for very large or small magnitudes.
pub(crate) fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v == 0.0 {
        return "0".to_owned();
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        return format!("{v:.2e}");
    }
    let digits = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    };
    if s == "-0" {
        "0".to_owned()
    } else {
        s
    }
}

/// `(lo, hi)` padded by `frac` of the span, or by a unit-ish amount when the span is 0
/// (or negligible next to the values' magnitude). Errors when the result is not finite
/// (plotters cannot lay out ticks for such ranges).
pub(crate) fn padded(lo: f64, hi: f64, frac: f64) -> Result<(f64, f64)> {
    let span = hi - lo;
    let magnitude = lo.abs().max(hi.abs());
    let (a, b) = if span > magnitude * 1e-9 {
        (lo - span * frac, hi + span * frac)
    } else {
        let d = if magnitude == 0.0 {
            0.5
        } else {
            magnitude * 0.1
        };
        (lo - d, hi + d)
    };
    if a.is_finite() && b.is_finite() && (b - a).is_finite() && b > a {
        Ok((a, b))
    } else {
        Err(ReportError::InvalidArgument(format!(
            "data range [{lo}, {hi}] is too wide to draw"
        )))
    }
}

/// Up to about `max_n` "nice" tick values (multiples of 1, 2 or 5 × 10^k) in `[lo, hi]`.
pub(crate) fn nice_ticks(lo: f64, hi: f64, max_n: usize) -> Vec<f64> {
    let span = hi - lo;
    if span.is_nan() || span <= 0.0 || !span.is_finite() || max_n == 0 {
        return vec![lo];
    }
    let raw = span / max_n as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// Width in pixels of the widest of `labels` in `font` (0 when there are none).
pub(crate) fn widest<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    labels: impl IntoIterator<Item = String>,
    font: &TextStyle<'_>,
) -> Result<u32, DrawingAreaErrorKind<DB::ErrorType>> {
    let mut w = 0;
    for l in labels {
        w = w.max(area.estimate_text_size(&l, font)?.0);
    }
    Ok(w)
}

impl PlotStyle {
    /// Height of the x label area: tick labels plus the axis description.
    pub(crate) fn x_label_area(&self) -> u32 {
        self.tick_font_size + self.label_font_size + 26
    }

    /// Width of the y label area for tick labels at most `tick_w` pixels wide.
    pub(crate) fn y_label_area(&self, tick_w: u32) -> u32 {
        self.label_font_size + tick_w + 30
    }

    /// Light and bold grid line colours.
    pub(crate) fn grid_colors(&self) -> (RGBColor, RGBColor) {
        (RGBColor(243, 243, 243), RGBColor(215, 215, 215))
    }
}

/// Pick black or white text for legibility on `bg`.
pub(crate) fn text_color_on(bg: RGBColor) -> RGBColor {
    let RGBColor(r, g, b) = bg;
    let lum = 0.299 * f64::from(r) + 0.587 * f64::from(g) + 0.114 * f64::from(b);
    if lum > 140.0 {
        BLACK
    } else {
        WHITE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fmt_num_is_compact() {
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(1.0), "1");
        assert_eq!(fmt_num(0.5), "0.5");
        assert_eq!(fmt_num(4.0 / 255.0), "0.01569");
        assert_eq!(fmt_num(-2.5), "-2.5");
        assert_eq!(fmt_num(1234.0), "1234");
        assert_eq!(fmt_num(1e-5), "1.00e-5");
    }

    #[test]
    fn stems_keep_dots() {
        let p = PlotPaths::from_stem("out/acc_eps0.5").unwrap();
        assert_eq!(p.png, PathBuf::from("out/acc_eps0.5.png"));
        assert_eq!(p.svg, PathBuf::from("out/acc_eps0.5.svg"));
    }
}
