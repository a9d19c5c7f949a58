//! ColorJitter with torchvision's tensor semantics.
//!
//! brightness: `clamp(b·x)`; contrast: blend with the mean of the greyscale image; saturation:
//! blend with the per-pixel greyscale; hue: shift H in HSV space modulo 1. The four are applied
//! in a random order, each factor drawn uniformly from its range, exactly as
//! `torchvision.transforms.ColorJitter.get_params`.

use crate::image::ImageF32;

/// ITU-R 601-2 luma weights used by torchvision's `rgb_to_grayscale`.
const LUMA: [f32; 3] = [0.2989, 0.587, 0.114];

/// One colour operation with its factor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ColorOp {
    /// Multiply by the factor (≥ 0), clamp to [0, 1].
    Brightness(f32),
    /// Blend with the mean grey level.
    Contrast(f32),
    /// Blend with the per-pixel grey level.
    Saturation(f32),
    /// Rotate the hue by the factor (in turns, within [-0.5, 0.5]).
    Hue(f32),
}

/// Applies one colour operation in place.
pub fn apply(img: &mut ImageF32, op: ColorOp) {
    match op {
        ColorOp::Brightness(f) => {
            for v in img.data.iter_mut() {
                *v = (*v * f).clamp(0.0, 1.0);
            }
        }
        ColorOp::Contrast(f) => {
            let n = img.plane_len();
            let mut sum = 0.0f64;
            {
                let (r, g, b) = (img.plane(0), img.plane(1), img.plane(2));
                for i in 0..n {
                    sum += (LUMA[0] * r[i] + LUMA[1] * g[i] + LUMA[2] * b[i]) as f64;
                }
            }
            let mean = (sum / n as f64) as f32;
            let off = (1.0 - f) * mean;
            for v in img.data.iter_mut() {
                *v = (f * *v + off).clamp(0.0, 1.0);
            }
        }
        ColorOp::Saturation(f) => {
            let n = img.plane_len();
            let (r, rest) = img.data.split_at_mut(n);
            let (g, b) = rest.split_at_mut(n);
            for i in 0..n {
                let grey = LUMA[0] * r[i] + LUMA[1] * g[i] + LUMA[2] * b[i];
                let off = (1.0 - f) * grey;
                r[i] = (f * r[i] + off).clamp(0.0, 1.0);
                g[i] = (f * g[i] + off).clamp(0.0, 1.0);
                b[i] = (f * b[i] + off).clamp(0.0, 1.0);
            }
        }
        ColorOp::Hue(f) => adjust_hue(img, f),
    }
}

/// torchvision `adjust_hue` on float tensors: RGB → HSV, `h = (h + f) mod 1`, HSV → RGB.
fn adjust_hue(img: &mut ImageF32, f: f32) {
    let n = img.plane_len();
    let (r, rest) = img.data.split_at_mut(n);
    let (g, b) = rest.split_at_mut(n);
    for i in 0..n {
        let (h, s, v) = rgb_to_hsv(r[i], g[i], b[i]);
        let h = (h + f).rem_euclid(1.0);
        let (nr, ng, nb) = hsv_to_rgb(h, s, v);
        r[i] = nr;
        g[i] = ng;
        b[i] = nb;
    }
}

/// torchvision's `_rgb2hsv` for one pixel.
pub fn rgb_to_hsv(r: f32, g: f32, b: f32) -> (f32, f32, f32) {
    let maxc = r.max(g).max(b);
    let minc = r.min(g).min(b);
    let eqc = maxc == minc;
    let cr = maxc - minc;
    let ones = 1.0f32;
    let s = cr / if eqc { ones } else { maxc };
    let cr_divisor = if eqc { ones } else { cr };
    let rc = (maxc - r) / cr_divisor;
    let gc = (maxc - g) / cr_divisor;
    let bc = (maxc - b) / cr_divisor;
    let hr = if maxc == r { bc - gc } else { 0.0 };
    let hg = if maxc == g && maxc != r {
        2.0 + rc - bc
    } else {
        0.0
    };
    let hb = if maxc != g && maxc != r {
        4.0 + gc - rc
    } else {
        0.0
    };
    let h = hr + hg + hb;
    let h = (h / 6.0 + 1.0).rem_euclid(1.0);
    (h, s, maxc)
}

/// torchvision's `_hsv2rgb` for one pixel.
pub fn hsv_to_rgb(h: f32, s: f32, v: f32) -> (f32, f32, f32) {
    let i = (h * 6.0).floor();
    let f = h * 6.0 - i;
    let i = (i as i32).rem_euclid(6);
    let p = (v * (1.0 - s)).clamp(0.0, 1.0);
    let q = (v * (1.0 - s * f)).clamp(0.0, 1.0);
    let t = (v * (1.0 - s * (1.0 - f))).clamp(0.0, 1.0);
    match i {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_image() -> ImageF32 {
        let (w, h) = (7, 5);
        let mut img = ImageF32::zeros(w, h);
        for (i, v) in img.data.iter_mut().enumerate() {
            *v = ((i * 37 % 101) as f32) / 100.0;
        }
        img
    }

    #[test]
    fn factors_of_one_and_zero_hue_are_identity() {
        let img = test_image();
        for op in [
            ColorOp::Brightness(1.0),
            ColorOp::Contrast(1.0),
            ColorOp::Saturation(1.0),
            ColorOp::Hue(0.0),
        ] {
            let mut out = img.clone();
            apply(&mut out, op);
            for (a, b) in out.data.iter().zip(&img.data) {
                assert!((a - b).abs() < 1e-6, "{op:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn brightness_scales_and_clamps() {
        let mut img = test_image();
        let orig = img.clone();
        apply(&mut img, ColorOp::Brightness(1.5));
        for (a, b) in img.data.iter().zip(&orig.data) {
            assert!((a - (b * 1.5).min(1.0)).abs() < 1e-6);
        }
    }

    #[test]
    fn saturation_zero_gives_grey_and_contrast_zero_gives_mean() {
        let mut img = test_image();
        apply(&mut img, ColorOp::Saturation(0.0));
        let n = img.plane_len();
        for i in 0..n {
            assert!((img.data[i] - img.data[n + i]).abs() < 1e-6);
            assert!((img.data[i] - img.data[2 * n + i]).abs() < 1e-6);
        }
        let mut img = test_image();
        apply(&mut img, ColorOp::Contrast(0.0));
        let first = img.data[0];
        assert!(img.data.iter().all(|v| (v - first).abs() < 1e-6));
    }

    #[test]
    fn hsv_roundtrip_and_known_hue_shift() {
        for &(r, g, b) in &[
            (0.2, 0.4, 0.6),
            (0.9, 0.1, 0.3),
            (0.5, 0.5, 0.5),
            (0.0, 1.0, 0.0),
        ] {
            let (h, s, v) = rgb_to_hsv(r, g, b);
            let (r2, g2, b2) = hsv_to_rgb(h, s, v);
            assert!((r - r2).abs() < 1e-5 && (g - g2).abs() < 1e-5 && (b - b2).abs() < 1e-5);
        }
        // Pure red shifted by a third of a turn becomes pure green.
        let mut img = ImageF32::zeros(1, 1);
        img.data.copy_from_slice(&[1.0, 0.0, 0.0]);
        apply(&mut img, ColorOp::Hue(1.0 / 3.0));
        assert!(
            (img.data[0]).abs() < 1e-5 && (img.data[1] - 1.0).abs() < 1e-5,
            "{:?}",
            img.data
        );
    }
}
