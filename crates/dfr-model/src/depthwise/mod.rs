//! Fast depthwise 2-D convolution as a candle custom op.
//!
//! Input `(N, C, H, W)`, weight `(C, 1, kh, kw)`, any kernel size, any stride, and
//! symmetric or asymmetric zero padding `(top, bottom, left, right)`. The CPU kernels
//! (forward, input gradient, weight gradient) are written directly, multi-threaded
//! with rayon over `(n, c)` planes (over `c` for the weight gradient), with
//! row-wise inner loops that the compiler vectorises for stride 1.
//!
//! candle computes gradients for every operand of an op, tracked or not. This op
//! decides at construction time whether the weight gradient is needed at all (it is
//! skipped when the weight tensor is not tracked: a constant, a detached tensor),
//! which saves a full pass in adversarial attacks that need only the input gradient.
//!
//! With the `cuda` feature, f32 tensors on a CUDA device run the kernels of
//! `depthwise.cu` (compiled with NVRTC on first use). Other dtypes and devices fall back
//! to candle's grouped `conv2d` (with explicit zero padding when the padding is
//! asymmetric).

#[cfg(feature = "cuda")]
mod cuda;
mod small;

#[cfg(feature = "cuda")]
use candle_core::CudaStorage;
use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};
use multiversion::multiversion;
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::batch_norm::epilogue::{Epilogue, EvalBn};
use crate::storage::with_host_f32;

static FORCE_REFERENCE: AtomicBool = AtomicBool::new(false);

/// Makes [`depthwise_conv2d`] use candle's grouped conv2d everywhere (process-wide;
/// for benchmarks and debugging).
pub fn force_reference_impl(on: bool) {
    FORCE_REFERENCE.store(on, Ordering::Relaxed)
}

/// Zero padding of a 2-D convolution: rows added at the top/bottom, columns at the
/// left/right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Padding2d {
    /// Rows of zeros above the input.
    pub top: usize,
    /// Rows of zeros below the input.
    pub bottom: usize,
    /// Columns of zeros left of the input.
    pub left: usize,
    /// Columns of zeros right of the input.
    pub right: usize,
}

impl Padding2d {
    /// The same padding on every side.
    pub fn symmetric(p: usize) -> Self {
        Self {
            top: p,
            bottom: p,
            left: p,
            right: p,
        }
    }

    /// TensorFlow "SAME" padding for an input of `h`×`w`: output `ceil(in/stride)`,
    /// the extra row/column (if the total is odd) goes to the bottom/right.
    pub fn tf_same(h: usize, w: usize, kh: usize, kw: usize, stride: usize) -> Self {
        fn one(n: usize, k: usize, s: usize) -> (usize, usize) {
            let out = n.div_ceil(s);
            let total = ((out - 1) * s + k).saturating_sub(n);
            (total / 2, total - total / 2)
        }
        let (top, bottom) = one(h, kh, stride);
        let (left, right) = one(w, kw, stride);
        Self {
            top,
            bottom,
            left,
            right,
        }
    }

    /// Whether all four sides are equal.
    pub fn is_symmetric(&self) -> bool {
        self.top == self.bottom && self.left == self.right && self.top == self.left
    }
}

/// Geometry of one depthwise convolution.
#[derive(Debug, Clone, Copy)]
struct Geom {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    ho: usize,
    wo: usize,
    stride: usize,
    pad: Padding2d,
}

impl Geom {
    fn new(
        (n, c, h, w): (usize, usize, usize, usize),
        (kh, kw): (usize, usize),
        stride: usize,
        pad: Padding2d,
    ) -> Result<Self> {
        let hp = h + pad.top + pad.bottom;
        let wp = w + pad.left + pad.right;
        if stride == 0 || hp < kh || wp < kw {
            candle_core::bail!(
                "depthwise_conv2d: input {h}x{w} (padded {hp}x{wp}) smaller than kernel {kh}x{kw} or stride 0"
            )
        }
        Ok(Self {
            n,
            c,
            h,
            w,
            kh,
            kw,
            ho: (hp - kh) / stride + 1,
            wo: (wp - kw) / stride + 1,
            stride,
            pad,
        })
    }

    /// Range of output columns `ox` for which the input column `ox*s + kx - left`
    /// lies inside `[0, w)`.
    #[inline]
    fn ox_range(&self, kx: usize) -> (usize, usize) {
        let s = self.stride;
        let l = self.pad.left;
        // ox*s + kx >= l
        let lo = if kx >= l { 0 } else { (l - kx).div_ceil(s) };
        // ox*s + kx - l <= w - 1
        let hi_num = self.w - 1 + l;
        let hi = if hi_num < kx {
            return (0, 0);
        } else {
            ((hi_num - kx) / s + 1).min(self.wo)
        };
        (lo.min(hi), hi)
    }

