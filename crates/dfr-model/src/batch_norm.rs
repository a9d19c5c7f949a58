//! Fused BatchNorm ops for f32 NCHW tensors: train mode and the eval-mode per-channel
//! affine map on the CPU and on CUDA (`batch_norm/batch_norm.cu`); the affine map fused
//! with its activation on the CPU.
//!
//! Train-mode forward: per-channel mean and biased variance accumulated in f64 (as PyTorch's
//! CPU kernel does), `y = (x - mean) * invstd * gamma + beta`. Backward uses the
//! closed form `dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat))`,
//! `dgamma = sum(dy * xhat)`, `dbeta = sum(dy)`, with f64 sums. Besides being much
//! faster than the composed candle graph, this keeps the gradient along directions
//! the normalisation cancels (a per-channel shift of the input) at the rounding
//! level of PyTorch, which matters for Adam's first step (`~lr * sign(g)`).

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use multiversion::multiversion;
use rayon::prelude::*;

use crate::fast_math::{self, sum_f64};

#[cfg(feature = "cuda")]
mod cuda;

fn slice<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    crate::storage::contiguous_f32(s, l, "batch_norm", "tensor")
}

fn nchw(l: &Layout) -> Result<(usize, usize, usize)> {
    match l.shape().dims() {
        &[n, c, h, w] => Ok((n, c, h * w)),
        d => candle_core::bail!("batch_norm: expected NCHW, got {d:?}"),
    }
}

/// Per-channel (mean, biased variance) in f64, shape (2, C) f32.
struct Stats;

impl CustomOp1 for Stats {
    fn name(&self) -> &'static str {
        "bn-stats"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, c, hw) = nchw(l)?;
        let x = slice(s, l)?;
        let count = (n * hw) as f64;
        let stats: Vec<(f64, f64)> = (0..c)
            .into_par_iter()
            .map(|ch| channel_stats(x, (n, c, hw), ch, count))
            .collect();
        let mut out = vec![0f32; 2 * c];
        for (ch, (m, v)) in stats.into_iter().enumerate() {
            out[ch] = m as f32;
            out[c + ch] = v as f32;
        }
        Ok((CpuStorage::F32(out), Shape::from((2, c))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &candle_core::CudaStorage,
        l: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        cuda::stats((s, l))
    }
}

/// `(mean, biased variance)` of channel `ch` of `(N, C, HW)` values, in f64.
#[multiversion(targets = "simd")]
fn channel_stats(
    x: &[f32],
    (n, c, hw): (usize, usize, usize),
    ch: usize,
    count: f64,
) -> (f64, f64) {
    let plane = |b: usize| &x[(b * c + ch) * hw..(b * c + ch + 1) * hw];
    let sum: f64 = (0..n).map(|b| sum_f64(plane(b), |v| v as f64)).sum();
    let mean = sum / count;
    let sq: f64 = (0..n)
        .map(|b| {
            sum_f64(plane(b), |v| {
                let d = v as f64 - mean;
                d * d
            })
        })
        .sum();
    (mean, sq / count)
}

/// `y = (x - mean) * invstd * gamma + beta` with fixed batch statistics, followed by `act`
/// when it is set (CPU only).
struct Train {
    mean: Arc<Vec<f64>>,
    invstd: Arc<Vec<f64>>,
    act: Option<FusedAct>,
}

/// The per-channel `(scale, shift)` of the train-mode map, `z = x * scale + shift`: one
/// rounding for the forward and for the backward's recomputation of `z`.
fn train_coeffs(mean: &[f64], invstd: &[f64], g: &[f32], b: &[f32]) -> (Vec<f32>, Vec<f32>) {
    (0..mean.len())
        .map(|ch| {
            let a = invstd[ch] * g[ch] as f64;
            (a as f32, (b[ch] as f64 - mean[ch] * a) as f32)
        })
        .unzip()
}

