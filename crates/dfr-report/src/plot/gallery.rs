//! Image galleries: a grid of captioned tiles, e.g. clean image / clean Grad-CAM overlay /
//! adversarial Grad-CAM overlay, one row per model or image.

use std::path::Path;

use image::imageops::FilterType;
use image::{ImageBuffer, Luma, RgbImage};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::text::TextBackend;
use super::{ensure_font, validate_size, write_png, Colormap, FONT_FAMILY, MAX_SIDE};
use crate::error::{ReportError, Result};

/// One captioned image of a gallery row.
#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    /// Caption drawn under the image (shortened with `…` when too wide).
    pub caption: String,
    /// The image; scaled to fit the tile square, keeping its aspect ratio.
    pub image: RgbImage,
}

impl Tile {
    /// A tile from its caption and image.
    pub fn new(caption: impl Into<String>, image: RgbImage) -> Self {
        Self {
            caption: caption.into(),
            image,
        }
    }
}

/// One gallery row: a label on the left and its tiles.
#[derive(Debug, Clone, PartialEq)]
pub struct GalleryRow {
    /// Row label (e.g. the model name), wrapped onto several lines when too wide.
    pub label: String,
    /// The row's tiles, left to right.
    pub tiles: Vec<Tile>,
}

impl GalleryRow {
    /// A row from its label and tiles.
    pub fn new(label: impl Into<String>, tiles: Vec<Tile>) -> Self {
        Self {
            label: label.into(),
            tiles,
        }
    }
}

/// Layout of a gallery (see [`gallery_size`] for the resulting image size).
#[derive(Debug, Clone, PartialEq)]
pub struct GalleryStyle {
    /// Side of the square each image is fitted into, in pixels.
    pub tile_size: u32,
    /// Space between tiles and around the grid, in pixels.
    pub padding: u32,
    /// Width of the row-label column, in pixels (0: no labels).
    pub label_width: u32,
    /// Height of the title band, in pixels (0: no title).
    pub title_height: u32,
    /// Height of the caption band under each tile, in pixels.
    pub caption_height: u32,
    /// Title font size in pixels.
    pub title_font_size: u32,
    /// Row label font size in pixels.
    pub label_font_size: u32,
    /// Caption font size in pixels.
    pub caption_font_size: u32,
}

impl Default for GalleryStyle {
    /// 224-pixel tiles (EfficientNet input size) with a 180-pixel label column.
    fn default() -> Self {
        Self {
            tile_size: 224,
            padding: 12,
            label_width: 180,
            title_height: 56,
            caption_height: 30,
            title_font_size: 26,
            label_font_size: 18,
            caption_font_size: 16,
        }
    }
}

/// Width and height in pixels of a gallery with `n_rows` rows and at most `n_cols` tiles
/// per row: `label_width + n_cols·(tile_size + padding) + padding` by
/// `title_height + n_rows·(tile_size + caption_height + padding) + padding`
/// (saturating at `u32::MAX`).
pub fn gallery_size(n_rows: usize, n_cols: usize, style: &GalleryStyle) -> (u32, u32) {
    let n_rows = u32::try_from(n_rows).unwrap_or(u32::MAX);
    let n_cols = u32::try_from(n_cols).unwrap_or(u32::MAX);
    let w = n_cols
        .saturating_mul(style.tile_size.saturating_add(style.padding))
        .saturating_add(style.label_width)
        .saturating_add(style.padding);
    let h = n_rows
        .saturating_mul(
            style
                .tile_size
                .saturating_add(style.caption_height)
                .saturating_add(style.padding),
        )
        .saturating_add(style.title_height)
        .saturating_add(style.padding);
    (w, h)
}

