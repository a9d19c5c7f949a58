//! Depthwise kernels for small maps (at most [`MAX_PIXELS`]), vectorised over channels.
//!
//! Past the first stages the maps are 16×16 down to 1×1 while the channels number dozens to
//! hundreds. The row-wise plane kernels of the parent module then spend their time on loop
//! overhead: a 5×5 kernel on a 2×2 map is 25 taps, each an inner loop of one or two values.
//! Here the valid `(output pixel, input pixel, tap)` triples of the geometry are listed once
//! per op, and each triple becomes one multiply-add over a block of channels: a sample's block
//! of channels is gathered channels-last (`(pixel, channel)`, at most 64 KiB, in cache), the
//! triples run over it, and the result is scattered back to NCHW. The forward and the input
//! gradient add the same terms in the same order as the plane kernels; the weight gradient
//! sums a sample's terms in f32 before the f64 accumulation over samples (the plane kernel
//! goes to f64 per row), so it agrees to rounding.

use super::Geom;
use multiversion::multiversion;
use rayon::prelude::*;

/// Largest input or output map, in pixels, that takes these kernels (16×16). Measured on B0
/// (eval, train and input-gradient steps at 64×16 and 128×32, interleaved runs): 256 was as
/// fast as or faster than 16 and 64 everywhere (train at 128×32 by 15–20 %); 1024 (32×32)
/// was no better within the noise.
pub(super) const MAX_PIXELS: usize = 256;

/// Channels per task (a multiple of the widest vector).
const BLOCK: usize = 64;

/// Whether `g` takes the small-map kernels.
pub(super) fn applies(g: &Geom) -> bool {
    g.h * g.w <= MAX_PIXELS && g.ho * g.wo <= MAX_PIXELS
}

/// The valid `(output pixel, input pixel, tap)` triples, grouped three ways (compressed
/// rows): by output pixel (forward), by input pixel (input gradient), by tap (weight
/// gradient). Within a group the triples are in (oy, ky, kx, ox) order, the order in which
/// the plane kernels accumulate.
struct Triples {
    by_out: Csr,
    by_in: Csr,
    by_tap: Csr,
}

/// Compressed rows of `(other index, tap)` pairs.
struct Csr {
    start: Vec<usize>,
    pairs: Vec<(usize, usize)>,
}

impl Csr {
    fn new(rows: usize, mut entries: Vec<(usize, usize, usize)>) -> Self {
        // stable: keeps the (oy, ky, kx, ox) order within a row
        entries.sort_by_key(|e| e.0);
        let mut start = vec![0; rows + 1];
        for e in &entries {
            start[e.0 + 1] += 1;
        }
        for r in 0..rows {
            start[r + 1] += start[r];
        }
        let pairs = entries.into_iter().map(|(_, a, b)| (a, b)).collect();
        Self { start, pairs }
    }

    fn row(&self, r: usize) -> &[(usize, usize)] {
        &self.pairs[self.start[r]..self.start[r + 1]]
    }
}

impl Triples {
    fn new(g: &Geom) -> Self {
        let mut t = Vec::new();
        for oy in 0..g.ho {
            for ky in 0..g.kh {
                let Some(iy) = g.in_row(oy, ky) else { continue };
                for kx in 0..g.kw {
                    for ox in 0..g.wo {
                        let c = ox * g.stride + kx;
                        if c < g.pad.left || c - g.pad.left >= g.w {
                            continue;
                        }
                        t.push((oy * g.wo + ox, iy * g.w + c - g.pad.left, ky * g.kw + kx));
                    }
                }
            }
        }
        let (howo, hw, kk) = (g.ho * g.wo, g.h * g.w, g.kh * g.kw);
        Self {
            by_out: Csr::new(howo, t.iter().map(|&(o, i, k)| (o, i, k)).collect()),
            by_in: Csr::new(hw, t.iter().map(|&(o, i, k)| (i, o, k)).collect()),
            by_tap: Csr::new(kk, t.iter().map(|&(o, i, k)| (k, o, i)).collect()),
        }
    }
}

/// The weight `(C, kk)` transposed to `(kk, C)`.
fn taps_major(k: &[f32], c: usize, kk: usize) -> Vec<f32> {
    let mut t = vec![0f32; k.len()];
    for ch in 0..c {
        for tap in 0..kk {
            t[tap * c + ch] = k[ch * kk + tap];
        }
    }
    t
}

/// `dst[p * width + j] = src[j * pixels + p]`: `width` planes of `pixels` to channels-last.
fn to_channels_last(src: &[f32], pixels: usize, width: usize, dst: &mut [f32]) {
    for j in 0..width {
        for p in 0..pixels {
            dst[p * width + j] = src[j * pixels + p];
        }
    }
}

/// The inverse of [`to_channels_last`].
fn to_planes(src: &[f32], pixels: usize, width: usize, dst: &mut [f32]) {
    for j in 0..width {
        for p in 0..pixels {
            dst[j * pixels + p] = src[p * width + j];
        }
    }
}

/// `acc[j] += w[j] * x[j]`.
#[inline(always)]
fn madd(acc: &mut [f32], w: &[f32], x: &[f32]) {
    for ((a, &wv), &xv) in acc.iter_mut().zip(w).zip(x) {
        *a += wv * xv;
    }
}