    /// Input row for output row `oy` and kernel row `ky`, if inside the input.
    #[inline]
    fn in_row(&self, oy: usize, ky: usize) -> Option<usize> {
        let r = oy * self.stride + ky;
        if r < self.pad.top || r - self.pad.top >= self.h {
            None
        } else {
            Some(r - self.pad.top)
        }
    }
}

impl Geom {
    /// [`Geom::ox_range`] for every kernel column, computed once per op.
    fn ranges(&self) -> Vec<(usize, usize)> {
        (0..self.kw).map(|kx| self.ox_range(kx)).collect()
    }
}

/// How many `(n, c)` planes one parallel task handles: enough that a task is worth scheduling
/// (small planes deep in the network are a handful of values each), few enough that every
/// thread gets several tasks.
fn planes_per_task(plane_len: usize, planes: usize) -> usize {
    const MIN_TASK_VALUES: usize = 4096;
    let by_work = MIN_TASK_VALUES.div_ceil(plane_len.max(1));
    let by_balance = (planes / (4 * rayon::current_num_threads().max(1))).max(1);
    by_work.min(by_balance).max(1)
}

/// Forward of one plane: `out` is `ho*wo`, `inp` is `h*w`, `k` is `kh*kw`.
#[multiversion(targets = "simd")]
fn fwd_plane(g: &Geom, ranges: &[(usize, usize)], inp: &[f32], k: &[f32], out: &mut [f32]) {
    let s = g.stride;
    for oy in 0..g.ho {
        let orow = &mut out[oy * g.wo..(oy + 1) * g.wo];
        orow.fill(0.0);
        for ky in 0..g.kh {
            let Some(iy) = g.in_row(oy, ky) else { continue };
            let irow = &inp[iy * g.w..(iy + 1) * g.w];
            for kx in 0..g.kw {
                let wv = k[ky * g.kw + kx];
                let (lo, hi) = ranges[kx];
                if lo >= hi {
                    continue;
                }
                // input column = ox*s + kx - left
                let base = lo * s + kx - g.pad.left;
                if s == 1 {
                    let src = &irow[base..base + (hi - lo)];
                    for (o, &i) in orow[lo..hi].iter_mut().zip(src) {
                        *o += wv * i;
                    }
                } else {
                    for (j, o) in orow[lo..hi].iter_mut().enumerate() {
                        *o += wv * irow[base + j * s];
                    }
                }
            }
        }
    }
}

/// Input gradient of one plane: `gin` is `h*w`, `gout` is `ho*wo`.
#[multiversion(targets = "simd")]
fn bwd_input_plane(g: &Geom, ranges: &[(usize, usize)], gout: &[f32], k: &[f32], gin: &mut [f32]) {
    let s = g.stride;
    gin.fill(0.0);
    for oy in 0..g.ho {
        let grow = &gout[oy * g.wo..(oy + 1) * g.wo];
        for ky in 0..g.kh {
            let Some(iy) = g.in_row(oy, ky) else { continue };
            let irow = &mut gin[iy * g.w..(iy + 1) * g.w];
            for kx in 0..g.kw {
                let wv = k[ky * g.kw + kx];
                let (lo, hi) = ranges[kx];
                if lo >= hi {
                    continue;
                }
                let base = lo * s + kx - g.pad.left;
                if s == 1 {
                    let dst = &mut irow[base..base + (hi - lo)];
                    for (i, &o) in dst.iter_mut().zip(&grow[lo..hi]) {
                        *i += wv * o;
                    }
                } else {
                    for (j, &o) in grow[lo..hi].iter().enumerate() {
                        irow[base + j * s] += wv * o;
                    }
                }
            }
        }
    }
}

