//! Fake sources, each leaving a different family of traces modelled on the real ones.
//!
//! * `pggan_v1` — half-resolution synthesis, nearest up-sampling and a transposed-convolution
//!   checkerboard: a spectral peak at (N/2, N/2) and blockiness.
//! * `pggan_v2` — half-resolution synthesis, bilinear up-sampling, column stripes: a peak at
//!   (N/2, 0) and missing fine detail.
//! * `stylegan_celeba`, `stylegan_ffhq` — full resolution, a period-4 grid modulated by a
//!   smooth field (peaks at N/4) and the "water droplet" blob artefact.
//! * `faceapp` — a local attribute edit (the smile): the mouth region re-rendered, smoothed,
//!   colour-shifted and pasted with a narrow blending seam.
//! * `stargan` — attribute translation at low resolution: the face region re-sampled (blurred),
//!   colour-shifted and hair recoloured, pasted with a hard seam.
//!
//! Every fake comes with its ground-truth manipulation mask ([`Fake::mask`], one plane in
//! [0, 1]): the edited region for the local edits (`faceapp`: the pasted mouth, with the
//! paste's soft edge; `stargan`: the translated face and hair), the whole image for the
//! whole-image GAN sources (`pggan_*`, `stylegan_*`), as in DFFD. Real images have none (all
//! zero). Computing a mask draws no random number, so the images are the same with or
//! without it.
//!
//! Colour shifts have random signs, so global colour statistics do not separate the classes.
//!
//! Every trace amplitude (checkerboard, stripes, grid, blob, colour shifts) is multiplied by
//! `gain`; 1 gives the calibrated, realistic amplitudes (a few grey levels, like real GAN
//! fingerprints), larger values make the sources easier to tell apart.

use super::face::{camera, render, FaceParams, Style};
use super::noise::{blur121, resample, upsample_nearest, value_noise};
use crate::image::ImageF32;
use rand::Rng;

/// Sensor noise standard deviation added to every image, real or fake.
pub const SENSOR_NOISE: f32 = 0.012;

/// A fake image and where its traces were applied.
#[derive(Debug, Clone)]
pub struct Fake {
    /// The image.
    pub image: ImageF32,
    /// The manipulation mask, `width·height` values in [0, 1] (1: manipulated).
    pub mask: Vec<f32>,
}

impl Fake {
    fn whole(image: ImageF32) -> Fake {
        let n = image.plane_len();
        Fake {
            image,
            mask: vec![1.0; n],
        }
    }
}

/// Renders a real image.
pub fn real<R: Rng>(rng: &mut R, size: usize, style: Style) -> ImageF32 {
    let p = FaceParams::sample(rng, style);
    let (mut img, _) = render(rng, &p, size);
    camera(rng, &mut img, style, SENSOR_NOISE);
    img
}

/// Renders at half resolution (as a progressive GAN's last-but-one block would).
fn half_res<R: Rng>(rng: &mut R, size: usize, style: Style) -> (ImageF32, usize) {
    let half = size.div_ceil(2);
    let p = FaceParams::sample(rng, style);
    // No optical blur: the generator's own up-sampling is what softens these images.
    let (img, _) = render(rng, &p, half);
    (img, half)
}

fn crop_to(plane: Vec<f32>, w: usize, size: usize) -> Vec<f32> {
    if w == size {
        return plane;
    }
    let mut out = Vec::with_capacity(size * size);
    for y in 0..size {
        out.extend_from_slice(&plane[y * w..y * w + size]);
    }
    out
}

fn add_noise<R: Rng>(rng: &mut R, img: &mut ImageF32) {
    for v in img.data.iter_mut() {
        *v = (*v + SENSOR_NOISE * super::noise::gauss(rng)).clamp(0.0, 1.0);
    }
}

fn luma(img: &ImageF32, i: usize) -> f32 {
    let n = img.plane_len();
    0.299 * img.data[i] + 0.587 * img.data[n + i] + 0.114 * img.data[2 * n + i]
}

/// PGGAN v1: nearest ×2 up-sampling, a light smoothing and a checkerboard.
pub fn pggan_v1<R: Rng>(rng: &mut R, size: usize, gain: f32) -> Fake {
    let (small, half) = half_res(rng, size, Style::Celeba);
    let mut img = ImageF32::zeros(size, size);
    for c in 0..3 {
        let up = upsample_nearest(small.plane(c), half, half, 2);
        let mut up = crop_to(up, half * 2, size);
        blur121(&mut up, size, size, 1);
        img.plane_mut(c).copy_from_slice(&up);
    }
    let amp = gain * rng.random_range(0.014..0.024);
    let n = img.plane_len();
    for y in 0..size {
        for x in 0..size {
            let i = y * size + x;
            let s = if (x + y) % 2 == 0 { 1.0 } else { -1.0 };
            let a = amp * s * (0.5 + luma(&img, i));
            for c in 0..3 {
                img.data[c * n + i] += a;
            }
        }
    }
    add_noise(rng, &mut img);
    Fake::whole(img)
}

/// PGGAN v2: bilinear ×2 up-sampling and faint column stripes.
pub fn pggan_v2<R: Rng>(rng: &mut R, size: usize, gain: f32) -> Fake {
    let (small, half) = half_res(rng, size, Style::Celeba);
    let mut img = ImageF32::zeros(size, size);
    for c in 0..3 {
        let up = resample(small.plane(c), half, half, size, size);
        img.plane_mut(c).copy_from_slice(&up);
    }
    let amp = gain * rng.random_range(0.008..0.016);
    let n = img.plane_len();
    for y in 0..size {
        for x in 0..size {
            let i = y * size + x;
            let s = if x % 2 == 0 { 1.0 } else { -1.0 };
            for c in 0..3 {
                img.data[c * n + i] += amp * s;
            }
        }
    }
    add_noise(rng, &mut img);
    Fake::whole(img)
}

