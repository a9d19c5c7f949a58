//! RandomResizedCrop parameters (torchvision semantics) and crop-and-resize.

use crate::decode::Rgb8;
use crate::error::{DataError, Result};
use crate::image::ImageF32;
use fast_image_resize as fr;
use rand::Rng;

/// An integer crop box, as torchvision's `RandomResizedCrop.get_params` returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropBox {
    /// Top row.
    pub top: u32,
    /// Left column.
    pub left: u32,
    /// Height.
    pub height: u32,
    /// Width.
    pub width: u32,
}

impl CropBox {
    /// The whole image.
    pub fn full(width: u32, height: u32) -> Self {
        CropBox {
            top: 0,
            left: 0,
            height,
            width,
        }
    }
}

/// Samples a crop exactly as torchvision's `RandomResizedCrop.get_params`: up to ten tries of
/// an area fraction uniform in `scale` and a log-uniform aspect ratio in `ratio`, then a
/// central crop fallback.
pub fn random_resized_crop_params<R: Rng>(
    rng: &mut R,
    width: u32,
    height: u32,
    scale: (f64, f64),
    ratio: (f64, f64),
) -> CropBox {
    let area = (width as f64) * (height as f64);
    let (log_lo, log_hi) = (ratio.0.ln(), ratio.1.ln());
    for _ in 0..10 {
        let target_area = area * uniform(rng, scale.0, scale.1);
        let aspect = uniform(rng, log_lo, log_hi).exp();
        let w = (target_area * aspect).sqrt().round() as i64;
        let h = (target_area / aspect).sqrt().round() as i64;
        if 0 < w && w <= width as i64 && 0 < h && h <= height as i64 {
            let top = rng.random_range(0..=(height as i64 - h)) as u32;
            let left = rng.random_range(0..=(width as i64 - w)) as u32;
            return CropBox {
                top,
                left,
                height: h as u32,
                width: w as u32,
            };
        }
    }
    // Fallback: central crop with the ratio clamped into range.
    let in_ratio = width as f64 / height as f64;
    let (w, h) = if in_ratio < ratio.0 {
        (width, ((width as f64) / ratio.0).round() as u32)
    } else if in_ratio > ratio.1 {
        (((height as f64) * ratio.1).round() as u32, height)
    } else {
        (width, height)
    };
    CropBox {
        top: (height - h) / 2,
        left: (width - w) / 2,
        height: h,
        width: w,
    }
}

/// Uniform sample in `[lo, hi)`; returns `lo` when the range is empty.
pub(crate) fn uniform<R: Rng>(rng: &mut R, lo: f64, hi: f64) -> f64 {
    if hi > lo {
        lo + (hi - lo) * rng.random::<f64>()
    } else {
        lo
    }
}

/// Crops `src` to `crop` and resizes it to `out_w × out_h` with an antialiased bilinear
/// filter, returning a planar
/// `f32` image in `[0, 1]` (PIL's `img.crop(box).resize(size, BILINEAR)`).
pub fn crop_resize(src: &Rgb8, crop: CropBox, out_w: u32, out_h: u32) -> Result<ImageF32> {
    if crop.width == 0
        || crop.height == 0
        || crop.left + crop.width > src.width
        || crop.top + crop.height > src.height
    {
        return Err(DataError::config(
            "crop",
            format!(
                "crop box {crop:?} does not fit a {}×{} image",
                src.width, src.height
            ),
        ));
    }
    // Crop first, then resize the crop alone (torchvision's `resized_crop` on PIL images):
    // the filter must not see pixels outside the box.
    let mut cropped = Vec::with_capacity((crop.width * crop.height * 3) as usize);
    for y in crop.top..crop.top + crop.height {
        let start = ((y * src.width + crop.left) * 3) as usize;
        cropped.extend_from_slice(&src.data[start..start + (crop.width * 3) as usize]);
    }
    let dst_bytes = if crop.width == out_w && crop.height == out_h {
        cropped
    } else {
        let src_view =
            fr::images::ImageRef::new(crop.width, crop.height, &cropped, fr::PixelType::U8x3)
                .map_err(|e| DataError::config("image", e.to_string()))?;
        let mut dst = fr::images::Image::new(out_w, out_h, fr::PixelType::U8x3);
        let options = fr::ResizeOptions::new()
            .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Bilinear));
        fr::Resizer::new()
            .resize(&src_view, &mut dst, &options)
            .map_err(|e| DataError::config("resize", e.to_string()))?;
        dst.into_vec()
    };
    Ok(ImageF32::from_rgb8(
        out_w as usize,
        out_h as usize,
        &dst_bytes,
    ))
}
