//! Training augmentation and evaluation transforms with torchvision semantics.
//!
//! Training (in this order, as the study's `transforms.Compose`):
//! `RandomResizedCrop(size, scale, ratio)` → `RandomHorizontalFlip(p)` →
//! `ColorJitter(brightness, contrast, saturation, hue)` → `RandomRotation(±degrees, fill 0)`
//! with torchvision's default nearest-neighbour sampling (bilinear on request). Evaluation: a bilinear resize to `size × size`. Both produce planar `f32` images
//! in `[0, 1]`; ImageNet normalisation is the model's job.

pub mod color;
pub mod crop;
pub mod geometry;

use crate::decode::Rgb8;
use crate::error::{DataError, Result};
use crate::image::ImageF32;
use color::ColorOp;
use crop::{uniform, CropBox};
pub use geometry::Interpolation;
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Training augmentation parameters (defaults: the study's recipe at 224 px).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainAugment {
    /// Output side length.
    pub size: u32,
    /// RandomResizedCrop area fraction range.
    pub scale: (f64, f64),
    /// RandomResizedCrop aspect-ratio range.
    pub ratio: (f64, f64),
    /// Probability of a horizontal flip.
    pub hflip: f64,
    /// ColorJitter brightness: factor uniform in `[max(0, 1−b), 1+b]`.
    pub brightness: f64,
    /// ColorJitter contrast: factor uniform in `[max(0, 1−c), 1+c]`.
    pub contrast: f64,
    /// ColorJitter saturation: factor uniform in `[max(0, 1−s), 1+s]`.
    pub saturation: f64,
    /// ColorJitter hue: shift uniform in `[−h, h]`, `h ≤ 0.5`.
    pub hue: f64,
    /// RandomRotation: angle uniform in `[−degrees, degrees]`.
    pub degrees: f64,
    /// RandomRotation's sampling: `"nearest"` (torchvision's default, as the study's
    /// `RandomRotation(10)`) or `"bilinear"`, which blurs pixel-level traces.
    pub rotation_interpolation: Interpolation,
}

impl Default for TrainAugment {
    fn default() -> Self {
        TrainAugment {
            size: 224,
            scale: (0.9, 1.0),
            ratio: (3.0 / 4.0, 4.0 / 3.0),
            hflip: 0.5,
            brightness: 0.1,
            contrast: 0.1,
            saturation: 0.1,
            hue: 0.05,
            degrees: 10.0,
            rotation_interpolation: Interpolation::Nearest,
        }
    }
}

/// Every random parameter of one training augmentation, drawn before any pixel is touched.
#[derive(Debug, Clone, PartialEq)]
pub struct AugmentParams {
    /// The crop box in source pixels.
    pub crop: CropBox,
    /// Whether to mirror.
    pub flip: bool,
    /// Colour operations in application order (identity operations omitted).
    pub color: Vec<ColorOp>,
    /// Rotation angle in degrees (counter-clockwise).
    pub angle: f32,
}

impl TrainAugment {
    /// A configuration that changes nothing but the size (crop = whole image, no flip, no
    /// jitter, no rotation): a resize.
    pub fn identity(size: u32) -> Self {
        TrainAugment {
            size,
            scale: (1.0, 1.0),
            ratio: (1.0, 1.0),
            hflip: 0.0,
            brightness: 0.0,
            contrast: 0.0,
            saturation: 0.0,
            hue: 0.0,
            degrees: 0.0,
            rotation_interpolation: Interpolation::Nearest,
        }
    }