/// The activation of a fused train-mode op and the coefficients that recompute its input
/// `z = x · scale + shift`.
#[derive(Clone)]
struct ActInput {
    act: FusedAct,
    scale: Arc<Vec<f32>>,
    shift: Arc<Vec<f32>>,
}

/// An activation as a type, so that each kernel is compiled (and vectorised) per activation.
trait Act {
    /// Whether `f` is the identity (its pass can be skipped).
    const IDENTITY: bool = false;
    fn f(z: f32) -> f32;
    fn df(z: f32) -> f32;
}

/// No activation (plain BN).
struct Identity;
struct SiluAct;
struct Relu6Act;

impl Act for Identity {
    const IDENTITY: bool = true;
    #[inline(always)]
    fn f(z: f32) -> f32 {
        z
    }
    #[inline(always)]
    fn df(_: f32) -> f32 {
        1.0
    }
}

impl Act for SiluAct {
    #[inline(always)]
    fn f(z: f32) -> f32 {
        fast_math::silu(z)
    }
    #[inline(always)]
    fn df(z: f32) -> f32 {
        fast_math::silu_grad(z)
    }
}

impl Act for Relu6Act {
    #[inline(always)]
    fn f(z: f32) -> f32 {
        fast_math::relu6(z)
    }
    #[inline(always)]
    fn df(z: f32) -> f32 {
        fast_math::relu6_grad(z)
    }
}

/// Evaluates `$body` with the type `$a` standing for the activation `$act`
/// (`Option<FusedAct>`; `None` is [`Identity`]).
macro_rules! with_act {
    ($act:expr, $a:ident => $body:expr) => {
        match $act {
            None => {
                type $a = Identity;
                $body
            }
            Some(FusedAct::Silu) => {
                type $a = SiluAct;
                $body
            }
            Some(FusedAct::Relu6) => {
                type $a = Relu6Act;
                $body
            }
        }
    };
}

pub(crate) mod epilogue;

impl CustomOp3 for Train {
    fn name(&self) -> &'static str {
        "bn-train"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (_, c, hw) = nchw(l1)?;
        let x = slice(s1, l1)?;
        let g = slice(s2, l2)?;
        let b = slice(s3, l3)?;
        let (scale, shift) = train_coeffs(&self.mean, &self.invstd, g, b);
        let y = with_act!(self.act, A => map_planes::<A>(x, c, hw, &scale, &shift));
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        if self.act.is_some() {
            candle_core::bail!("bn-train: the fused activation runs on the CPU only")
        }
        cuda::train_forward((s1, l1), (s2, l2), (s3, l3), &self.mean, &self.invstd)
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let x = x.contiguous()?;
        let gvals: Vec<f32> = gamma.flatten_all()?.to_vec1()?;
        // With an activation, dz = dy · act'(z) is recomputed from x in both passes
        let act = match self.act {
            None => None,
            Some(act) => {
                let bvals: Vec<f32> = beta.flatten_all()?.to_vec1()?;
                let (scale, shift) = train_coeffs(&self.mean, &self.invstd, &gvals, &bvals);
                Some(ActInput {
                    act,
                    scale: Arc::new(scale),
                    shift: Arc::new(shift),
                })
            }
        };
        // (2, C): sum(dz), sum(dz * xhat)
        let sums = x.apply_op2_no_bwd(
            &grad,
            &BwdSums {
                mean: self.mean.clone(),
                invstd: self.invstd.clone(),
                act: act.clone(),
            },
        )?;
        let dx = x.apply_op2_no_bwd(
            &grad,
            &BwdInput {
                mean: self.mean.clone(),
                invstd: self.invstd.clone(),
                gamma: Arc::new(gvals),
                sums: Arc::new(sums.flatten_all()?.to_vec1::<f32>()?),
                act,
            },
        )?;
        let dgamma = sums.get(1)?;
        let dbeta = sums.get(0)?;
        Ok((Some(dx), Some(dgamma), Some(dbeta)))
    }
}

