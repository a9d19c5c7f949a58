//! Heat-map overlays: OpenCV's `COLORMAP_JET` blended over the image, exactly as
//! pytorch-grad-cam 1.5's `show_cam_on_image(img, mask, use_rgb=True)`:
//!
//! ```text
//! heatmap = RGB(applyColorMap(uint8(255·mask), COLORMAP_JET)) / 255   (float32)
//! cam     = (1 − image_weight)·heatmap + image_weight·img
//! cam     = cam / max(cam)
//! out     = uint8(255·cam)                                            (truncation)
//! ```
//!
//! Images are RGB in [0, 1]; masks (CAMs) are in [0, 1]. PNG files are written
//! atomically (temporary file in the same directory, then rename).

use std::path::Path;

use candle_core::{DType, Tensor};
use image::{ImageEncoder, RgbImage};

use dfr_fs::AtomicFile;

use crate::error::{ExplainError, Result};

/// pytorch-grad-cam's default weight of the image in the blend.
pub const DEFAULT_IMAGE_WEIGHT: f32 = 0.5;

/// OpenCV's `COLORMAP_JET` look-up table (OpenCV 4.x/5.x), converted to RGB: entry `v`
/// is `cv2.applyColorMap(v, COLORMAP_JET)` with the channels reversed. Entry 0 is dark
/// blue (0, 0, 128), entry 255 dark red (128, 0, 0).
pub const JET_LUT: [[u8; 3]; 256] = [
    [0, 0, 128],
    [0, 0, 132],
    [0, 0, 136],
    [0, 0, 140],
    [0, 0, 144],
    [0, 0, 148],
    [0, 0, 152],
    [0, 0, 156],
    [0, 0, 160],
    [0, 0, 164],
    [0, 0, 168],
    [0, 0, 172],
    [0, 0, 176],
    [0, 0, 180],
    [0, 0, 184],
    [0, 0, 188],
    [0, 0, 192],
    [0, 0, 196],
    [0, 0, 200],
    [0, 0, 204],
    [0, 0, 208],
    [0, 0, 212],
    [0, 0, 216],
    [0, 0, 220],
    [0, 0, 224],
    [0, 0, 228],
    [0, 0, 232],
    [0, 0, 236],
    [0, 0, 240],
    [0, 0, 244],
    [0, 0, 248],
    [0, 0, 252],
    [0, 0, 255],
    [0, 4, 255],
    [0, 8, 255],
    [0, 12, 255],
    [0, 16, 255],
    [0, 20, 255],
    [0, 24, 255],
    [0, 28, 255],
    [0, 32, 255],
    [0, 36, 255],
    [0, 40, 255],
    [0, 44, 255],
    [0, 48, 255],
    [0, 52, 255],
    [0, 56, 255],
    [0, 60, 255],
    [0, 64, 255],
    [0, 68, 255],
    [0, 72, 255],
    [0, 76, 255],
    [0, 80, 255],
    [0, 84, 255],
    [0, 88, 255],
    [0, 92, 255],
    [0, 96, 255],
    [0, 100, 255],
    [0, 104, 255],
    [0, 108, 255],
    [0, 112, 255],
    [0, 116, 255],
    [0, 120, 255],
    [0, 124, 255],
    [0, 128, 255],
    [0, 132, 255],
    [0, 136, 255],
    [0, 140, 255],
    [0, 144, 255],
    [0, 148, 255],
    [0, 152, 255],
    [0, 156, 255],
    [0, 160, 255],
    [0, 164, 255],
    [0, 168, 255],
    [0, 172, 255],
    [0, 176, 255],
    [0, 180, 255],
    [0, 184, 255],
    [0, 188, 255],
    [0, 192, 255],
    [0, 196, 255],
    [0, 200, 255],
    [0, 204, 255],
    [0, 208, 255],
    [0, 212, 255],
    [0, 216, 255],
    [0, 220, 255],
    [0, 224, 255],
    [0, 228, 255],
    [0, 232, 255],
    [0, 236, 255],
    [0, 240, 255],
    [0, 244, 255],
    [0, 248, 255],
    [0, 252, 255],
    [2, 255, 254],
    [6, 255, 250],
    [10, 255, 246],
    [14, 255, 242],
    [18, 255, 238],
    [22, 255, 234],
    [26, 255, 230],
    [30, 255, 226],
    [34, 255, 222],
    [38, 255, 218],
    [42, 255, 214],
    [46, 255, 210],
    [50, 255, 206],
    [54, 255, 202],
    [58, 255, 198],
    [62, 255, 194],
    [66, 255, 190],
    [70, 255, 186],
    [74, 255, 182],
    [78, 255, 178],
    [82, 255, 174],
    [86, 255, 170],
    [90, 255, 166],
    [94, 255, 162],
    [98, 255, 158],
    [102, 255, 154],
    [106, 255, 150],
    [110, 255, 146],
    [114, 255, 142],
    [118, 255, 138],
    [122, 255, 134],
    [126, 255, 130],
    [130, 255, 126],
    [134, 255, 122],
    [138, 255, 118],
    [142, 255, 114],
    [146, 255, 110],
    [150, 255, 106],
    [154, 255, 102],
    [158, 255, 98],
    [162, 255, 94],
    [166, 255, 90],
    [170, 255, 86],
    [174, 255, 82],
    [178, 255, 78],
    [182, 255, 74],
    [186, 255, 70],
    [190, 255, 66],
    [194, 255, 62],
    [198, 255, 58],
    [202, 255, 54],
    [206, 255, 50],
    [210, 255, 46],
    [214, 255, 42],
    [218, 255, 38],
    [222, 255, 34],
    [226, 255, 30],
    [230, 255, 26],
    [234, 255, 22],
    [238, 255, 18],
    [242, 255, 14],
    [246, 255, 10],
    [250, 255, 6],
    [254, 255, 1],
    [255, 252, 0],
    [255, 248, 0],
    [255, 244, 0],
    [255, 240, 0],
    [255, 236, 0],
    [255, 232, 0],
    [255, 228, 0],
    [255, 224, 0],
    [255, 220, 0],
    [255, 216, 0],
    [255, 212, 0],
    [255, 208, 0],
    [255, 204, 0],
    [255, 200, 0],
    [255, 196, 0],
    [255, 192, 0],
    [255, 188, 0],
    [255, 184, 0],
    [255, 180, 0],
    [255, 176, 0],
    [255, 172, 0],
    [255, 168, 0],
    [255, 164, 0],
    [255, 160, 0],
    [255, 156, 0],
    [255, 152, 0],
    [255, 148, 0],
    [255, 144, 0],
    [255, 140, 0],
    [255, 136, 0],
    [255, 132, 0],
    [255, 128, 0],
    [255, 124, 0],
    [255, 120, 0],
    [255, 116, 0],
    [255, 112, 0],
    [255, 108, 0],
    [255, 104, 0],
    [255, 100, 0],
    [255, 96, 0],
    [255, 92, 0],
    [255, 88, 0],
    [255, 84, 0],
    [255, 80, 0],
    [255, 76, 0],
    [255, 72, 0],
    [255, 68, 0],
    [255, 64, 0],
    [255, 60, 0],
    [255, 56, 0],
    [255, 52, 0],
    [255, 48, 0],
    [255, 44, 0],
    [255, 40, 0],
    [255, 36, 0],
    [255, 32, 0],
    [255, 28, 0],
    [255, 24, 0],
    [255, 20, 0],
    [255, 16, 0],
    [255, 12, 0],
    [255, 8, 0],
    [255, 4, 0],
    [255, 0, 0],
    [252, 0, 0],
    [248, 0, 0],
    [244, 0, 0],
    [240, 0, 0],
    [236, 0, 0],
    [232, 0, 0],
    [228, 0, 0],
    [224, 0, 0],
    [220, 0, 0],
    [216, 0, 0],
    [212, 0, 0],
    [208, 0, 0],
    [204, 0, 0],
    [200, 0, 0],
    [196, 0, 0],
    [192, 0, 0],
    [188, 0, 0],
    [184, 0, 0],
    [180, 0, 0],
    [176, 0, 0],
    [172, 0, 0],
    [168, 0, 0],
    [164, 0, 0],
    [160, 0, 0],
    [156, 0, 0],
    [152, 0, 0],
    [148, 0, 0],
    [144, 0, 0],
    [140, 0, 0],
    [136, 0, 0],
    [132, 0, 0],
    [128, 0, 0],
];

