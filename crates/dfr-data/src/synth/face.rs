//! Procedural faces with natural-image statistics: 1/f backgrounds, shaded head ellipsoids,
//! hair, eyes, brows, nose and mouth, varied skin tones, poses and lighting.

use super::noise::{blur121, pink_noise, value_noise};
use crate::image::ImageF32;
use rand::Rng;

/// Photographic style of a real source (geometry and optics, not colour: colour statistics
/// must not separate classes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// FFHQ-like: large, centred, sharp faces.
    Ffhq,
    /// CelebA-like: smaller faces with more background, softer optics.
    Celeba,
}

/// Every random choice of one face.
#[derive(Debug, Clone)]
pub struct FaceParams {
    /// Face centre (fraction of the image).
    pub cx: f32,
    /// Face centre (fraction of the image).
    pub cy: f32,
    /// Half-width of the face (fraction of the image).
    pub rx: f32,
    /// Half-height of the face (fraction of the image).
    pub ry: f32,
    /// In-plane tilt (radians).
    pub tilt: f32,
    /// Yaw in [-1, 1]: shifts features sideways.
    pub yaw: f32,
    /// Skin albedo.
    pub skin: [f32; 3],
    /// Hair colour.
    pub hair: [f32; 3],
    /// Iris colour.
    pub iris: [f32; 3],
    /// Lip colour.
    pub lips: [f32; 3],
    /// Background base colours (two, blended by a gradient).
    pub bg: [[f32; 3]; 2],
    /// Clothing colour.
    pub cloth: [f32; 3],
    /// Light direction (x, y) on the image plane.
    pub light: (f32, f32),
    /// Mouth curvature (smile > 0).
    pub smile: f32,
    /// Hair volume (how far hair extends beyond the face).
    pub hair_volume: f32,
}

const SKIN_TONES: [[f32; 3]; 6] = [
    [0.96, 0.80, 0.69],
    [0.90, 0.72, 0.60],
    [0.80, 0.60, 0.47],
    [0.66, 0.46, 0.34],
    [0.50, 0.34, 0.24],
    [0.36, 0.24, 0.17],
];
const HAIR: [[f32; 3]; 6] = [
    [0.08, 0.06, 0.05],
    [0.23, 0.15, 0.09],
    [0.45, 0.31, 0.18],
    [0.75, 0.62, 0.40],
    [0.55, 0.25, 0.12],
    [0.62, 0.60, 0.58],
];