/// `(Σ dz, Σ dz·(x − m))` over channel `ch`, `dz = dy · A'(x·a + sh)`, in f64.
#[multiversion(targets = "simd")]
fn grad_sums<A: Act>(
    dy: &[f32],
    x: &[f32],
    (n, c, hw): (usize, usize, usize),
    ch: usize,
    (a, sh): (f32, f32),
    m: f64,
) -> (f64, f64) {
    let (mut sdy, mut sdyx) = (0f64, 0f64);
    for b in 0..n {
        let r = (b * c + ch) * hw..(b * c + ch + 1) * hw;
        let (p, q) = fast_math::sum2_f64(&dy[r.clone()], &x[r], |g, v| {
            let dz = (g * A::df(v * a + sh)) as f64;
            (dz, dz * (v as f64 - m))
        });
        sdy += p;
        sdyx += q;
    }
    (sdy, sdyx)
}

struct BwdSums {
    mean: Arc<Vec<f64>>,
    invstd: Arc<Vec<f64>>,
    act: Option<ActInput>,
}

impl CustomOp2 for BwdSums {
    fn name(&self) -> &'static str {
        "bn-bwd-sums"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, c, hw) = nchw(l1)?;
        let x = slice(s1, l1)?;
        let dy = slice(s2, l2)?;
        let act = self.act.as_ref();
        let sums: Vec<(f64, f64)> = with_act!(act.map(|a| a.act), A => {
            (0..c).into_par_iter().map(|ch| {
                let (m, is) = (self.mean[ch], self.invstd[ch]);
                let ax = act.map_or((1.0, 0.0), |a| (a.scale[ch], a.shift[ch]));
                let (sdy, sdyx) = grad_sums::<A>(dy, x, (n, c, hw), ch, ax, m);
                (sdy, sdyx * is)
            })
            .collect()
        });
        let mut out = vec![0f32; 2 * c];
        for (ch, (a, b)) in sums.into_iter().enumerate() {
            out[ch] = a as f32;
            out[c + ch] = b as f32;
        }
        Ok((CpuStorage::F32(out), Shape::from((2, c))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        if self.act.is_some() {
            candle_core::bail!("bn-bwd-sums: the fused activation runs on the CPU only")
        }
        cuda::backward_sums((s1, l1), (s2, l2), &self.mean, &self.invstd)
    }
}

/// One plane of the train-mode input gradient, `dx = k · (dz − mdy − (x − m) · kk)`.
#[multiversion(targets = "simd")]
fn input_grad_plane<A: Act>(
    dp: &mut [f32],
    dy: &[f32],
    x: &[f32],
    (a, sh): (f32, f32),
    (k, mdy, kk, m): (f64, f64, f64, f64),
) {
    for ((o, &g), &v) in dp.iter_mut().zip(dy).zip(x) {
        let dz = (g * A::df(v * a + sh)) as f64;
        *o = (k * (dz - mdy - (v as f64 - m) * kk)) as f32;
    }
}

struct BwdInput {
    mean: Arc<Vec<f64>>,
    invstd: Arc<Vec<f64>>,
    gamma: Arc<Vec<f32>>,
    sums: Arc<Vec<f32>>,
    act: Option<ActInput>,
}