/// Draw a gallery PNG at `path`: `title` on top, then one row per [`GalleryRow`] with its
/// label on the left and its tiles (each image fitted into a `tile_size` square with a thin
/// border, its caption below). Rows may have different numbers of tiles; the grid has as
/// many columns as the longest row. Returns the image size, equal to [`gallery_size`].
///
/// Errors when `rows` is empty, every row is empty, an image has zero width or height,
/// `tile_size` is 0, or the gallery would exceed 8192 pixels on a side, or a font size exceeds 256 pixels.
pub fn gallery(
    path: impl AsRef<Path>,
    title: &str,
    rows: &[GalleryRow],
    style: &GalleryStyle,
) -> Result<(u32, u32)> {
    let path = path.as_ref();
    if rows.is_empty() {
        return Err(ReportError::empty("gallery rows"));
    }
    let n_cols = rows.iter().map(|r| r.tiles.len()).max().unwrap_or(0);
    if n_cols == 0 {
        return Err(ReportError::empty("gallery tiles (every row is empty)"));
    }
    let fonts = [
        style.title_font_size,
        style.label_font_size,
        style.caption_font_size,
    ];
    if fonts.iter().any(|f| *f > super::MAX_FONT) {
        return Err(ReportError::InvalidArgument(format!(
            "gallery font sizes {fonts:?} must be at most {} pixels",
            super::MAX_FONT
        )));
    }
    if style.tile_size == 0 {
        return Err(ReportError::InvalidArgument(
            "gallery tile_size must be > 0".to_owned(),
        ));
    }
    for (i, row) in rows.iter().enumerate() {
        for (j, tile) in row.tiles.iter().enumerate() {
            if tile.image.width() == 0 || tile.image.height() == 0 {
                return Err(ReportError::InvalidArgument(format!(
                    "gallery tile ({i}, {j}) {:?} has an empty image",
                    tile.caption
                )));
            }
        }
    }
    let (w, h) = gallery_size(rows.len(), n_cols, style);
    if w > MAX_SIDE || h > MAX_SIDE {
        return Err(ReportError::InvalidArgument(format!(
            "gallery of {w}×{h} pixels exceeds {MAX_SIDE} pixels on a side"
        )));
    }
    validate_size(w.max(super::MIN_SIDE), h.max(super::MIN_SIDE))?;
    ensure_font()?;

    let mut canvas = RgbImage::from_pixel(w, h, image::Rgb([255, 255, 255]));
    let (ts, pad) = (style.tile_size, style.padding);
    let tile_origin = |i: usize, j: usize| -> (u32, u32) {
        (
            style.label_width + pad + j as u32 * (ts + pad),
            style.title_height + pad + i as u32 * (ts + style.caption_height + pad),
        )
    };
    for (i, row) in rows.iter().enumerate() {
        for (j, tile) in row.tiles.iter().enumerate() {
            let (x0, y0) = tile_origin(i, j);
            let fitted = fit(&tile.image, ts);
            let dx = (ts - fitted.width()) / 2;
            let dy = (ts - fitted.height()) / 2;
            image::imageops::replace(&mut canvas, &fitted, i64::from(x0 + dx), i64::from(y0 + dy));
        }
    }

    let mut buf = canvas.into_raw();
    {
        let root =
            TextBackend::new(BitMapBackend::with_buffer(&mut buf, (w, h))).into_drawing_area();
        let draw = |e: DrawingAreaErrorKind<_>| ReportError::Draw(e.to_string());
        let font = |size: u32| TextStyle::from((FONT_FAMILY, f64::from(size)).into_font());
        if style.title_height > 0 && !title.is_empty() {
            let f = font(style.title_font_size).pos(Pos::new(HPos::Center, VPos::Center));
            let text = ellipsize(&root, title, &f, w.saturating_sub(2 * pad))?;
            root.draw(&Text::new(
                text,
                ((w / 2) as i32, (style.title_height / 2 + pad / 2) as i32),
                f,
            ))
            .map_err(draw)?;
        }
        let border = RGBColor(190, 190, 190).stroke_width(1);
        let caption_font = font(style.caption_font_size).pos(Pos::new(HPos::Center, VPos::Center));
        let label_font = font(style.label_font_size).pos(Pos::new(HPos::Left, VPos::Center));
        for (i, row) in rows.iter().enumerate() {
            let (_, y0) = tile_origin(i, 0);
            if style.label_width > 0 && !row.label.is_empty() {
                let lines = wrap(
                    &root,
                    &row.label,
                    &label_font,
                    style.label_width.saturating_sub(pad),
                )?;
                let line_h = (style.label_font_size as f64 * 1.25).round() as i32;
                let block = line_h * lines.len() as i32;
                let top = (y0 + ts / 2) as i32 - block / 2 + line_h / 2;
                for (k, line) in lines.into_iter().enumerate() {
                    root.draw(&Text::new(
                        line,
                        (pad as i32, top + k as i32 * line_h),
                        label_font.clone(),
                    ))
                    .map_err(draw)?;
                }
            }
            for (j, tile) in row.tiles.iter().enumerate() {
                let (x0, y0) = tile_origin(i, j);
                let (x0, y0) = (x0 as i32, y0 as i32);
                let s = ts as i32;
                root.draw(&Rectangle::new(
                    [(x0 - 1, y0 - 1), (x0 + s, y0 + s)],
                    border,
                ))
                .map_err(draw)?;
                let text = ellipsize(&root, &tile.caption, &caption_font, ts + pad / 2)?;
                let cy = y0 + s + (style.caption_height / 2) as i32 + 2;
                root.draw(&Text::new(text, (x0 + s / 2, cy), caption_font.clone()))
                    .map_err(draw)?;
            }
        }
        root.present().map_err(draw)?;
    }
    let canvas = RgbImage::from_raw(w, h, buf)
        .ok_or_else(|| ReportError::Draw("gallery buffer has the wrong size".to_owned()))?;
    write_png(path, &canvas)?;
    Ok((w, h))
}