/// The RGB jet colour of a byte value (OpenCV `COLORMAP_JET`).
pub fn jet(value: u8) -> [u8; 3] {
    JET_LUT[value as usize]
}

/// The byte pytorch-grad-cam feeds to the colour map for a mask value:
/// `uint8(255·v)` (truncation), with values clamped to [0, 1] first.
fn mask_byte(v: f32) -> u8 {
    (255.0f32 * v.clamp(0.0, 1.0)) as u8
}

fn check_mask(mask: &[f32], height: usize, width: usize) -> Result<()> {
    if height == 0 || width == 0 {
        return Err(ExplainError::invalid(format!(
            "empty overlay size {height}×{width}"
        )));
    }
    if mask.len() != height * width {
        return Err(ExplainError::invalid(format!(
            "mask has {} values, the image is {height}×{width}",
            mask.len()
        )));
    }
    if mask.iter().any(|v| v.is_nan()) {
        return Err(ExplainError::invalid("mask contains NaN"));
    }
    Ok(())
}

fn dims_u32(height: usize, width: usize) -> Result<(u32, u32)> {
    match (u32::try_from(width), u32::try_from(height)) {
        (Ok(w), Ok(h)) => Ok((w, h)),
        _ => Err(ExplainError::invalid(format!(
            "image {height}×{width} too large"
        ))),
    }
}