impl CustomOp2 for BwdInput {
    fn name(&self) -> &'static str {
        "bn-bwd-input"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, c, hw) = nchw(l1)?;
        let x = slice(s1, l1)?;
        let dy = slice(s2, l2)?;
        let count = (n * hw) as f64;
        let act = self.act.as_ref();
        let mut dx = vec![0f32; x.len()];
        with_act!(act.map(|a| a.act), A => {
            dx.par_chunks_mut(hw.max(1)).enumerate().for_each(|(plane, dp)| {
                let ch = plane % c;
                let is = self.invstd[ch];
                // dx = k · (dz − mean(dz) − (x − m) · is · mean(dz · x̂)): dz in f32, the rest in
                // f64 per element, which keeps Σ dx (the per-channel shift the normalisation
                // cancels) at f64 rounding; Adam's first step moves by ~lr · sign(g) even there
                let k = self.gamma[ch] as f64 * is;
                let mdy = self.sums[ch] as f64 / count;
                let kk = is * self.sums[c + ch] as f64 / count;
                let m = self.mean[ch];
                let ax = act.map_or((1.0, 0.0), |a| (a.scale[ch], a.shift[ch]));
                let r = plane * hw..(plane + 1) * hw;
                input_grad_plane::<A>(dp, &dy[r.clone()], &x[r], ax, (k, mdy, kk, m));
            })
        });
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        if self.act.is_some() {
            candle_core::bail!("bn-bwd-input: the fused activation runs on the CPU only")
        }
        let args = cuda::BackwardInputArgs {
            mean: &self.mean,
            invstd: &self.invstd,
            gamma: &self.gamma,
            sums: &self.sums,
        };
        cuda::backward_input((s1, l1), (s2, l2), args)
    }
}

/// Train-mode batch norm of an f32 NCHW tensor (CPU or CUDA). Returns the output and
/// the batch (mean, biased variance), each of shape (C).
pub fn batch_norm_train(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
) -> Result<(Tensor, Tensor, Tensor)> {
    train_op(x, gamma, beta, eps, None)
}

/// Train-mode batch norm followed by `act` in one op of an f32 NCHW CPU tensor: the forward
/// is one statistics pass and one output pass, the backward two passes over `x` and the
/// output gradient (the composed graph takes about fifteen). Returns the output and the batch
/// (mean, biased variance), each of shape (C).
///
/// ```
/// use candle_core::{Device, Tensor};
/// use dfr_model::batch_norm::{batch_norm_train, batch_norm_train_act, FusedAct};
/// let x = Tensor::randn(0f32, 1., (2, 3, 4, 4), &Device::Cpu)?;
/// let (g, b) = (Tensor::ones(3, candle_core::DType::F32, &Device::Cpu)?, Tensor::zeros(3, candle_core::DType::F32, &Device::Cpu)?);
/// let (fused, mean, _var) = batch_norm_train_act(&x, &g, &b, 1e-5, FusedAct::Silu)?;
/// let composed = batch_norm_train(&x, &g, &b, 1e-5)?.0.silu()?;
/// let diff: f32 = (fused - composed)?.abs()?.max_all()?.to_scalar()?;
/// assert!(diff < 1e-6);
/// assert_eq!(mean.dims(), &[3]);
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn batch_norm_train_act(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    act: FusedAct,
) -> Result<(Tensor, Tensor, Tensor)> {
    if !x.device().is_cpu() {
        candle_core::bail!("batch_norm_train_act: the fused activation runs on the CPU only")
    }
    train_op(x, gamma, beta, eps, Some(act))
}

fn train_op(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    act: Option<FusedAct>,
) -> Result<(Tensor, Tensor, Tensor)> {
    let x = x.contiguous()?;
    let stats = x.apply_op1_no_bwd(&Stats)?;
    let v: Vec<f32> = stats.flatten_all()?.to_vec1()?;
    let c = v.len() / 2;
    let mean: Vec<f64> = v[..c].iter().map(|&m| m as f64).collect();
    let invstd: Vec<f64> = v[c..]
        .iter()
        .map(|&s| 1.0 / (s as f64 + eps).sqrt())
        .collect();
    let op = Train {
        mean: Arc::new(mean),
        invstd: Arc::new(invstd),
        act,
    };
    let y = x.apply_op3(&gamma.contiguous()?, &beta.contiguous()?, op)?;
    Ok((y, stats.get(0)?, stats.get(1)?))
}

/// Planes per parallel task of the element-wise kernels: about 4096 values, at least one plane.
fn planes_per_group(hw: usize) -> usize {
    4096usize.div_ceil(hw.max(1))
}