    /// Checks ranges; names the offending field.
    pub fn validate(&self) -> Result<()> {
        let bad = |f: &str, m: &str| Err(DataError::config(format!("augment.{f}"), m));
        if self.size == 0 {
            return bad("size", "must be at least 1");
        }
        if !(self.scale.0 > 0.0 && self.scale.0 <= self.scale.1 && self.scale.1 <= 1.0) {
            return bad("scale", "expected 0 < min ≤ max ≤ 1");
        }
        if !(self.ratio.0 > 0.0 && self.ratio.0 <= self.ratio.1) {
            return bad("ratio", "expected 0 < min ≤ max");
        }
        if !(0.0..=1.0).contains(&self.hflip) {
            return bad("hflip", "probability must be in [0, 1]");
        }
        for (f, v) in [
            ("brightness", self.brightness),
            ("contrast", self.contrast),
            ("saturation", self.saturation),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return bad(f, "must be a finite number ≥ 0");
            }
        }
        if !(0.0..=0.5).contains(&self.hue) {
            return bad("hue", "must be in [0, 0.5]");
        }
        if !(self.degrees >= 0.0 && self.degrees.is_finite()) {
            return bad("degrees", "must be a finite number ≥ 0");
        }
        Ok(())
    }

    /// Draws all random parameters for an image of the given size, in torchvision's order of
    /// draws (crop, flip, jitter order and factors, angle).
    pub fn sample_params<R: Rng>(&self, rng: &mut R, width: u32, height: u32) -> AugmentParams {
        let crop = crop::random_resized_crop_params(rng, width, height, self.scale, self.ratio);
        let flip = rng.random::<f64>() < self.hflip;
        let mut order = [0usize, 1, 2, 3];
        order.shuffle(rng);
        let factor = |rng: &mut R, v: f64| uniform(rng, (1.0 - v).max(0.0), 1.0 + v) as f32;
        // Factors are drawn in the fixed order b, c, s, h (as get_params does), then applied
        // in the permuted order.
        let b = factor(rng, self.brightness);
        let c = factor(rng, self.contrast);
        let s = factor(rng, self.saturation);
        let h = uniform(rng, -self.hue, self.hue) as f32;
        let mut color = Vec::with_capacity(4);
        for i in order {
            match i {
                0 if self.brightness > 0.0 => color.push(ColorOp::Brightness(b)),
                1 if self.contrast > 0.0 => color.push(ColorOp::Contrast(c)),
                2 if self.saturation > 0.0 => color.push(ColorOp::Saturation(s)),
                3 if self.hue > 0.0 => color.push(ColorOp::Hue(h)),
                _ => {}
            }
        }
        let angle = uniform(rng, -self.degrees, self.degrees) as f32;
        AugmentParams {
            crop,
            flip,
            color,
            angle,
        }
    }

    /// Applies drawn parameters to a decoded image.
    pub fn apply_params(&self, src: &Rgb8, p: &AugmentParams) -> Result<ImageF32> {
        let mut img = crop::crop_resize(src, p.crop, self.size, self.size)?;
        if p.flip {
            geometry::hflip(&mut img);
        }
        for &op in &p.color {
            color::apply(&mut img, op);
        }
        if p.angle != 0.0 {
            img = geometry::rotate_with(&img, p.angle, self.rotation_interpolation);
        }
        Ok(img)
    }

    /// Draws parameters and applies them.
    pub fn apply<R: Rng>(&self, src: &Rgb8, rng: &mut R) -> Result<ImageF32> {
        let p = self.sample_params(rng, src.width, src.height);
        self.apply_params(src, &p)
    }
}

/// Evaluation transform: bilinear (antialiased) resize to `size × size`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalTransform {
    /// Output side length.
    pub size: u32,
}

impl Default for EvalTransform {
    fn default() -> Self {
        EvalTransform { size: 224 }
    }
}

impl EvalTransform {
    /// Resizes a decoded image.
    pub fn apply(&self, src: &Rgb8) -> Result<ImageF32> {
        if self.size == 0 {
            return Err(DataError::config("eval.size", "must be at least 1"));
        }
        crop::crop_resize(
            src,
            CropBox::full(src.width, src.height),
            self.size,
            self.size,
        )
    }
}

/// The transform a loader applies to each decoded image.
#[derive(Debug, Clone, PartialEq)]
pub enum Transform {
    /// Random training augmentation.
    Train(TrainAugment),
    /// Deterministic evaluation resize.
    Eval(EvalTransform),
}

impl Transform {
    /// Output side length.
    pub fn size(&self) -> u32 {
        match self {
            Transform::Train(a) => a.size,
            Transform::Eval(e) => e.size,
        }
    }