/// The output (or input gradient) planes of one sample, cut into blocks of [`BLOCK`]
/// channels: `(sample, first channel, the block's planes)`.
fn blocks(buf: &mut [f32], c: usize, plane: usize) -> Vec<(usize, usize, &mut [f32])> {
    let mut v = Vec::new();
    for (b, sample) in buf.chunks_mut(c * plane).enumerate() {
        for (i, blk) in sample.chunks_mut(BLOCK * plane).enumerate() {
            v.push((b, i * BLOCK, blk));
        }
    }
    v
}

/// One block's "map": `out[o] = Σ_{(i, tap) ∈ rows[o]} w[tap] · x[i]` over `width` channels,
/// channels-last, with `w` taps-major of row length `wstride` (offset to the block).
#[inline(always)]
fn apply_rows(rows: &Csr, x: &[f32], w: &[f32], wstride: usize, width: usize, out: &mut [f32]) {
    for (o, acc) in out.chunks_exact_mut(width).enumerate() {
        acc.fill(0.0);
        for &(i, tap) in rows.row(o) {
            madd(
                acc,
                &w[tap * wstride..tap * wstride + width],
                &x[i * width..(i + 1) * width],
            );
        }
    }
}

/// Shared body of the forward and the input gradient: `src` planes of `src_px` pixels to
/// `dst` planes of `dst_px` pixels through `rows` (grouped by destination pixel).
fn map(g: &Geom, rows: &Csr, src: &[f32], src_px: usize, dst_px: usize, wt: &[f32]) -> Vec<f32> {
    let c = g.c;
    let mut dst = vec![0f32; g.n * c * dst_px];
    blocks(&mut dst, c, dst_px)
        .into_par_iter()
        .for_each(|(b, c0, out)| {
            let width = out.len() / dst_px;
            let mut xs = vec![0f32; src_px * width];
            let mut ys = vec![0f32; dst_px * width];
            let first = (b * c + c0) * src_px;
            to_channels_last(&src[first..first + width * src_px], src_px, width, &mut xs);
            apply_rows(rows, &xs, &wt[c0..], c, width, &mut ys);
            to_planes(&ys, dst_px, width, out);
        });
    dst
}

/// Forward: `out` `(N, C, ho, wo)` from `inp` `(N, C, h, w)` and `k` `(C, kh·kw)`.
pub(super) fn forward(g: &Geom, inp: &[f32], k: &[f32]) -> Vec<f32> {
    let kk = g.kh * g.kw;
    let wt = taps_major(k, g.c, kk);
    let t = Triples::new(g);
    map(g, &t.by_out, inp, g.h * g.w, g.ho * g.wo, &wt)
}

/// Input gradient `(N, C, h, w)` from `gout` `(N, C, ho, wo)`.
pub(super) fn backward_input(g: &Geom, gout: &[f32], k: &[f32]) -> Vec<f32> {
    let kk = g.kh * g.kw;
    let wt = taps_major(k, g.c, kk);
    let t = Triples::new(g);
    map(g, &t.by_in, gout, g.ho * g.wo, g.h * g.w, &wt)
}

/// One sample's weight-gradient terms of a block, `acc[tap][j] += Σ gout[o][j] · x[i][j]`
/// (the sum in f32 in `sum`, then added in f64).
#[multiversion(targets = "simd")]
fn accumulate_taps(
    by_tap: &Csr,
    xs: &[f32],
    gs: &[f32],
    width: usize,
    sum: &mut [f32],
    acc: &mut [f64],
) {
    for (tap, acc) in acc.chunks_exact_mut(width).enumerate() {
        sum.fill(0.0);
        for &(o, i) in by_tap.row(tap) {
            madd(
                sum,
                &gs[o * width..(o + 1) * width],
                &xs[i * width..(i + 1) * width],
            );
        }
        for (a, &s) in acc.iter_mut().zip(sum.iter()) {
            *a += s as f64;
        }
    }
}

/// Weight gradient `(C, kh·kw)`: per tap and channel, the f32 sum over one sample's
/// triples, accumulated over the samples in f64 in sample order (independent of the
/// thread count).
pub(super) fn backward_weight(g: &Geom, inp: &[f32], gout: &[f32]) -> Vec<f32> {
    let (c, kk) = (g.c, g.kh * g.kw);
    let (hw, howo) = (g.h * g.w, g.ho * g.wo);
    let t = Triples::new(g);
    let mut gw = vec![0f32; c * kk];
    gw.par_chunks_mut(BLOCK * kk)
        .enumerate()
        .for_each(|(blk, gwb)| {
            let c0 = blk * BLOCK;
            let width = gwb.len() / kk;
            let mut xs = vec![0f32; hw * width];
            let mut gs = vec![0f32; howo * width];
            let mut sum = vec![0f32; width];
            let mut acc = vec![0f64; kk * width];
            for b in 0..g.n {
                let fi = (b * c + c0) * hw;
                let fo = (b * c + c0) * howo;
                to_channels_last(&inp[fi..fi + width * hw], hw, width, &mut xs);
                to_channels_last(&gout[fo..fo + width * howo], howo, width, &mut gs);
                accumulate_taps(&t.by_tap, &xs, &gs, width, &mut sum, &mut acc);
            }
            for j in 0..width {
                for tap in 0..kk {
                    gwb[j * kk + tap] = acc[tap * width + j] as f32;
                }
            }
        });
    gw
}
