//! CPU kernels of the 1×1 convolution: one gemm per sample on strided views.
//!
//! `(N, C, HW)` activations are batch-major, so a 1×1 convolution is `N` independent matrix
//! products `(O, C) · (C, HW)`. Each kernel here hands those products to the `gemm` crate (the
//! kernels candle's own matmul uses) with the strides of the operands as they lie in memory:
//! a transposed operand (`Wᵀ` for the input gradient, `xᵀ` for the weight gradient) is read
//! through its strides and never copied, and the weight gradient's sum over samples
//! accumulates in the gemm's destination instead of materialising an `(N, O, C)` tensor and
//! reducing it.
//!
//! Threads split the batch (each sample's product single-threaded) when there are at least as
//! many samples as threads; a smaller batch (Grad-CAM on one image) lets gemm split each
//! product instead.

use std::mem::MaybeUninit;

use gemm::{gemm, Parallelism};
use rayon::prelude::*;

use crate::batch_norm::epilogue::Epilogue;

/// A read-only matrix operand: its first element and its row and column strides.
#[derive(Clone, Copy)]
struct View<'a> {
    data: &'a [f32],
    rs: isize,
    cs: isize,
}

/// `dst (m × n, row-major, row stride n) = [dst +] lhs (m × k) · rhs (k × n)` by gemm. When
/// not accumulating, gemm never reads `dst` (it sets its `alpha` to zero, and its kernels then
/// only store; with `k == 0` it stores zeros), so `dst` may be uninitialised.
///
/// # Safety
/// `dst` must be valid for writes (and with `accumulate` for reads, initialised) of the m·n
/// values, and both views must stay inside their slices for the given shapes.
unsafe fn gemm_f32(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    accumulate: bool,
    lhs: View<'_>,
    rhs: View<'_>,
    par: Parallelism,
) {
    // SAFETY: the caller's promise.
    unsafe {
        gemm(
            m,
            n,
            k,
            dst,
            1,
            n as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.cs,
            lhs.rs,
            rhs.data.as_ptr(),
            rhs.cs,
            rhs.rs,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}

/// `dst (m × n, row-major contiguous) = [dst +] lhs (m × k) · rhs (k × n)`.
///
/// The caller guarantees that both views stay inside their slices for the given shapes.
fn matmul_into(
    dims: (usize, usize, usize),
    dst: &mut [f32],
    accumulate: bool,
    lhs: View<'_>,
    rhs: View<'_>,
    par: Parallelism,
) {
    assert!(
        dst.len() >= dims.0 * dims.1,
        "matmul_into: the destination must hold m × n"
    );
    // SAFETY: `dst` holds m·n initialised values; the callers build the views from slices
    // holding exactly the (strided) m × k and k × n operands (checked by the length assertions
    // of the public kernels).
    unsafe { gemm_f32(dims, dst.as_mut_ptr(), accumulate, lhs, rhs, par) }
}

/// [`matmul_into`] without accumulating, into a buffer that need not be initialised. Returns
/// `dst`, every value of which is then written.
fn matmul_to<'d>(
    dims: (usize, usize, usize),
    dst: &'d mut [MaybeUninit<f32>],
    lhs: View<'_>,
    rhs: View<'_>,
    par: Parallelism,
) -> &'d mut [f32] {
    assert_eq!(
        dst.len(),
        dims.0 * dims.1,
        "matmul_to: the destination must be m × n"
    );
    // SAFETY: `dst` holds m·n values; not accumulating, gemm writes each without reading it;
    // the views as in `matmul_into`.
    unsafe { gemm_f32(dims, dst.as_mut_ptr().cast::<f32>(), false, lhs, rhs, par) };
    // SAFETY: every value was written above (none when m·n = 0).
    unsafe { &mut *(dst as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// A vector of `len` values without zero-filling it first: `init` writes them all. (The
/// buffers of these kernels are overwritten in full, and by `perf` of a PGD step at 128×32
/// the memset of fresh zeroed buffers was about 7 % of the time.)
///
/// # Safety
/// `init` must write every element of the slice it is handed.
unsafe fn written_by(len: usize, init: impl FnOnce(&mut [MaybeUninit<f32>])) -> Vec<f32> {
    let mut v = Vec::with_capacity(len);
    init(&mut v.spare_capacity_mut()[..len]);
    // SAFETY: the caller's promise: `init` initialised the first `len` elements.
    unsafe { v.set_len(len) };
    v
}

/// `dst = src`, element for element (equal lengths).
fn copy_to(dst: &mut [MaybeUninit<f32>], src: &[f32]) {
    debug_assert_eq!(dst.len(), src.len());
    for (d, &s) in dst.iter_mut().zip(src) {
        d.write(s);
    }
}

fn threads() -> usize {
    rayon::current_num_threads().max(1)
}

/// How one product is split when the batch is not: over all `t` threads, or not at all.
fn within_product(t: usize) -> Parallelism {
    if t > 1 {
        Parallelism::Rayon(t)
    } else {
        Parallelism::None
    }
}

/// Maps at most this many values per channel (8×8) are batched: the samples' columns are
/// gathered into one `(C, N·HW)` matrix and multiplied at once. Per-sample products with a
/// handful of columns spend their time packing the same weights again for every sample.
const BATCH_BELOW_HW: usize = 65;

/// Whether a product over `hw` columns per sample runs as one batched product.
fn batched(n: usize, hw: usize) -> bool {
    n > 1 && hw > 0 && hw < BATCH_BELOW_HW
}

/// `(N, R, HW)` → `(R, N·HW)`: column `s·HW + p` of row `r` is `x[s][r][p]` (the two leading
/// axes swapped, so `gather(gather(x, (n, r, hw)), (r, n, hw)) == x`).
fn gather(x: &[f32], (n, r, hw): (usize, usize, usize)) -> Vec<f32> {
    assert!(x.len() == n * r * hw && hw > 0);
    let init = |out: &mut [MaybeUninit<f32>]| {
        out.par_chunks_mut(n * hw)
            .enumerate()
            .for_each(|(ri, row)| {
                for (s, dst) in row.chunks_mut(hw).enumerate() {
                    let at = (s * r + ri) * hw;
                    copy_to(dst, &x[at..at + hw]);
                }
            })
    };
    // SAFETY: the R rows of N·HW values are each written by N copies of HW values.
    unsafe { written_by(x.len(), init) }
}

/// `lhs (m × k) · rhs`, where rhs is `(N, k, HW)` taken as the `(k, N·HW)` matrix of its
/// gathered columns; the result back in `(N, m, HW)`.
fn batched_product(
    lhs: View<'_>,
    m: usize,
    rhs: &[f32],
    (n, k, hw): (usize, usize, usize),
) -> Vec<f32> {
    let cols = gather(rhs, (n, k, hw));
    let rv = View {
        data: &cols,
        rs: (n * hw) as isize,
        cs: 1,
    };
    let init = |out: &mut [MaybeUninit<f32>]| {
        matmul_to((m, n * hw, k), out, lhs, rv, within_product(threads()));
    };
    // SAFETY: `matmul_to` writes all m · N·HW values.
    let out = unsafe { written_by(m * n * hw, init) };
    // back to (N, m, HW): the inverse of a gather is the gather of the swapped shape
    gather(&out, (m, n, hw))
}

/// Runs `f(sample, out_chunk)` for every sample, in parallel over samples or inside each
/// product, whichever has the work.
fn per_sample(
    n: usize,
    out: &mut [MaybeUninit<f32>],
    chunk: usize,
    f: impl Fn(usize, &mut [MaybeUninit<f32>], Parallelism) + Sync,
) {
    let t = threads();
    if n >= t && t > 1 {
        out.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(s, o)| f(s, o, Parallelism::None));
    } else {
        let par = within_product(t);
        for (s, o) in out.chunks_mut(chunk).enumerate() {
            f(s, o, par)
        }
    }
}

/// `out[s] = w · x[s]`: `w` `(O, C)`, `x` `(N, C, HW)`, out `(N, O, HW)`, all contiguous;
/// with `epi`, each sample's output goes through it right after its product (in cache).
pub(crate) fn forward(
    w: &[f32],
    x: &[f32],
    (n, o, c, hw): (usize, usize, usize, usize),
    epi: Option<&Epilogue<'_>>,
) -> Vec<f32> {
    assert!(w.len() == o * c && x.len() == n * c * hw);
    let wv = View {
        data: w,
        rs: c as isize,
        cs: 1,
    };
    if batched(n, hw) && o * c > 0 {
        let mut out = batched_product(wv, o, x, (n, c, hw));
        if let Some(e) = epi {
            e.apply_all(&mut out);
        }
        return out;
    }
    if n * o * hw == 0 {
        return Vec::new();
    }
    let init = |out: &mut [MaybeUninit<f32>]| {
        per_sample(n, out, o * hw, |s, dst, par| {
            let xs = View {
                data: &x[s * c * hw..(s + 1) * c * hw],
                rs: hw as isize,
                cs: 1,
            };
            let dst = matmul_to((o, hw, c), dst, wv, xs, par);
            if let Some(e) = epi {
                e.apply(s * o, dst);
            }
        })
    };
    // SAFETY: each of the N chunks of O·HW values is written by `matmul_to`.
    unsafe { written_by(n * o * hw, init) }
}

/// `gx[s] = wᵀ · g[s]`: `w` `(O, C)`, `g` `(N, O, HW)`, gx `(N, C, HW)`.
pub(crate) fn input_grad(
    w: &[f32],
    g: &[f32],
    (n, o, c, hw): (usize, usize, usize, usize),
) -> Vec<f32> {
    assert!(w.len() == o * c && g.len() == n * o * hw);
    // wᵀ[ci, oi] = w[oi · C + ci]: row stride 1, column stride C.
    let wt = View {
        data: w,
        rs: 1,
        cs: c as isize,
    };
    if batched(n, hw) && o * c > 0 {
        return batched_product(wt, c, g, (n, o, hw));
    }
    if n * c * hw == 0 {
        return Vec::new();
    }
    let init = |out: &mut [MaybeUninit<f32>]| {
        per_sample(n, out, c * hw, |s, dst, par| {
            let gs = View {
                data: &g[s * o * hw..(s + 1) * o * hw],
                rs: hw as isize,
                cs: 1,
            };
            matmul_to((c, hw, o), dst, wt, gs, par);
        })
    };
    // SAFETY: each of the N chunks of C·HW values is written by `matmul_to`.
    unsafe { written_by(n * c * hw, init) }
}

/// Samples summed into one partial weight gradient (see [`weight_grad`]); fixed, so that the
/// gradient does not depend on the number of threads.
const SAMPLES_PER_PARTIAL: usize = 2;

/// `gw = Σ_s g[s] · x[s]ᵀ`: `g` `(N, O, HW)`, `x` `(N, C, HW)`, gw `(O, C)`.
pub(super) fn weight_grad(
    g: &[f32],
    x: &[f32],
    (n, o, c, hw): (usize, usize, usize, usize),
) -> Vec<f32> {
    assert!(g.len() == n * o * hw && x.len() == n * c * hw);
    let sample = |s: usize, dst: &mut [f32], accumulate: bool, par: Parallelism| {
        let gs = View {
            data: &g[s * o * hw..(s + 1) * o * hw],
            rs: hw as isize,
            cs: 1,
        };
        // x[s]ᵀ[p, ci] = x[s][ci · HW + p]: row stride 1, column stride HW.
        let xt = View {
            data: &x[s * c * hw..(s + 1) * c * hw],
            rs: 1,
            cs: hw as isize,
        };
        matmul_into((o, c, hw), dst, accumulate, gs, xt, par)
    };
    if n == 0 || o * c == 0 || hw == 0 {
        return vec![0f32; o * c];
    }
    if batched(n, hw) {
        // gw = G · Xᵀ over the gathered columns: one product whose sum over the batch runs
        // inside gemm's k loop (split over rows and columns of gw, never over k, so the
        // result does not depend on the number of threads)
        let (gc, xc) = (gather(g, (n, o, hw)), gather(x, (n, c, hw)));
        let k = n * hw;
        let gv = View {
            data: &gc,
            rs: k as isize,
            cs: 1,
        };
        let xt = View {
            data: &xc,
            rs: 1,
            cs: k as isize,
        };
        let init = |gw: &mut [MaybeUninit<f32>]| {
            matmul_to((o, c, k), gw, gv, xt, within_product(threads()));
        };
        // SAFETY: `matmul_to` writes all O·C values.
        return unsafe { written_by(o * c, init) };
    }
    // The batch is summed in groups of SAMPLES_PER_PARTIAL consecutive samples, each into its
    // own (O, C) buffer, and the buffers are added in order: the same additions in the same
    // order whatever the number of threads (the groups run in parallel when there are enough
    // of them, one after the other with each product split otherwise).
    let groups = n.div_ceil(SAMPLES_PER_PARTIAL);
    let group = |b: usize, par: Parallelism| {
        let mut acc = vec![0f32; o * c];
        let samples = b * SAMPLES_PER_PARTIAL..((b + 1) * SAMPLES_PER_PARTIAL).min(n);
        for (i, s) in samples.enumerate() {
            sample(s, &mut acc, i > 0, par);
        }
        acc
    };
    let t = threads();
    let partial: Vec<Vec<f32>> = if groups >= t && t > 1 {
        (0..groups)
            .into_par_iter()
            .map(|b| group(b, Parallelism::None))
            .collect()
    } else {
        let par = within_product(t);
        (0..groups).map(|b| group(b, par)).collect()
    };
    let mut it = partial.into_iter();
    let mut sum = it.next().unwrap_or_else(|| vec![0f32; o * c]);
    for p in it {
        sum.iter_mut().zip(&p).for_each(|(a, b)| *a += b);
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `out[s] = w · x[s]` by the definition, in f64.
    fn naive(w: &[f32], x: &[f32], (n, o, c, hw): (usize, usize, usize, usize)) -> Vec<f32> {
        let mut out = Vec::with_capacity(n * o * hw);
        for s in 0..n {
            for oi in 0..o {
                for p in 0..hw {
                    let v: f64 = (0..c)
                        .map(|ci| w[oi * c + ci] as f64 * x[(s * c + ci) * hw + p] as f64)
                        .sum();
                    out.push(v as f32);
                }
            }
        }
        out
    }

    #[test]
    fn every_output_value_is_written_on_both_paths_even_with_no_input_channels() {
        // batched (hw < 65, n > 1) and per-sample shapes; c = 0 is gemm's k = 0 (all zeros)
        for (n, o, c, hw) in [(3, 5, 4, 4), (4, 6, 0, 4), (2, 3, 7, 81), (1, 4, 0, 9)] {
            let w: Vec<f32> = (0..o * c).map(|i| (i as f32 * 0.37).sin()).collect();
            let x: Vec<f32> = (0..n * c * hw).map(|i| (i as f32 * 0.11).cos()).collect();
            let got = forward(&w, &x, (n, o, c, hw), None);
            let want = naive(&w, &x, (n, o, c, hw));
            assert_eq!(got.len(), want.len());
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-5, "{n} {o} {c} {hw}: {a} vs {b}");
            }
            let g: Vec<f32> = (0..n * o * hw).map(|i| (i as f32 * 0.23).sin()).collect();
            let gx = input_grad(&w, &g, (n, o, c, hw));
            assert_eq!(gx.len(), n * c * hw);
        }
    }
}