/// The jet heat map of a mask (`height×width`, row-major, values in [0, 1]; values
/// outside are clamped).
pub fn heatmap(mask: &[f32], height: usize, width: usize) -> Result<RgbImage> {
    check_mask(mask, height, width)?;
    let (w, h) = dims_u32(height, width)?;
    let raw: Vec<u8> = mask.iter().flat_map(|&v| jet(mask_byte(v))).collect();
    RgbImage::from_raw(w, h, raw)
        .ok_or_else(|| ExplainError::invalid("heat-map buffer has the wrong size"))
}

/// Blends the jet heat map of `mask` over an image given planar (C×H×W, the layout of
/// one image of a tensor) RGB values in [0, 1], as pytorch-grad-cam's
/// `show_cam_on_image(img, mask, use_rgb=True, image_weight)` does.
///
/// Errors when the sizes differ, an image value is outside [0, 1] (pytorch-grad-cam
/// rejects values above 1), the mask contains NaN, or `image_weight` is outside [0, 1].
/// Mask values outside [0, 1] are clamped.
pub fn overlay_planar(
    image_chw: &[f32],
    mask: &[f32],
    height: usize,
    width: usize,
    image_weight: f32,
) -> Result<RgbImage> {
    check_mask(mask, height, width)?;
    let hw = height * width;
    if image_chw.len() != 3 * hw {
        return Err(ExplainError::invalid(format!(
            "image has {} values, expected 3×{height}×{width}",
            image_chw.len()
        )));
    }
    blend(
        |i, c| image_chw[c * hw + i],
        mask,
        height,
        width,
        image_weight,
    )
}

/// [`overlay_planar`] for an 8-bit RGB image (values divided by 255).
pub fn overlay_rgb(image: &RgbImage, mask: &[f32], image_weight: f32) -> Result<RgbImage> {
    let (w, h) = image.dimensions();
    let (height, width) = (h as usize, w as usize);
    check_mask(mask, height, width)?;
    let raw = image.as_raw();
    blend(
        |i, c| raw[3 * i + c] as f32 / 255.0,
        mask,
        height,
        width,
        image_weight,
    )
}

/// [`overlay_planar`] for one image as a tensor, `3×H×W` or `1×3×H×W`, in [0, 1].
pub fn overlay_tensor(image: &Tensor, mask: &[f32], image_weight: f32) -> Result<RgbImage> {
    let img = match image.rank() {
        4 if image.dim(0)? == 1 => image.squeeze(0)?,
        _ => image.clone(),
    };
    let (c, h, w) = img.dims3().map_err(|_| {
        ExplainError::invalid(format!(
            "overlay image must be 3×H×W or 1×3×H×W, got {:?}",
            image.dims()
        ))
    })?;
    if c != 3 {
        return Err(ExplainError::invalid(format!(
            "overlay image must have 3 channels, got {c}"
        )));
    }
    let data: Vec<f32> = img
        .detach()
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1()?;
    overlay_planar(&data, mask, h, w, image_weight)
}

fn blend(
    pixel: impl Fn(usize, usize) -> f32,
    mask: &[f32],
    height: usize,
    width: usize,
    image_weight: f32,
) -> Result<RgbImage> {
    if !(0.0..=1.0).contains(&image_weight) {
        return Err(ExplainError::invalid(format!(
            "image_weight {image_weight} outside [0, 1]"
        )));
    }
    let hw = height * width;
    let (w32, h32) = dims_u32(height, width)?;
    let hm_w = 1.0f32 - image_weight;
    let mut cam = vec![0f32; 3 * hw];
    for (i, &m) in mask.iter().enumerate() {
        let rgb = jet(mask_byte(m));
        for c in 0..3 {
            let p = pixel(i, c);
            if !(0.0..=1.0).contains(&p) {
                return Err(ExplainError::invalid(format!(
                    "image value {p} outside [0, 1]"
                )));
            }
            let heat = rgb[c] as f32 / 255.0;
            cam[3 * i + c] = hm_w * heat + image_weight * p;
        }
    }
    let max = cam.iter().copied().fold(0f32, f32::max);
    let raw: Vec<u8> = if max > 0.0 {
        cam.iter().map(|&v| (255.0f32 * (v / max)) as u8).collect()
    } else {
        // all black (image_weight = 1 on a black image): numpy would divide by zero
        vec![0u8; 3 * hw]
    };
    RgbImage::from_raw(w32, h32, raw)
        .ok_or_else(|| ExplainError::invalid("overlay buffer has the wrong size"))
}