/// Weight-gradient contribution of one plane, accumulated into `acc` (`kh*kw`).
#[multiversion(targets = "simd")]
fn bwd_weight_plane(
    g: &Geom,
    ranges: &[(usize, usize)],
    inp: &[f32],
    gout: &[f32],
    acc: &mut [f64],
) {
    let s = g.stride;
    for oy in 0..g.ho {
        let grow = &gout[oy * g.wo..(oy + 1) * g.wo];
        for ky in 0..g.kh {
            let Some(iy) = g.in_row(oy, ky) else { continue };
            let irow = &inp[iy * g.w..(iy + 1) * g.w];
            for kx in 0..g.kw {
                let (lo, hi) = ranges[kx];
                if lo >= hi {
                    continue;
                }
                let base = lo * s + kx - g.pad.left;
                let mut sum = 0f32;
                if s == 1 {
                    let src = &irow[base..base + (hi - lo)];
                    // several partial sums for vectorisation and accuracy
                    let mut p = [0f32; 8];
                    let gch = grow[lo..hi].chunks_exact(8);
                    let ich = src.chunks_exact(8);
                    let (gr, ir) = (gch.remainder(), ich.remainder());
                    for (a, b) in gch.zip(ich) {
                        for t in 0..8 {
                            p[t] += a[t] * b[t];
                        }
                    }
                    for (a, b) in gr.iter().zip(ir) {
                        sum += a * b;
                    }
                    sum += p.iter().sum::<f32>();
                } else {
                    for (j, &o) in grow[lo..hi].iter().enumerate() {
                        sum += o * irow[base + j * s];
                    }
                }
                acc[ky * g.kw + kx] += sum as f64;
            }
        }
    }
}

fn contiguous_f32<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    crate::storage::contiguous_f32(s, l, "depthwise_conv2d", what)
}

fn dims4(l: &Layout, what: &str) -> Result<(usize, usize, usize, usize)> {
    match l.shape().dims() {
        &[a, b, c, d] => Ok((a, b, c, d)),
        d => candle_core::bail!("depthwise_conv2d: {what} must be 4-D, got {d:?}"),
    }
}

/// The forward op: `input.apply_op2(weight, DepthwiseConv2d)`.
#[derive(Debug, Clone, Copy)]
pub struct DepthwiseConv2d {
    /// Stride (same in both directions).
    pub stride: usize,
    /// Zero padding.
    pub padding: Padding2d,
    /// Whether backward computes the weight gradient (false when the weight is a
    /// constant, decided when the op is built).
    pub weight_grad: bool,
    /// Whether backward computes the input gradient.
    pub input_grad: bool,
}

impl DepthwiseConv2d {
    fn geom(&self, l1: &Layout, l2: &Layout) -> Result<Geom> {
        let (n, c, h, w) = dims4(l1, "input")?;
        let (co, one, kh, kw) = dims4(l2, "weight")?;
        if co != c || one != 1 {
            candle_core::bail!(
                "depthwise_conv2d: weight {:?} does not match input channels {c}",
                l2.shape()
            )
        }
        Geom::new((n, c, h, w), (kh, kw), self.stride, self.padding)
    }
}