/// `y = A::f(x * scale[c] + shift[c])` over `(N, C, HW)` values, in parallel over groups of
/// planes: the affine map plane by plane, then the activation over the whole group in one
/// loop. Deep in the network the planes are 2×2 or 4×4, shorter than a vector: applied per
/// plane, the activation (an `exp` and a division) ran scalar there, over a third of the
/// time of this kernel in an eval forward at 64×16. Each value is computed as before,
/// `A::f(x·a + b)` rounded the same way.
fn map_planes<A: Act>(x: &[f32], c: usize, hw: usize, scale: &[f32], shift: &[f32]) -> Vec<f32> {
    let mut y = vec![0f32; x.len()];
    if hw == 0 {
        return y;
    }
    let group = planes_per_group(hw);
    y.par_chunks_mut(hw * group)
        .enumerate()
        .for_each(|(t, yc)| {
            for (i, yp) in yc.chunks_mut(hw).enumerate() {
                let plane = t * group + i;
                let ch = plane % c;
                affine_plane(yp, &x[plane * hw..(plane + 1) * hw], scale[ch], shift[ch]);
            }
            act_in_place::<A>(yc);
        });
    y
}

/// `y = x * a + b` over one plane.
#[multiversion(targets = "simd")]
fn affine_plane(y: &mut [f32], x: &[f32], a: f32, b: f32) {
    for (o, &v) in y.iter_mut().zip(x) {
        *o = v * a + b;
    }
}

/// `y = y * a + b` in place.
#[multiversion(targets = "simd")]
fn affine_in_place(y: &mut [f32], a: f32, b: f32) {
    for v in y.iter_mut() {
        *v = *v * a + b;
    }
}

/// `y = y * a` in place.
#[multiversion(targets = "simd")]
fn scale_in_place(y: &mut [f32], a: f32) {
    for v in y.iter_mut() {
        *v *= a;
    }
}

/// `y = A::f(y)` in place (nothing for [`Identity`]).
#[multiversion(targets = "simd")]
fn act_in_place<A: Act>(y: &mut [f32]) {
    if A::IDENTITY {
        return;
    }
    for v in y.iter_mut() {
        *v = A::f(*v);
    }
}

/// `y = A::f(y) + r` in place.
#[multiversion(targets = "simd")]
fn act_residual_in_place<A: Act>(y: &mut [f32], r: &[f32]) {
    for (v, &rv) in y.iter_mut().zip(r) {
        *v = A::f(*v) + rv;
    }
}

/// `y = act(x * scale[c] + shift[c])` over an NCHW tensor, in parallel over planes.
fn affine_map(
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
    (s3, l3): (&CpuStorage, &Layout),
    act: Option<FusedAct>,
) -> Result<(CpuStorage, Shape)> {
    let (_, c, hw) = nchw(l1)?;
    let (x, a, b) = (slice(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?);
    let y = with_act!(act, A => map_planes::<A>(x, c, hw, a, b));
    Ok((CpuStorage::F32(y), l1.shape().clone()))
}

/// `y = x * scale[c] + shift[c]` (eval-mode BN); gradients only for tracked operands.
struct ChannelAffine;

impl CustomOp3 for ChannelAffine {
    fn name(&self) -> &'static str {
        "channel-affine"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        affine_map((s1, l1), (s2, l2), (s3, l3), None)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        cuda::channel_affine((s1, l1), (s2, l2), (s3, l3))
    }

    fn bwd(
        &self,
        x: &Tensor,
        scale: &Tensor,
        shift: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let c = scale.elem_count();
        let dx = if x.track_op() {
            let z = scale.zeros_like()?;
            Some(
                grad.contiguous()?
                    .apply_op3_no_bwd(scale, &z, &ChannelAffine)?,
            )
        } else {
            None
        };
        let dscale = if scale.track_op() {
            Some((grad * x)?.sum((0, 2, 3))?.reshape(c)?)
        } else {
            None
        };
        let dshift = if shift.track_op() {
            Some(grad.sum((0, 2, 3))?.reshape(c)?)
        } else {
            None
        };
        Ok((dx, dscale, dshift))
    }
}