/// Writes `image` as a PNG atomically ([`dfr_fs::AtomicFile`]: temporary file in the same
/// directory, synced, renamed over `path`). Creates missing parent directories.
pub fn save_png(image: &RgbImage, path: &Path) -> Result<()> {
    let mut out = AtomicFile::create(path).map_err(|e| ExplainError::io(path, e))?;
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|source| ExplainError::Image {
            path: path.to_path_buf(),
            source,
        })?;
    out.commit().map_err(|e| ExplainError::io(path, e))?;
    tracing::debug!(path = %path.display(), "wrote overlay PNG");
    Ok(())
}

/// Blends `mask` over `image` (one image, `3×H×W` or `1×3×H×W` in [0, 1]) with
/// [`overlay_tensor`], writes it to `path` as a PNG atomically and returns it (e.g. for
/// a gallery).
pub fn save_overlay(
    path: &Path,
    image: &Tensor,
    mask: &[f32],
    image_weight: f32,
) -> Result<RgbImage> {
    let img = overlay_tensor(image, mask, image_weight)?;
    save_png(&img, path)?;
    Ok(img)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jet_endpoints_and_mask_bytes() {
        assert_eq!(jet(0), [0, 0, 128]);
        assert_eq!(jet(255), [128, 0, 0]);
        // mid-range is green-ish, the LUT is monotone in hue
        assert_eq!(jet(128)[1], 255);
        assert_eq!(mask_byte(0.0), 0);
        assert_eq!(mask_byte(1.0), 255);
        assert_eq!(mask_byte(0.999), 254);
        assert_eq!(mask_byte(-3.0), 0);
        assert_eq!(mask_byte(7.0), 255);
    }

    #[test]
    fn blend_matches_hand_computation() {
        // one pixel, grey image 0.5, mask 1 → heat (128/255, 0, 0)
        let img = [0.5f32, 0.5, 0.5];
        let o = overlay_planar(&img, &[1.0], 1, 1, 0.5).unwrap();
        let heat_r = 128.0f32 / 255.0;
        let cam = [0.5 * heat_r + 0.25, 0.25, 0.25];
        let max = cam[0];
        let want: Vec<u8> = cam.iter().map(|v| (255.0 * (v / max)) as u8).collect();
        assert_eq!(o.as_raw(), &want);
        assert_eq!(o.as_raw()[0], 255);
        // image_weight 0 → pure normalised heat map
        let o = overlay_planar(&img, &[0.0], 1, 1, 0.0).unwrap();
        assert_eq!(o.as_raw(), &vec![0, 0, 255]);
    }

    #[test]
    fn bad_overlay_input_is_an_error() {
        let img = vec![0.5f32; 12];
        assert!(overlay_planar(&img, &[0.0; 4], 2, 2, 0.5).is_ok());
        assert!(overlay_planar(&img, &[0.0; 3], 2, 2, 0.5).is_err());
        assert!(overlay_planar(&img, &[0.0; 4], 2, 2, 1.5).is_err());
        assert!(overlay_planar(&img, &[f32::NAN, 0.0, 0.0, 0.0], 2, 2, 0.5).is_err());
        let mut bright = img.clone();
        bright[3] = 1.5;
        assert!(overlay_planar(&bright, &[0.0; 4], 2, 2, 0.5).is_err());
        assert!(heatmap(&[0.0; 4], 0, 4).is_err());
        // black image, image weight 1: no division by zero
        let o = overlay_planar(&[0.0; 12], &[0.3; 4], 2, 2, 1.0).unwrap();
        assert!(o.as_raw().iter().all(|&v| v == 0));
    }

    #[test]
    fn overlay_png_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let (h, w) = (5usize, 7usize);
        let img = Tensor::rand(0f32, 1f32, (1, 3, h, w), &candle_core::Device::Cpu).unwrap();
        let mask: Vec<f32> = (0..h * w).map(|i| i as f32 / (h * w) as f32).collect();
        let path = dir.path().join("sub/overlay.png");
        let out = save_overlay(&path, &img, &mask, DEFAULT_IMAGE_WEIGHT).unwrap();
        let back = image::open(&path).unwrap().to_rgb8();
        assert_eq!(back.dimensions(), (w as u32, h as u32));
        assert_eq!(back, out);
        // no temporary file left behind
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);
        let hm = heatmap(&mask, h, w).unwrap();
        assert_eq!(hm.get_pixel(0, 0).0, [0, 0, 128]);
    }
}
