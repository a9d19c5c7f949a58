//! Procedural noise and filters for the synthetic images.

use rand::Rng;

/// Smooth value noise: a random lattice with spacing `cell` pixels, interpolated with a
/// smoothstep. Values in about `[-1, 1]`.
pub fn value_noise<R: Rng>(rng: &mut R, w: usize, h: usize, cell: f32) -> Vec<f32> {
    let gw = (w as f32 / cell).ceil() as usize + 2;
    let gh = (h as f32 / cell).ceil() as usize + 2;
    let grid: Vec<f32> = (0..gw * gh).map(|_| rng.random_range(-1.0..1.0)).collect();
    let (ox, oy) = (rng.random_range(0.0..1.0f32), rng.random_range(0.0..1.0f32));
    let mut out = vec![0.0; w * h];
    for y in 0..h {
        let gy = y as f32 / cell + oy;
        let (iy, fy) = (gy.floor() as usize, smooth(gy.fract()));
        for x in 0..w {
            let gx = x as f32 / cell + ox;
            let (ix, fx) = (gx.floor() as usize, smooth(gx.fract()));
            let g = |i: usize, j: usize| grid[(j.min(gh - 1)) * gw + i.min(gw - 1)];
            let top = g(ix, iy) * (1.0 - fx) + g(ix + 1, iy) * fx;
            let bot = g(ix, iy + 1) * (1.0 - fx) + g(ix + 1, iy + 1) * fx;
            out[y * w + x] = top * (1.0 - fy) + bot * fy;
        }
    }
    out
}

fn smooth(t: f32) -> f32 {
    t * t * (3.0 - 2.0 * t)
}

/// Noise with a `1/f^beta` amplitude spectrum (natural images: beta ≈ 1), built from octaves
/// of value noise whose amplitude grows with their scale; normalised to unit standard
/// deviation.
pub fn pink_noise<R: Rng>(rng: &mut R, w: usize, h: usize, beta: f32) -> Vec<f32> {
    let mut out = vec![0.0f32; w * h];
    let mut cell = (w.max(h) as f32) / 2.0;
    while cell >= 1.0 {
        let amp = cell.powf(beta);
        let layer = value_noise(rng, w, h, cell);
        for (o, v) in out.iter_mut().zip(layer) {
            *o += amp * v;
        }
        cell /= 2.0;
    }
    normalise(&mut out);
    out
}

/// Scales a field to zero mean and unit standard deviation (no-op on a constant field).
pub fn normalise(v: &mut [f32]) {
    let n = v.len() as f32;
    let mean = v.iter().sum::<f32>() / n;
    let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / n;
    let sd = var.sqrt();
    if sd > 1e-12 {
        for x in v.iter_mut() {
            *x = (*x - mean) / sd;
        }
    }
}

/// Separable `[1, 2, 1] / 4` blur applied `passes` times (edges clamped).
pub fn blur121(plane: &mut [f32], w: usize, h: usize, passes: usize) {
    let mut tmp = vec![0.0f32; w * h];
    for _ in 0..passes {
        for y in 0..h {
            for x in 0..w {
                let l = plane[y * w + x.saturating_sub(1)];
                let r = plane[y * w + (x + 1).min(w - 1)];
                tmp[y * w + x] = 0.25 * l + 0.5 * plane[y * w + x] + 0.25 * r;
            }
        }
        for y in 0..h {
            for x in 0..w {
                let u = tmp[y.saturating_sub(1) * w + x];
                let d = tmp[(y + 1).min(h - 1) * w + x];
                plane[y * w + x] = 0.25 * u + 0.5 * tmp[y * w + x] + 0.25 * d;
            }
        }
    }
}

/// Bilinear resampling of a plane to a new size (pixel-centre aligned, edges clamped).
pub fn resample(plane: &[f32], w: usize, h: usize, nw: usize, nh: usize) -> Vec<f32> {
    let mut out = vec![0.0; nw * nh];
    let (sx, sy) = (w as f32 / nw as f32, h as f32 / nh as f32);
    for y in 0..nh {
        let fy = ((y as f32 + 0.5) * sy - 0.5).clamp(0.0, (h - 1) as f32);
        let (y0, ty) = (fy.floor() as usize, fy.fract());
        let y1 = (y0 + 1).min(h - 1);
        for x in 0..nw {
            let fx = ((x as f32 + 0.5) * sx - 0.5).clamp(0.0, (w - 1) as f32);
            let (x0, tx) = (fx.floor() as usize, fx.fract());
            let x1 = (x0 + 1).min(w - 1);
            let top = plane[y0 * w + x0] * (1.0 - tx) + plane[y0 * w + x1] * tx;
            let bot = plane[y1 * w + x0] * (1.0 - tx) + plane[y1 * w + x1] * tx;
            out[y * nw + x] = top * (1.0 - ty) + bot * ty;
        }
    }
    out
}

/// Nearest-neighbour up-sampling by an integer factor.
pub fn upsample_nearest(plane: &[f32], w: usize, h: usize, f: usize) -> Vec<f32> {
    let mut out = vec![0.0; w * f * h * f];
    for y in 0..h * f {
        for x in 0..w * f {
            out[y * w * f + x] = plane[(y / f) * w + x / f];
        }
    }
    out
}

/// Standard normal sample (Box–Muller).
pub fn gauss<R: Rng>(rng: &mut R) -> f32 {
    let u1: f32 = rng.random_range(f32::EPSILON..1.0);
    let u2: f32 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}