fn lerp3(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

fn pick<R: Rng>(rng: &mut R, palette: &[[f32; 3]]) -> [f32; 3] {
    let t = rng.random_range(0.0..(palette.len() - 1) as f32);
    let i = t.floor() as usize;
    lerp3(palette[i], palette[i + 1], t.fract())
}

fn random_colour<R: Rng>(rng: &mut R, lo: f32, hi: f32) -> [f32; 3] {
    [
        rng.random_range(lo..hi),
        rng.random_range(lo..hi),
        rng.random_range(lo..hi),
    ]
}

impl FaceParams {
    /// Draws a face for a style.
    pub fn sample<R: Rng>(rng: &mut R, style: Style) -> Self {
        let (scale, jitter) = match style {
            Style::Ffhq => (rng.random_range(0.27..0.33), 0.05),
            Style::Celeba => (rng.random_range(0.21..0.27), 0.09),
        };
        FaceParams {
            cx: 0.5 + rng.random_range(-jitter..jitter),
            cy: 0.47 + rng.random_range(-jitter..jitter),
            rx: scale * rng.random_range(0.78..0.92),
            ry: scale * 1.18,
            tilt: rng.random_range(-0.25..0.25),
            yaw: rng.random_range(-0.6..0.6),
            skin: pick(rng, &SKIN_TONES),
            hair: pick(rng, &HAIR),
            iris: pick(
                rng,
                &[[0.25, 0.15, 0.08], [0.30, 0.45, 0.60], [0.35, 0.45, 0.25]],
            ),
            lips: lerp3(pick(rng, &SKIN_TONES), [0.75, 0.30, 0.32], 0.45),
            bg: [random_colour(rng, 0.1, 0.9), random_colour(rng, 0.1, 0.9)],
            cloth: random_colour(rng, 0.05, 0.85),
            light: (rng.random_range(-0.7..0.7), rng.random_range(-0.8..0.2)),
            smile: rng.random_range(-0.15..0.35),
            hair_volume: rng.random_range(1.05..1.35),
        }
    }
}

/// Soft inside-test: 1 well inside, 0 outside, linear over `soft` units at the boundary.
fn soft(d: f32, soft: f32) -> f32 {
    ((1.0 - d) / soft).clamp(0.0, 1.0)
}

fn blend(px: &mut [f32; 3], c: [f32; 3], a: f32) {
    for k in 0..3 {
        px[k] += (c[k] - px[k]) * a;
    }
}

/// Region masks that the fake-trace generators need.
#[derive(Debug, Clone)]
pub struct FaceMasks {
    /// Face (skin of the head) coverage, `[0, 1]`.
    pub face: Vec<f32>,
    /// Hair coverage.
    pub hair: Vec<f32>,
    /// Mouth region (a generous ellipse around the lips).
    pub mouth: Vec<f32>,
    /// Eye region (both eyes and brows).
    pub eyes: Vec<f32>,
}

/// Renders a face (without sensor noise) and its region masks.
pub fn render<R: Rng>(rng: &mut R, p: &FaceParams, size: usize) -> (ImageF32, FaceMasks) {
    let (w, h) = (size, size);
    let n = w * h;
    let bg_noise = pink_noise(rng, w, h, 1.0);
    let bg_grad_dir = rng.random_range(0.0..std::f32::consts::TAU);
    let skin_tex = pink_noise(rng, w, h, 0.6);
    let hair_tex = value_noise(rng, w, h, (size as f32 / 40.0).max(1.0));
    let hair_low = value_noise(rng, w, h, size as f32 / 6.0);
    let mut img = ImageF32::zeros(w, h);
    let mut masks = FaceMasks {
        face: vec![0.0; n],
        hair: vec![0.0; n],
        mouth: vec![0.0; n],
        eyes: vec![0.0; n],
    };
    let (st, ct) = p.tilt.sin_cos();
    let px_unit = 1.0 / (p.rx * size as f32); // one pixel in face units
    let (lx, ly) = p.light;
    let lz = (1.0 - lx * lx - ly * ly).max(0.1).sqrt();
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let fx = (x as f32 + 0.5) / w as f32;
            let fy = (y as f32 + 0.5) / h as f32;
            // Background: two colours along a gradient, 1/f texture.
            let g = ((fx - 0.5) * bg_grad_dir.cos() + (fy - 0.5) * bg_grad_dir.sin() + 0.5)
                .clamp(0.0, 1.0);
            let mut c = lerp3(p.bg[0], p.bg[1], g);
            for v in c.iter_mut() {
                *v += 0.07 * bg_noise[i];
            }
            // Face-local coordinates (unit circle = face outline).
            let dx = fx - p.cx;
            let dy = fy - p.cy;
            let u = (ct * dx + st * dy) / p.rx;
            let v = (-st * dx + ct * dy) / p.ry;
            // Shoulders and clothing.
            if v > 1.25 {
                let sh = soft(((u / 2.6).powi(2)).sqrt(), 0.05) * ((v - 1.25) / 0.1).min(1.0);
                let shade = 0.8 + 0.2 * (1.0 - (u / 2.6).abs());
                blend(&mut c, p.cloth.map(|k| k * shade), sh);
            }
            // Neck.
            if v > 0.6 && v < 1.6 {
                let a = soft(u.abs() / 0.45, px_unit * 2.0);
                let shade = 0.72 - 0.12 * (u / 0.45).abs();
                blend(&mut c, p.skin.map(|k| k * shade), a);
            }
            // Hair behind and above the head.
            let hv = p.hair_volume;
            let hr = ((u / hv).powi(2) + ((v + 0.12) / (hv * 1.02)).powi(2)).sqrt();
            let hair_a = soft(hr, 0.04 + 0.06 * hair_low[i].abs())
                * if v < 0.35 {
                    1.0
                } else {
                    soft((v - 0.35) / 0.4, 0.5)
                };
            if hair_a > 0.0 {
                let t = 0.75 + 0.25 * hair_tex[i] + 0.1 * hair_low[i];
                blend(&mut c, p.hair.map(|k| k * t), hair_a);
                masks.hair[i] = hair_a;
            }
            // Face ellipsoid with Lambertian shading.
            let r2 = u * u + v * v;
            let face_a = soft(r2.sqrt(), px_unit * 1.5);
            if face_a > 0.0 {
                let nz = (1.0 - r2.min(1.0)).sqrt();
                let diffuse = (u * lx + v * ly + nz * lz).max(0.0);
                let shade = 0.35 + 0.7 * diffuse;
                let mut skin = p.skin.map(|k| k * shade * (1.0 + 0.05 * skin_tex[i]));
                // Fringe: hair over the forehead.
                let fringe = soft((v + 1.0) / 0.42 + 0.3 * hair_low[i], 0.2);
                skin = lerp3(skin, p.hair.map(|k| k * (0.8 + 0.2 * hair_tex[i])), fringe);
                let fu = u - 0.25 * p.yaw;
                // Eyes, irises, pupils, brows.
                let mut eye_mask = 0.0f32;
                for side in [-1.0f32, 1.0] {
                    let ex = fu - side * 0.36;
                    let ey = v + 0.08;
                    let sclera = soft(((ex / 0.17).powi(2) + (ey / 0.075).powi(2)).sqrt(), 0.25);
                    skin = lerp3(skin, [0.92, 0.90, 0.88].map(|k| k * shade), sclera);
                    let iris = soft((ex * ex + ey * ey).sqrt() / 0.065, 0.2) * sclera;
                    skin = lerp3(skin, p.iris, iris);
                    let pupil = soft((ex * ex + ey * ey).sqrt() / 0.03, 0.3) * sclera;
                    skin = lerp3(skin, [0.03, 0.03, 0.03], pupil);
                    let by = v + 0.25 + 0.25 * (ex / 0.2).powi(2) * 0.2;
                    let brow = soft(((ex / 0.2).powi(2) + (by / 0.035).powi(2)).sqrt(), 0.35);
                    skin = lerp3(skin, p.hair.map(|k| k * 0.8), brow * 0.9);
                    eye_mask = eye_mask.max(soft(
                        ((ex / 0.27).powi(2) + ((v + 0.14) / 0.2).powi(2)).sqrt(),
                        0.3,
                    ));
                }
                masks.eyes[i] = eye_mask * face_a;
                // Nose: a soft shadow on the side away from the light, nostrils.
                let nx = fu + 0.03 * lx.signum();
                let nose = soft(
                    ((nx / 0.09).powi(2) + ((v - 0.18) / 0.22).powi(2)).sqrt(),
                    0.5,
                );
                skin = skin.map(|k| k * (1.0 - 0.12 * nose));
                for side in [-1.0f32, 1.0] {
                    let nos = soft(
                        (((fu - side * 0.06) / 0.035).powi(2) + ((v - 0.36) / 0.02).powi(2)).sqrt(),
                        0.4,
                    );
                    skin = skin.map(|k| k * (1.0 - 0.5 * nos));
                }
                // Mouth with a smile curve.
                let mv = v - 0.6 + p.smile * (fu / 0.3).powi(2) * 0.12;
                let lips = soft(((fu / 0.27).powi(2) + (mv / 0.065).powi(2)).sqrt(), 0.3);
                skin = lerp3(skin, p.lips.map(|k| k * shade), lips);
                let line = soft(((fu / 0.25).powi(2) + (mv / 0.012).powi(2)).sqrt(), 0.5);
                skin = skin.map(|k| k * (1.0 - 0.55 * line));
                masks.mouth[i] = face_a
                    * soft(
                        ((fu / 0.42).powi(2) + ((v - 0.6) / 0.2).powi(2)).sqrt(),
                        0.35,
                    );
                blend(&mut c, skin, face_a);
                masks.face[i] = face_a;
            }
            for (k, v) in c.iter().enumerate() {
                img.data[k * n + i] = *v;
            }
        }
    }
    (img, masks)
}

/// Camera optics and sensor: a slight blur (more for CelebA-like softness), clamping, and
/// Gaussian sensor noise.
pub fn camera<R: Rng>(rng: &mut R, img: &mut ImageF32, style: Style, noise_sd: f32) {
    let (w, h) = (img.width, img.height);
    let passes = match style {
        Style::Ffhq => 1,
        Style::Celeba => 2,
    };
    for c in 0..3 {
        blur121(img.plane_mut(c), w, h, passes);
    }
    for v in img.data.iter_mut() {
        *v = (*v + noise_sd * super::noise::gauss(rng)).clamp(0.0, 1.0);
    }
}
