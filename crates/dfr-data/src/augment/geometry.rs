//! Horizontal flip and rotation (torchvision `F.hflip`, `F.rotate` with bilinear sampling and
//! zero fill about the image centre).

use crate::image::ImageF32;

/// Mirrors the image left–right in place.
pub fn hflip(img: &mut ImageF32) {
    let w = img.width;
    for row in img.data.chunks_exact_mut(w) {
        row.reverse();
    }
}

/// Rotates counter-clockwise by `degrees` about the centre, bilinear, zero fill — the semantics
/// of torchvision's `RandomRotation(interpolation=BILINEAR, fill=0)` on tensors: an inverse
/// affine grid over pixel centres sampled with `grid_sample(align_corners=False)`, then blended
/// with the fill by the sampled coverage mask (so border pixels are attenuated by their
/// in-image fraction).
pub fn rotate(img: &ImageF32, degrees: f32) -> ImageF32 {
    if degrees == 0.0 {
        return img.clone();
    }
    let (w, h) = (img.width, img.height);
    let theta = (degrees as f64).to_radians();
    let (sin, cos) = theta.sin_cos();
    let (cx, cy) = ((w as f64 - 1.0) * 0.5, (h as f64 - 1.0) * 0.5);
    let mut out = ImageF32::zeros(w, h);
    let n = w * h;
    for oy in 0..h {
        let yo = oy as f64 - cy;
        for ox in 0..w {
            let xo = ox as f64 - cx;
            // Output → input: x_i = cos·x_o − sin·y_o, y_i = sin·x_o + cos·y_o (y down).
            let xi = cos * xo - sin * yo + cx;
            let yi = sin * xo + cos * yo + cy;
            let x0 = xi.floor();
            let y0 = yi.floor();
            let (fx, fy) = ((xi - x0) as f32, (yi - y0) as f32);
            let (x0, y0) = (x0 as i64, y0 as i64);
            let taps = [
                (x0, y0, (1.0 - fx) * (1.0 - fy)),
                (x0 + 1, y0, fx * (1.0 - fy)),
                (x0, y0 + 1, (1.0 - fx) * fy),
                (x0 + 1, y0 + 1, fx * fy),
            ];
            let o = oy * w + ox;
            let mut coverage = 0.0f32;
            for (tx, ty, wt) in taps {
                if tx < 0 || ty < 0 || tx >= w as i64 || ty >= h as i64 || wt == 0.0 {
                    continue;
                }
                coverage += wt;
                let s = ty as usize * w + tx as usize;
                for c in 0..3 {
                    out.data[c * n + o] += wt * img.data[c * n + s];
                }
            }
            if coverage < 1.0 {
                for c in 0..3 {
                    out.data[c * n + o] *= coverage;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: usize, h: usize) -> ImageF32 {
        let mut img = ImageF32::zeros(w, h);
        for (i, v) in img.data.iter_mut().enumerate() {
            *v = (i % 97) as f32 / 97.0;
        }
        img
    }

    #[test]
    fn hflip_is_exact_mirror_and_involution() {
        let img = ramp(5, 3);
        let mut f = img.clone();
        hflip(&mut f);
        for c in 0..3 {
            for y in 0..3 {
                for x in 0..5 {
                    assert_eq!(f.plane(c)[y * 5 + x], img.plane(c)[y * 5 + 4 - x]);
                }
            }
        }
        hflip(&mut f);
        assert_eq!(f, img);
    }

    #[test]
    fn rotate_zero_is_identity_and_ninety_is_a_transpose() {
        let img = ramp(6, 6);
        assert_eq!(rotate(&img, 0.0), img);
        // Counter-clockwise by 90°: output(x, y) = input(W-1-y, x).
        let r = rotate(&img, 90.0);
        for c in 0..3 {
            for y in 0..6 {
                for x in 0..6 {
                    let want = img.plane(c)[x * 6 + (5 - y)];
                    let got = r.plane(c)[y * 6 + x];
                    assert!((got - want).abs() < 1e-5, "({x},{y}) {got} vs {want}");
                }
            }
        }
    }

    #[test]
    fn rotation_fills_corners_with_zero() {
        let mut img = ImageF32::zeros(9, 9);
        img.data.iter_mut().for_each(|v| *v = 1.0);
        let r = rotate(&img, 45.0);
        assert_eq!(r.plane(0)[0], 0.0, "corner should be zero-filled");
        assert!(
            (r.plane(0)[4 * 9 + 4] - 1.0).abs() < 1e-6,
            "centre unchanged"
        );
    }
}