    /// Applies the transform; `rng` is only used by the training augmentation.
    pub fn apply<R: Rng>(&self, src: &Rgb8, rng: &mut R) -> Result<ImageF32> {
        match self {
            Transform::Train(a) => a.apply(src, rng),
            Transform::Eval(e) => e.apply(src),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;

    fn rgb(w: u32, h: u32) -> Rgb8 {
        let data = (0..w * h * 3).map(|i| ((i * 31) % 251) as u8).collect();
        Rgb8 {
            width: w,
            height: h,
            data,
        }
    }

    #[test]
    fn crop_area_and_ratio_stay_within_bounds() {
        let aug = TrainAugment::default();
        let mut rng = stream(&[7]);
        for _ in 0..2000 {
            let p = aug.sample_params(&mut rng, 299, 299);
            let c = p.crop;
            let frac = (c.width * c.height) as f64 / (299.0 * 299.0);
            // Rounding of w and h to integers moves the area by at most ~1%.
            assert!((0.9 - 0.01..=1.0).contains(&frac), "area fraction {frac}");
            let ratio = c.width as f64 / c.height as f64;
            assert!(
                (0.75 - 0.01..=4.0 / 3.0 + 0.01).contains(&ratio),
                "ratio {ratio}"
            );
            assert!(c.left + c.width <= 299 && c.top + c.height <= 299);
            assert!((-10.0..=10.0).contains(&p.angle));
            assert!(p.color.len() == 4);
        }
    }

    #[test]
    fn jitter_order_is_a_permutation_and_factors_in_range() {
        let aug = TrainAugment::default();
        let mut rng = stream(&[8]);
        let mut first_ops = std::collections::HashSet::new();
        for _ in 0..200 {
            let p = aug.sample_params(&mut rng, 64, 64);
            let mut kinds: Vec<u8> = p
                .color
                .iter()
                .map(|op| match op {
                    ColorOp::Brightness(f) | ColorOp::Contrast(f) | ColorOp::Saturation(f) => {
                        assert!((0.9..=1.1).contains(f), "{op:?}");
                        match op {
                            ColorOp::Brightness(_) => 0,
                            ColorOp::Contrast(_) => 1,
                            _ => 2,
                        }
                    }
                    ColorOp::Hue(h) => {
                        assert!((-0.05..=0.05).contains(h));
                        3
                    }
                })
                .collect();
            first_ops.insert(kinds[0]);
            kinds.sort();
            assert_eq!(kinds, vec![0, 1, 2, 3]);
        }
        assert_eq!(
            first_ops.len(),
            4,
            "every operation should come first sometimes"
        );
    }

    #[test]
    fn identity_augment_is_a_plain_resize() {
        let src = rgb(32, 32);
        let aug = TrainAugment::identity(32);
        let out = aug.apply(&src, &mut stream(&[1])).unwrap();
        assert_eq!(out, ImageF32::from_rgb8(32, 32, &src.data));
        let eval = EvalTransform { size: 32 }.apply(&src).unwrap();
        assert_eq!(out, eval);
    }

    #[test]
    fn flip_parameter_mirrors_output_exactly() {
        let src = rgb(40, 30);
        let aug = TrainAugment {
            size: 24,
            ..TrainAugment::default()
        };
        let mut p = aug.sample_params(&mut stream(&[3]), 40, 30);
        p.angle = 0.0;
        p.color.clear();
        p.flip = false;
        let plain = aug.apply_params(&src, &p).unwrap();
        p.flip = true;
        let mut flipped = aug.apply_params(&src, &p).unwrap();
        geometry::hflip(&mut flipped);
        assert_eq!(plain, flipped);
    }

    #[test]
    fn flip_probability_is_respected() {
        let aug = TrainAugment::default();
        let mut rng = stream(&[4]);
        let flips = (0..4000)
            .filter(|_| aug.sample_params(&mut rng, 64, 64).flip)
            .count();
        assert!((1800..2200).contains(&flips), "{flips} flips of 4000");
    }

    #[test]
    fn output_is_in_unit_range_with_requested_size() {
        let src = rgb(299, 299);
        let aug = TrainAugment::default();
        let out = aug.apply(&src, &mut stream(&[5])).unwrap();
        assert_eq!((out.width, out.height), (224, 224));
        assert!(out.data.iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn invalid_ranges_name_the_field() {
        let aug = TrainAugment {
            hue: 0.7,
            ..TrainAugment::default()
        };
        let err = aug.validate().unwrap_err().to_string();
        assert!(err.contains("augment.hue"), "{err}");
        let aug = TrainAugment {
            scale: (0.0, 1.0),
            ..TrainAugment::default()
        };
        assert!(aug.validate().unwrap_err().to_string().contains("scale"));
    }
}