impl CustomOp2 for DepthwiseConv2d {
    fn name(&self) -> &'static str {
        "depthwise-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.geom(l1, l2)?;
        let inp = contiguous_f32(s1, l1, "input")?;
        let k = contiguous_f32(s2, l2, "weight")?;
        let out = forward_cpu(&g, inp, k, None);
        Ok((CpuStorage::F32(out), Shape::from((g.n, g.c, g.ho, g.wo))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let g = self.geom(l1, l2)?;
        cuda::forward(&g, (s1, l1), (s2, l2))
    }

    fn bwd(
        &self,
        arg1: &Tensor,
        arg2: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (n, c, h, w) = arg1.dims4()?;
        let (_, _, kh, kw) = arg2.dims4()?;
        let geom = Geom::new((n, c, h, w), (kh, kw), self.stride, self.padding)?;
        let grad = grad_res.contiguous()?;
        let gin = if self.input_grad && arg1.track_op() {
            Some(grad.apply_op2_no_bwd(&arg2.contiguous()?, &DepthwiseBwdInput { geom })?)
        } else {
            None
        };
        let gw = if self.weight_grad && arg2.track_op() {
            Some(
                arg1.contiguous()?
                    .apply_op2_no_bwd(&grad, &DepthwiseBwdWeight { geom })?,
            )
        } else {
            None
        };
        Ok((gin, gw))
    }
}

/// The forward on the CPU: `(N, C, ho, wo)` values; with `epi`, each plane goes through it
/// right after it is written (in cache).
fn forward_cpu(g: &Geom, inp: &[f32], k: &[f32], epi: Option<&Epilogue<'_>>) -> Vec<f32> {
    let (n, c, h, w, kh, kw) = (g.n, g.c, g.h, g.w, g.kh, g.kw);
    if small::applies(g) {
        let mut out = small::forward(g, inp, k);
        if let Some(e) = epi {
            e.apply_all(&mut out);
        }
        return out;
    }
    let plane_out = g.ho * g.wo;
    let mut out = vec![0f32; n * c * plane_out];
    let ranges = g.ranges();
    let group = planes_per_task(plane_out.max(h * w), n * c);
    out.par_chunks_mut((plane_out * group).max(1))
        .enumerate()
        .for_each(|(task, os)| {
            for (i, o) in os.chunks_mut(plane_out).enumerate() {
                let plane = task * group + i;
                let ch = plane % c;
                fwd_plane(
                    g,
                    &ranges,
                    &inp[plane * h * w..(plane + 1) * h * w],
                    &k[ch * kh * kw..(ch + 1) * kh * kw],
                    o,
                );
                if let Some(e) = epi {
                    e.apply(plane, o);
                }
            }
        });
    out
}

/// [`depthwise_conv2d`] followed by eval-mode BN, its activation and a residual, each plane
/// passed through them right after it is written (see [`crate::batch_norm::epilogue`]):
/// inference only. `None` when this path does not apply (an operand tracked, not f32 on the
/// CPU, the reference implementation forced); the caller then runs the ops one by one.
/// Bit-identical to them.
pub(crate) fn depthwise_conv2d_eval(
    x: &Tensor,
    weight: &Tensor,
    stride: usize,
    padding: Padding2d,
    bn: &EvalBn<'_>,
) -> Result<Option<Tensor>> {
    if FORCE_REFERENCE.load(Ordering::Relaxed) || !bn.applies([x, weight]) {
        return Ok(None);
    }
    let (x, weight) = (x.contiguous()?, weight.contiguous()?);
    let op = DepthwiseConv2d {
        stride,
        padding,
        weight_grad: false,
        input_grad: false,
    };
    let g = op.geom(x.layout(), weight.layout())?;
    let out = bn.with_host((g.n, g.c, g.ho, g.wo), |epi| {
        with_host_f32(&x, "depthwise_conv2d", "input", |xs| {
            with_host_f32(&weight, "depthwise_conv2d", "weight", |ws| {
                Ok(forward_cpu(&g, xs, ws, Some(epi)))
            })
        })
    })?;
    Ok(Some(Tensor::from_vec(
        out,
        (g.n, g.c, g.ho, g.wo),
        x.device(),
    )?))
}

/// The input gradient on the CPU: `(N, C, h, w)` values from the output gradient `gout`.
fn backward_input_cpu(g: &Geom, gout: &[f32], k: &[f32]) -> Vec<f32> {
    if small::applies(g) {
        return small::backward_input(g, gout, k);
    }
    let (kh, kw) = (g.kh, g.kw);
    let plane_in = g.h * g.w;
    let mut gin = vec![0f32; g.n * g.c * plane_in];
    if gin.is_empty() {
        return gin;
    }
    let ranges = g.ranges();
    let group = planes_per_task(plane_in, g.n * g.c);
    gin.par_chunks_mut(plane_in * group)
        .enumerate()
        .for_each(|(task, gis)| {
            for (i, gi) in gis.chunks_mut(plane_in).enumerate() {
                let plane = task * group + i;
                let ch = plane % g.c;
                bwd_input_plane(
                    g,
                    &ranges,
                    &gout[plane * g.ho * g.wo..(plane + 1) * g.ho * g.wo],
                    &k[ch * kh * kw..(ch + 1) * kh * kw],
                    gi,
                );
            }
        });
    gin
}

/// One depthwise convolution's geometry with its CPU kernels on host values (for ops that
/// run the convolution inside their own pass, [`crate::conv_bn`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct DepthwisePlan(Geom);

impl DepthwisePlan {
    /// The plan for an input of `x` `(N, C, H, W)` and a weight of `w` `(C, 1, kh, kw)`;
    /// `None` while [`force_reference_impl`] is on.
    pub(crate) fn new(
        x: (usize, usize, usize, usize),
        w: (usize, usize, usize, usize),
        stride: usize,
        padding: Padding2d,
    ) -> Result<Option<Self>> {
        if FORCE_REFERENCE.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let (co, one, kh, kw) = w;
        if co != x.1 || one != 1 {
            candle_core::bail!(
                "depthwise_conv2d: weight {w:?} does not match input channels {}",
                x.1
            )
        }
        Ok(Some(Self(Geom::new(x, (kh, kw), stride, padding)?)))
    }

    /// The output's `(N, C, ho, wo)`.
    pub(crate) fn out_dims(&self) -> (usize, usize, usize, usize) {
        let g = &self.0;
        (g.n, g.c, g.ho, g.wo)
    }

    /// The forward, as [`depthwise_conv2d`] computes it.
    pub(crate) fn forward(&self, x: &[f32], k: &[f32]) -> Vec<f32> {
        forward_cpu(&self.0, x, k, None)
    }