/// Whether the fused train-mode and eval-mode ops of this module run on `x` (f32 on the CPU
/// or CUDA); other devices and dtypes use the composed candle ops.
pub fn has_fused_ops(x: &Tensor) -> bool {
    (x.device().is_cpu() || x.device().is_cuda()) && x.dtype() == candle_core::DType::F32
}

/// Per-channel affine map of an NCHW f32 tensor (CPU or CUDA), `scale` and `shift` of
/// shape (C). Gradients are computed only for tracked operands.
pub fn channel_affine(x: &Tensor, scale: &Tensor, shift: &Tensor) -> Result<Tensor> {
    let c = x.dims4()?.1;
    if scale.elem_count() != c || shift.elem_count() != c {
        candle_core::bail!(
            "channel_affine: scale {:?} and shift {:?} must have {c} elements, one per channel of {:?}",
            scale.shape(),
            shift.shape(),
            x.shape()
        )
    }
    x.contiguous()?
        .apply_op3(&scale.contiguous()?, &shift.contiguous()?, ChannelAffine)
}

thread_local! {
    static UNFUSED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Makes the fused CPU ops (BN + activation in train and eval mode, squeeze-excitation) give
/// way to the composed candle ops in forwards built on this thread (for benchmarks and the
/// fused-vs-unfused tests; thread-local, so concurrent tests do not see it).
pub fn force_unfused(on: bool) {
    UNFUSED.with(|u| u.set(on))
}

/// Whether [`force_unfused`] is on for this thread.
pub fn unfused() -> bool {
    UNFUSED.with(|u| u.get())
}

/// Whether the fused CPU ops (BN + activation in train and eval mode, squeeze-excitation) run
/// on `x`: f32 on the CPU, unless [`force_unfused`] is on for this thread. The one place the
/// layers decide it.
pub fn fused_cpu_ops(x: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == candle_core::DType::F32 && !unfused()
}

/// An activation fused into the eval-mode BN pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FusedAct {
    /// `z · σ(z)`.
    Silu,
    /// `min(max(z, 0), 6)`.
    Relu6,
}

/// `y = act(x * scale[c] + shift[c])` in one pass (eval-mode BN followed by its activation).
struct AffineAct(FusedAct);

impl CustomOp3 for AffineAct {
    fn name(&self) -> &'static str {
        "channel-affine-act"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        affine_map((s1, l1), (s2, l2), (s3, l3), Some(self.0))
    }

    fn bwd(
        &self,
        x: &Tensor,
        scale: &Tensor,
        shift: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let params = scale.track_op() || shift.track_op();
        if !x.track_op() && !params {
            return Ok((None, None, None));
        }
        let (x, grad) = (x.contiguous()?, grad.contiguous()?);
        let ss = Tensor::cat(&[scale, shift], 0)?;
        // Without parameter gradients, one pass gives dx; otherwise dz = grad·act'(z) first.
        let out = grad.apply_op3_no_bwd(
            &x,
            &ss,
            &AffineActBwd {
                act: self.0,
                times_scale: !params,
            },
        )?;
        if !params {
            return Ok((Some(out), None, None));
        }
        // With dz = grad·act'(z), the rest is the plain affine map's backward.
        ChannelAffine.bwd(&x, scale, shift, res, &out)
    }
}

/// `grad · act'(x·scale + shift)` (times `scale` when `times_scale`): `(grad, x, [scale; shift])`.
struct AffineActBwd {
    act: FusedAct,
    times_scale: bool,
}

