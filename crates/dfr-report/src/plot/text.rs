//! Text rendering for bitmap figures.
//!
//! plotters' `ab_glyph` text path ignores each glyph's left side bearing, which gives
//! uneven letter spacing ("baselin e"). [`TextBackend`] wraps a bitmap backend and lays
//! out and rasterises text itself with ab_glyph (advances, kerning, bearings, a common
//! baseline), at the same em size as plotters' SVG backend (`size / 1.24` pixels).

use std::sync::OnceLock;

use ab_glyph::{point, Font, FontRef, PxScale, ScaleFont};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
};

use super::FONT_BYTES;

/// The embedded font parsed once (None if it does not parse, reported as a font error).
fn font() -> Option<&'static FontRef<'static>> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(FONT_BYTES).ok())
        .as_ref()
}

#[derive(Debug)]
struct FontMissing;

impl std::fmt::Display for FontMissing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the embedded font could not be parsed")
    }
}

impl std::error::Error for FontMissing {}

/// Horizontal layout of a line of text: glyph ids and pen x positions, total width,
/// ascent and descent (negative), all in pixels.
struct Layout {
    glyphs: Vec<(ab_glyph::GlyphId, f32)>,
    width: f32,
    ascent: f32,
    descent: f32,
    scale: PxScale,
}

fn layout(font: &FontRef<'static>, text: &str, size: f64) -> Layout {
    let em = (size / 1.24) as f32;
    let upem = font.units_per_em().unwrap_or(2048.0);
    let scale = PxScale::from(em * font.height_unscaled() / upem);
    let scaled = font.as_scaled(scale);
    let mut glyphs = Vec::with_capacity(text.len());
    let mut x = 0.0f32;
    let mut prev = None;
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(p) = prev {
            x += scaled.kern(p, id);
        }
        glyphs.push((id, x));
        x += scaled.h_advance(id);
        prev = Some(id);
    }
    Layout {
        glyphs,
        width: x,
        ascent: scaled.ascent(),
        descent: scaled.descent(),
        scale,
    }
}

/// A drawing backend that delegates everything to `inner` except text.
pub(crate) struct TextBackend<B> {
    inner: B,
}

impl<B: DrawingBackend> TextBackend<B> {
    pub(crate) fn new(inner: B) -> Self {
        Self { inner }
    }
}

impl<B: DrawingBackend> DrawingBackend for TextBackend<B> {
    type ErrorType = B::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<TStyle: BackendTextStyle>(
        &self,
        text: &str,
        style: &TStyle,
    ) -> Result<(u32, u32), DrawingErrorKind<B::ErrorType>> {
        let font = font().ok_or_else(|| DrawingErrorKind::FontError(Box::new(FontMissing)))?;
        let l = layout(font, text, style.size());
        Ok((l.width.ceil() as u32, (l.ascent - l.descent).ceil() as u32))
    }

    fn draw_text<TStyle: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &TStyle,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        let color = style.color();
        if color.alpha == 0.0 || text.is_empty() {
            return Ok(());
        }
        let font = font().ok_or_else(|| DrawingErrorKind::FontError(Box::new(FontMissing)))?;
        let l = layout(font, text, style.size());
        let anchor = style.anchor();
        let dx = match anchor.h_pos {
            HPos::Left => 0.0,
            HPos::Center => -l.width / 2.0,
            HPos::Right => -l.width,
        };
        // Baseline relative to the anchor point.
        let baseline = match anchor.v_pos {
            VPos::Top => l.ascent,
            VPos::Center => (l.ascent + l.descent) / 2.0,
            VPos::Bottom => l.descent,
        };
        let trans = style.transform();
        for (id, x) in l.glyphs {
            let glyph = id.with_scale_and_position(l.scale, point(dx + x, baseline));
            let Some(outline) = font.outline_glyph(glyph) else {
                continue; // e.g. a space
            };
            let bounds = outline.px_bounds();
            let (bx, by) = (bounds.min.x as i32, bounds.min.y as i32);
            let mut result = Ok(());
            outline.draw(|px, py, coverage| {
                if result.is_err() || coverage <= 0.0 {
                    return;
                }
                let (tx, ty) = trans.transform(bx + px as i32, by + py as i32);
                let c = BackendColor {
                    alpha: color.alpha * f64::from(coverage.min(1.0)),
                    rgb: color.rgb,
                };
                result = self.inner.draw_pixel((pos.0 + tx, pos.1 + ty), c);
            });
            result?;
        }
        Ok(())
    }
}