    /// The input gradient, as [`depthwise_conv2d`]'s backward computes it.
    pub(crate) fn input_grad(&self, gout: &[f32], k: &[f32]) -> Vec<f32> {
        backward_input_cpu(&self.0, gout, k)
    }
}

/// Input gradient: `grad_out.apply_op2_no_bwd(weight, ..)`.
struct DepthwiseBwdInput {
    geom: Geom,
}

impl CustomOp2 for DepthwiseBwdInput {
    fn name(&self) -> &'static str {
        "depthwise-conv2d-bwd-input"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.geom;
        let gout = contiguous_f32(s1, l1, "grad")?;
        let k = contiguous_f32(s2, l2, "weight")?;
        let gin = backward_input_cpu(&g, gout, k);
        Ok((CpuStorage::F32(gin), Shape::from((g.n, g.c, g.h, g.w))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        cuda::backward_input(&self.geom, (s1, l1), (s2, l2))
    }
}

/// Weight gradient: `input.apply_op2_no_bwd(grad_out, ..)`.
struct DepthwiseBwdWeight {
    geom: Geom,
}

impl CustomOp2 for DepthwiseBwdWeight {
    fn name(&self) -> &'static str {
        "depthwise-conv2d-bwd-weight"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.geom;
        let inp = contiguous_f32(s1, l1, "input")?;
        let gout = contiguous_f32(s2, l2, "grad")?;
        if small::applies(&g) {
            let gw = small::backward_weight(&g, inp, gout);
            return Ok((CpuStorage::F32(gw), Shape::from((g.c, 1, g.kh, g.kw))));
        }
        let kk = g.kh * g.kw;
        let mut gw = vec![0f32; g.c * kk];
        let ranges = g.ranges();
        gw.par_chunks_mut(kk).enumerate().for_each(|(ch, gwc)| {
            let mut acc = vec![0f64; kk];
            for b in 0..g.n {
                let plane = b * g.c + ch;
                bwd_weight_plane(
                    &g,
                    &ranges,
                    &inp[plane * g.h * g.w..(plane + 1) * g.h * g.w],
                    &gout[plane * g.ho * g.wo..(plane + 1) * g.ho * g.wo],
                    &mut acc,
                );
            }
            for (d, a) in gwc.iter_mut().zip(acc) {
                *d = a as f32;
            }
        });
        Ok((CpuStorage::F32(gw), Shape::from((g.c, 1, g.kh, g.kw))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        cuda::backward_weight(&self.geom, (s1, l1), (s2, l2))
    }
}

/// Depthwise convolution of `x` `(N, C, H, W)` with `weight` `(C, 1, kh, kw)`.
///
/// f32 on CPU (and on CUDA with the `cuda` feature) runs the custom op; anything else
/// falls back to candle's grouped `conv2d`. The weight gradient is only computed when `weight` is tracked
/// (a [`candle_core::Var`] or derived from one).
pub fn depthwise_conv2d(
    x: &Tensor,
    weight: &Tensor,
    stride: usize,
    padding: Padding2d,
) -> Result<Tensor> {
    if (x.device().is_cpu() || (cfg!(feature = "cuda") && x.device().is_cuda()))
        && x.dtype() == DType::F32
        && weight.dtype() == DType::F32
        && !FORCE_REFERENCE.load(Ordering::Relaxed)
    {
        let op = DepthwiseConv2d {
            stride,
            padding,
            weight_grad: weight.track_op(),
            input_grad: x.track_op(),
        };
        x.contiguous()?.apply_op2(&weight.contiguous()?, op)
    } else {
        depthwise_conv2d_reference(x, weight, stride, padding)
    }
}

/// Depthwise convolution through candle's grouped `conv2d` (the slow reference path).
pub fn depthwise_conv2d_reference(
    x: &Tensor,
    weight: &Tensor,
    stride: usize,
    padding: Padding2d,
) -> Result<Tensor> {
    let (_, c, h, w) = x.dims4()?;
    let (_, _, kh, kw) = weight.dims4()?;
    let hp = h + padding.top + padding.bottom;
    let wp = w + padding.left + padding.right;
    let (rh, rw) = ((hp - kh) % stride, (wp - kw) % stride);
    if padding.is_symmetric() && rh == 0 && rw == 0 {
        return x.conv2d(weight, padding.top, stride, 1, c);
    }
    // Explicit padding, and the rows/columns no window reaches cropped: candle's
    // conv2d backward derives the output padding from the height only and fails
    // when height and width leave different remainders.
    let xp = x
        .pad_with_zeros(2, padding.top, padding.bottom)?
        .pad_with_zeros(3, padding.left, padding.right)?
        .narrow(2, 0, hp - rh)?
        .narrow(3, 0, wp - rw)?;
    xp.conv2d(weight, 0, stride, 1, c)
}