/// Scale `img` to fit a `side`×`side` square, keeping its aspect ratio.
fn fit(img: &RgbImage, side: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    if w == side && h <= side || h == side && w <= side {
        return img.clone();
    }
    let scale = f64::from(side) / f64::from(w.max(h));
    let nw = ((f64::from(w) * scale).round() as u32).clamp(1, side);
    let nh = ((f64::from(h) * scale).round() as u32).clamp(1, side);
    let filter = if scale < 1.0 {
        FilterType::Triangle
    } else {
        FilterType::CatmullRom
    };
    image::imageops::resize(img, nw, nh, filter)
}

fn text_width<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    text: &str,
    font: &TextStyle<'_>,
) -> Result<u32> {
    root.estimate_text_size(text, font)
        .map(|(w, _)| w)
        .map_err(|e| ReportError::Draw(e.to_string()))
}

/// `text` shortened with `…` so that it fits in `max_w` pixels.
fn ellipsize<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    text: &str,
    font: &TextStyle<'_>,
    max_w: u32,
) -> Result<String> {
    if text_width(root, text, font)? <= max_w {
        return Ok(text.to_owned());
    }
    let chars: Vec<char> = text.chars().collect();
    for keep in (0..chars.len()).rev() {
        let candidate: String = chars[..keep]
            .iter()
            .collect::<String>()
            .trim_end()
            .to_owned()
            + "…";
        if text_width(root, &candidate, font)? <= max_w {
            return Ok(candidate);
        }
    }
    Ok("…".to_owned())
}

/// Greedy word wrap of `text` into lines of at most `max_w` pixels (long words ellipsized).
fn wrap<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    text: &str,
    font: &TextStyle<'_>,
    max_w: u32,
) -> Result<Vec<String>> {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let candidate = if current.is_empty() {
            word.to_owned()
        } else {
            format!("{current} {word}")
        };
        if current.is_empty() || text_width(root, &candidate, font)? <= max_w {
            current = candidate;
        } else {
            lines.push(std::mem::take(&mut current));
            current = word.to_owned();
        }
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
        .into_iter()
        .map(|l| ellipsize(root, &l, font, max_w))
        .collect()
}

/// Overlay a class-activation map on an image: the map (`cam_width`×`cam_height`, row
/// major) is min-max normalised, resized bilinearly to the image size, coloured with the
/// jet colour map and alpha-blended (`alpha` = weight of the map, in `[0, 1]`).
///
/// Errors when the map is empty, its length is not `cam_width·cam_height`, it holds a
/// non-finite value, the image is empty, or `alpha` is outside `[0, 1]`. A constant map
/// is drawn as all zeros (dark blue).
pub fn cam_overlay(
    base: &RgbImage,
    cam: &[f32],
    cam_width: u32,
    cam_height: u32,
    alpha: f32,
) -> Result<RgbImage> {
    if base.width() == 0 || base.height() == 0 {
        return Err(ReportError::InvalidArgument(
            "cam_overlay base image is empty".to_owned(),
        ));
    }
    if cam.is_empty() || cam_width == 0 || cam_height == 0 {
        return Err(ReportError::empty("cam_overlay map"));
    }
    let expected = cam_width as usize * cam_height as usize;
    if cam.len() != expected {
        return Err(ReportError::mismatch(
            "cam_overlay map length vs width·height",
            expected,
            cam.len(),
        ));
    }
    if let Some(index) = cam.iter().position(|v| !v.is_finite()) {
        return Err(ReportError::NonFinite {
            what: "cam_overlay map".to_owned(),
            index,
            value: f64::from(cam[index]),
        });
    }
    if !(0.0..=1.0).contains(&alpha) {
        return Err(ReportError::OutOfRange {
            what: "cam_overlay alpha".to_owned(),
            index: 0,
            value: f64::from(alpha),
            min: 0.0,
            max: 1.0,
        });
    }
    let (lo, hi) = cam
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    let span = hi - lo;
    let norm: Vec<f32> = cam
        .iter()
        .map(|v| if span > 0.0 { (v - lo) / span } else { 0.0 })
        .collect();
    let map: ImageBuffer<Luma<f32>, Vec<f32>> = ImageBuffer::from_raw(cam_width, cam_height, norm)
        .ok_or_else(|| ReportError::mismatch("cam_overlay map buffer", expected, cam.len()))?;
    let map = image::imageops::resize(&map, base.width(), base.height(), FilterType::Triangle);
    let a = f64::from(alpha);
    let mut out = base.clone();
    for (p, m) in out.pixels_mut().zip(map.pixels()) {
        let c = Colormap::Jet.rgb(f64::from(m.0[0]));
        for (channel, target) in p.0.iter_mut().zip(c) {
            let v = (1.0 - a) * f64::from(*channel) + a * f64::from(target);
            *channel = v.round().clamp(0.0, 255.0) as u8;
        }
    }
    Ok(out)
}