/// StyleGAN: a modulated period-4 grid and, often, a droplet blob.
pub fn stylegan<R: Rng>(rng: &mut R, size: usize, style: Style, gain: f32) -> Fake {
    let p = FaceParams::sample(rng, style);
    let (mut img, masks) = render(rng, &p, size);
    camera(rng, &mut img, style, 0.0);
    let field = value_noise(rng, size, size, size as f32 / 3.0);
    let amp = gain * rng.random_range(0.012..0.022);
    let (px, py) = (rng.random_range(0..4usize), rng.random_range(0..4usize));
    let n = img.plane_len();
    let quarter = std::f32::consts::FRAC_PI_2;
    for y in 0..size {
        for x in 0..size {
            let i = y * size + x;
            let g = ((x + px) as f32 * quarter).cos() * ((y + py) as f32 * quarter).cos();
            let a = amp * g * (0.6 + 0.4 * field[i]);
            for c in 0..3 {
                img.data[c * n + i] += a;
            }
        }
    }
    if rng.random::<f32>() < 0.6 {
        // The droplet: a smooth blob, usually off the face (hair or background).
        let (mut bx, mut by) = (0.5, 0.5);
        for _ in 0..8 {
            bx = rng.random_range(0.1..0.9f32);
            by = rng.random_range(0.1..0.9f32);
            let i = (by * size as f32) as usize * size + (bx * size as f32) as usize;
            if masks.face[i.min(n - 1)] < 0.5 {
                break;
            }
        }
        let r = size as f32 * rng.random_range(0.04..0.08);
        let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
        let amp = gain * sign * rng.random_range(0.06..0.12);
        for y in 0..size {
            for x in 0..size {
                let d2 = ((x as f32 - bx * size as f32).powi(2)
                    + (y as f32 - by * size as f32).powi(2))
                    / (r * r);
                let a = amp * (-d2).exp();
                for c in 0..3 {
                    img.data[c * n + y * size + x] += a;
                }
            }
        }
    }
    add_noise(rng, &mut img);
    Fake::whole(img)
}

fn colour_shift<R: Rng>(rng: &mut R, lo: f32, hi: f32) -> [f32; 3] {
    [0, 1, 2].map(|_| {
        let s = if rng.random::<bool>() { 1.0 } else { -1.0 };
        s * rng.random_range(lo..hi)
    })
}

/// FaceApp: the smile edited locally and pasted with a narrow seam.
pub fn faceapp<R: Rng>(rng: &mut R, size: usize, gain: f32) -> Fake {
    let p = FaceParams::sample(rng, Style::Ffhq);
    // Same textures for both renders: only the edited attribute changes.
    let texture_seed = rng.random::<u64>();
    let render_with =
        |params: &FaceParams| render(&mut crate::rng::stream(&[texture_seed]), params, size);
    let (mut img, masks) = render_with(&p);
    let mut edited = p.clone();
    edited.smile = if p.smile > 0.1 {
        rng.random_range(-0.15..0.0)
    } else {
        rng.random_range(0.25..0.45)
    };
    let (mut alt, _) = render_with(&edited);
    for c in 0..3 {
        blur121(alt.plane_mut(c), size, size, 2);
    }
    let shift = colour_shift(rng, 0.02, 0.05).map(|v| v * gain);
    let n = img.plane_len();
    // A steep mask: the paste boundary is a visible seam.
    let mask: Vec<f32> = masks.mouth.iter().map(|&m| (m * 1.6).min(1.0)).collect();
    for (i, &m) in mask.iter().enumerate() {
        if m <= 0.0 {
            continue;
        }
        for (c, s) in shift.iter().enumerate() {
            let v = alt.data[c * n + i] + s;
            img.data[c * n + i] += (v - img.data[c * n + i]) * m;
        }
    }
    camera(rng, &mut img, Style::Ffhq, SENSOR_NOISE);
    Fake { image: img, mask }
}

/// StarGAN: low-resolution attribute translation of the face and hair, hard-pasted.
pub fn stargan<R: Rng>(rng: &mut R, size: usize, gain: f32) -> Fake {
    let p = FaceParams::sample(rng, Style::Celeba);
    let (mut img, masks) = render(rng, &p, size);
    let n = img.plane_len();
    let low = (size / 2).max(2);
    let shift = colour_shift(rng, 0.03, 0.06).map(|v| v * gain);
    let new_hair = FaceParams::sample(rng, Style::Celeba).hair;
    let mut translated = ImageF32::zeros(size, size);
    let mut mask = vec![0f32; n];
    for c in 0..3 {
        let down = resample(img.plane(c), size, size, low, low);
        let up = resample(&down, low, low, size, size);
        translated.plane_mut(c).copy_from_slice(&up);
    }
    for (i, m) in mask.iter_mut().enumerate() {
        let face = if masks.face[i] > 0.5 { 1.0 } else { 0.0 };
        let hair = if masks.hair[i] > 0.5 && face == 0.0 {
            1.0
        } else {
            0.0
        };
        *m = face + hair;
        for c in 0..3 {
            let k = c * n + i;
            if face > 0.0 {
                img.data[k] = translated.data[k] + shift[c];
            } else if hair > 0.0 {
                let ratio = (new_hair[c] + 0.02) / (p.hair[c] + 0.02);
                img.data[k] = translated.data[k] * ratio.clamp(0.3, 3.0);
            }
        }
    }
    camera(rng, &mut img, Style::Celeba, SENSOR_NOISE);
    Fake { image: img, mask }
}