impl CustomOp3 for AffineActBwd {
    fn name(&self) -> &'static str {
        "channel-affine-act-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (_, c, hw) = nchw(l1)?;
        let (g, x, ss) = (slice(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?);
        let out = affine_act_grad(
            g,
            x,
            (c, hw),
            (&ss[..c], &ss[c..]),
            self.act,
            self.times_scale,
        );
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// `g · A'(x·scale + shift)` (times `scale` when `times_scale`) over `(N, C, HW)` values.
fn affine_act_grad(
    g: &[f32],
    x: &[f32],
    (c, hw): (usize, usize),
    (scale, shift): (&[f32], &[f32]),
    act: FusedAct,
    times_scale: bool,
) -> Vec<f32> {
    let mut out = vec![0f32; g.len()];
    if hw == 0 {
        return out;
    }
    // `g · A'(x·a + b) · a` in three steps over a group of planes (see `map_planes`):
    // `z = x·a + b` per plane, `g · A'(z)` over the group in one loop, `· a` per plane;
    // each value rounded as in one expression.
    let group = planes_per_group(hw);
    with_act!(Some(act), A => {
        out.par_chunks_mut(hw * group).enumerate().for_each(|(t, oc)| {
            let first = t * group;
            for (i, op) in oc.chunks_mut(hw).enumerate() {
                let (plane, ch) = (first + i, (first + i) % c);
                affine_plane(op, &x[plane * hw..(plane + 1) * hw], scale[ch], shift[ch]);
            }
            act_grad_in_place::<A>(oc, &g[first * hw..first * hw + oc.len()]);
            if times_scale {
                for (i, op) in oc.chunks_mut(hw).enumerate() {
                    scale_in_place(op, scale[(first + i) % c]);
                }
            }
        })
    });
    out
}

/// Eval-mode BN and its activation on host values: `act(h · scale[c] + shift[c])` over
/// `(N, C, HW)` values, the forward of [`channel_affine_act`] (or of [`channel_affine`]
/// without an activation), value for value.
pub(crate) fn eval_bn_act(
    h: &[f32],
    (c, hw): (usize, usize),
    (scale, shift): (&[f32], &[f32]),
    act: Option<FusedAct>,
) -> Vec<f32> {
    with_act!(act, A => map_planes::<A>(h, c, hw, scale, shift))
}

/// The input gradient of [`eval_bn_act`] with frozen `scale` and `shift`, in the gradient's
/// own buffer: `g ← g · act'(z) · scale` with `z = h · scale + shift` (`h` is not read without
/// an activation), value for value what the backward of [`channel_affine_act`] (or
/// [`channel_affine`]) gives; no allocation and no zeroing of a gradient-sized buffer.
pub(crate) fn eval_bn_act_input_grad_in_place(
    g: &mut [f32],
    h: &[f32],
    (c, hw): (usize, usize),
    (scale, shift): (&[f32], &[f32]),
    act: Option<FusedAct>,
) {
    if hw == 0 {
        return;
    }
    let group = planes_per_group(hw);
    let Some(act) = act else {
        // ChannelAffine's input gradient, `g · scale + 0`
        g.par_chunks_mut(hw * group)
            .enumerate()
            .for_each(|(t, gc)| {
                for (i, gp) in gc.chunks_mut(hw).enumerate() {
                    affine_in_place(gp, scale[(t * group + i) % c], 0.0);
                }
            });
        return;
    };
    // as `affine_act_grad`: `z = h·a + b` per plane into a scratch of one group, `g · A'(z)`
    // over the group, `· a` per plane
    with_act!(Some(act), A => {
        g.par_chunks_mut(hw * group).enumerate().for_each(|(t, gc)| {
            let first = t * group;
            let mut z = vec![0f32; gc.len()];
            for (i, zp) in z.chunks_mut(hw).enumerate() {
                let (plane, ch) = (first + i, (first + i) % c);
                affine_plane(zp, &h[plane * hw..(plane + 1) * hw], scale[ch], shift[ch]);
            }
            act_grad_from::<A>(gc, &z);
            for (i, gp) in gc.chunks_mut(hw).enumerate() {
                scale_in_place(gp, scale[(first + i) % c]);
            }
        })
    });
}

/// `g = g · A'(z)` in place, the same value as [`act_grad_in_place`].
#[multiversion(targets = "simd")]
fn act_grad_from<A: Act>(g: &mut [f32], z: &[f32]) {
    for (gv, &zv) in g.iter_mut().zip(z) {
        *gv *= A::df(zv);
    }
}

/// Eval-mode BN without an activation in place: `h ← h · scale[c] + shift[c]` over `(N, C,
/// HW)` values, value for value [`eval_bn_act`] with no activation.
pub(crate) fn eval_bn_in_place(
    h: &mut [f32],
    (c, hw): (usize, usize),
    (scale, shift): (&[f32], &[f32]),
) {
    if hw == 0 {
        return;
    }
    let group = planes_per_group(hw);
    h.par_chunks_mut(hw * group)
        .enumerate()
        .for_each(|(t, hc)| {
            for (i, hp) in hc.chunks_mut(hw).enumerate() {
                let ch = (t * group + i) % c;
                affine_in_place(hp, scale[ch], shift[ch]);
            }
        });
}

/// `z = g · A'(z)` in place (`z` holds the activation's input).
#[multiversion(targets = "simd")]
fn act_grad_in_place<A: Act>(z: &mut [f32], g: &[f32]) {
    for (o, &gv) in z.iter_mut().zip(g) {
        *o = gv * A::df(*o);
    }
}

/// `act(x * scale[c] + shift[c])` for an NCHW f32 CPU tensor in one pass, with a one-pass
/// input gradient; parameter gradients only for tracked operands.
pub fn channel_affine_act(
    x: &Tensor,
    scale: &Tensor,
    shift: &Tensor,
    act: FusedAct,
) -> Result<Tensor> {
    x.contiguous()?
        .apply_op3(&scale.contiguous()?, &shift.contiguous()?, AffineAct(act))
}

#[cfg(test)]
mod fused_tests {
    use super::*;
    use candle_core::{Device, Var};

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap()
    }

    #[test]
    fn fused_affine_activation_matches_the_composed_ops() {
        let dev = Device::Cpu;
        for act in [FusedAct::Silu, FusedAct::Relu6] {
            for track_params in [false, true] {
                let x = Var::from_tensor(
                    &(Tensor::randn(0f32, 3., (2, 3, 4, 5), &dev).unwrap() + 1.0).unwrap(),
                )
                .unwrap();
                let a0 = Tensor::new(&[0.5f32, -1.2, 2.0], &dev).unwrap();
                let b0 = Tensor::new(&[0.1f32, 0.3, -0.7], &dev).unwrap();
                let (a, b) = (
                    Var::from_tensor(&a0).unwrap(),
                    Var::from_tensor(&b0).unwrap(),
                );
                let (at, bt) = if track_params {
                    (a.as_tensor().clone(), b.as_tensor().clone())
                } else {
                    (a0.clone(), b0.clone())
                };
                let fused = channel_affine_act(x.as_tensor(), &at, &bt, act).unwrap();
                let z = channel_affine(x.as_tensor(), &at, &bt).unwrap();
                let composed = match act {
                    FusedAct::Silu => z.silu().unwrap(),
                    FusedAct::Relu6 => z.relu().unwrap().minimum(6f32).unwrap(),
                };
                assert!(max_diff(&fused, &composed) < 1e-6, "{act:?}");
                let r = Tensor::randn(0f32, 1., fused.dims(), &dev).unwrap();
                let g1 = (fused * &r).unwrap().sum_all().unwrap().backward().unwrap();
                let g2 = (composed * &r)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                let dx1 = g1.get(x.as_tensor()).unwrap();
                let dx2 = g2.get(x.as_tensor()).unwrap();
                assert!(max_diff(dx1, dx2) < 1e-5, "{act:?} dx");
                if track_params {
                    for v in [&a, &b] {
                        let (p, q) = (
                            g1.get(v.as_tensor()).unwrap(),
                            g2.get(v.as_tensor()).unwrap(),
                        );
                        assert!(max_diff(p, q) < 1e-4, "{act:?} params");
                    }
                } else {
                    assert!(g1.get(&at).is_none());
                }
            }
        }
    }
}
