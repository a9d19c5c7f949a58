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
use rayon::prelude::*;

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
            .map(|ch| {
                let mut sum = 0f64;
                for b in 0..n {
                    let p = &x[(b * c + ch) * hw..(b * c + ch + 1) * hw];
                    sum += p.iter().map(|&v| v as f64).sum::<f64>();
                }
                let mean = sum / count;
                let mut sq = 0f64;
                for b in 0..n {
                    let p = &x[(b * c + ch) * hw..(b * c + ch + 1) * hw];
                    sq += p
                        .iter()
                        .map(|&v| {
                            let d = v as f64 - mean;
                            d * d
                        })
                        .sum::<f64>();
                }
                (mean, sq / count)
            })
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

/// `y = (x - mean) * invstd * gamma + beta` with fixed batch statistics.
struct Train {
    mean: Arc<Vec<f64>>,
    invstd: Arc<Vec<f64>>,
}

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
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(hw).enumerate().for_each(|(plane, yp)| {
            let ch = plane % c;
            let a = (self.invstd[ch] * g[ch] as f64) as f32;
            let sh = (b[ch] as f64 - self.mean[ch] * self.invstd[ch] * g[ch] as f64) as f32;
            let xp = &x[plane * hw..(plane + 1) * hw];
            for (o, &v) in yp.iter_mut().zip(xp) {
                *o = v * a + sh;
            }
        });
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
        cuda::train_forward((s1, l1), (s2, l2), (s3, l3), &self.mean, &self.invstd)
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let x = x.contiguous()?;
        // (2, C): sum(dy), sum(dy * xhat)
        let sums = x.apply_op2_no_bwd(
            &grad,
            &BwdSums {
                mean: self.mean.clone(),
                invstd: self.invstd.clone(),
            },
        )?;
        let gvals: Vec<f32> = gamma.flatten_all()?.to_vec1()?;
        let dx = x.apply_op2_no_bwd(
            &grad,
            &BwdInput {
                mean: self.mean.clone(),
                invstd: self.invstd.clone(),
                gamma: Arc::new(gvals),
                sums: Arc::new(sums.flatten_all()?.to_vec1::<f32>()?),
            },
        )?;
        let dgamma = sums.get(1)?;
        let dbeta = sums.get(0)?;
        Ok((Some(dx), Some(dgamma), Some(dbeta)))
    }
}

struct BwdSums {
    mean: Arc<Vec<f64>>,
    invstd: Arc<Vec<f64>>,
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
        let sums: Vec<(f64, f64)> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let (m, is) = (self.mean[ch], self.invstd[ch]);
                let (mut sdy, mut sdyx) = (0f64, 0f64);
                for b in 0..n {
                    let r = (b * c + ch) * hw..(b * c + ch + 1) * hw;
                    for (&g, &v) in dy[r.clone()].iter().zip(&x[r]) {
                        sdy += g as f64;
                        sdyx += g as f64 * (v as f64 - m);
                    }
                }
                (sdy, sdyx * is)
            })
            .collect();
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
        cuda::backward_sums((s1, l1), (s2, l2), &self.mean, &self.invstd)
    }
}

struct BwdInput {
    mean: Arc<Vec<f64>>,
    invstd: Arc<Vec<f64>>,
    gamma: Arc<Vec<f32>>,
    sums: Arc<Vec<f32>>,
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
        let mut dx = vec![0f32; x.len()];
        dx.par_chunks_mut(hw).enumerate().for_each(|(plane, dp)| {
            let ch = plane % c;
            let is = self.invstd[ch];
            let k = self.gamma[ch] as f64 * is;
            let mdy = self.sums[ch] as f64 / count;
            let mdyx = self.sums[c + ch] as f64 / count;
            let m = self.mean[ch];
            // dx = k * (dy - mdy - (x - m) * is * mdyx), in f64 per element
            let r = plane * hw..(plane + 1) * hw;
            for ((o, &g), &v) in dp.iter_mut().zip(&dy[r.clone()]).zip(&x[r]) {
                *o = (k * (g as f64 - mdy - (v as f64 - m) * is * mdyx)) as f32;
            }
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
    };
    let y = x.apply_op3(&gamma.contiguous()?, &beta.contiguous()?, op)?;
    Ok((y, stats.get(0)?, stats.get(1)?))
}

/// `y = f(x * scale[c] + shift[c])` over an NCHW tensor, in parallel over planes.
fn affine_map(
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
    (s3, l3): (&CpuStorage, &Layout),
    f: impl Fn(f32) -> f32 + Sync,
) -> Result<(CpuStorage, Shape)> {
    let (_, c, hw) = nchw(l1)?;
    let (x, a, b) = (slice(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?);
    let mut y = vec![0f32; x.len()];
    y.par_chunks_mut(hw).enumerate().for_each(|(plane, yp)| {
        let ch = plane % c;
        let (a, b) = (a[ch], b[ch]);
        for (o, &v) in yp.iter_mut().zip(&x[plane * hw..(plane + 1) * hw]) {
            *o = f(v * a + b);
        }
    });
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
        affine_map((s1, l1), (s2, l2), (s3, l3), |z| z)
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

static UNFUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes eval-mode BN + activation run as separate ops (process-wide; for benchmarks).
pub fn force_unfused(on: bool) {
    UNFUSED.store(on, std::sync::atomic::Ordering::Relaxed)
}

/// Whether [`force_unfused`] is on.
pub fn unfused() -> bool {
    UNFUSED.load(std::sync::atomic::Ordering::Relaxed)
}

/// An activation fused into the eval-mode BN pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FusedAct {
    /// `z · σ(z)`.
    Silu,
    /// `min(max(z, 0), 6)`.
    Relu6,
}

impl FusedAct {
    #[inline]
    fn f(self, z: f32) -> f32 {
        match self {
            FusedAct::Silu => z / (1.0 + (-z).exp()),
            // max/min, not clamp: NaN maps to 0 here, as it always has
            #[allow(clippy::manual_clamp)]
            FusedAct::Relu6 => z.max(0.0).min(6.0),
        }
    }

    #[inline]
    fn df(self, z: f32) -> f32 {
        match self {
            FusedAct::Silu => {
                let s = 1.0 / (1.0 + (-z).exp());
                s * (1.0 + z * (1.0 - s))
            }
            FusedAct::Relu6 => {
                if z > 0.0 && z < 6.0 {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }
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
        let act = self.0;
        affine_map((s1, l1), (s2, l2), (s3, l3), move |z| act.f(z))
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
        let (act, times) = (self.act, self.times_scale);
        let mut out = vec![0f32; g.len()];
        out.par_chunks_mut(hw).enumerate().for_each(|(plane, op)| {
            let ch = plane % c;
            let (a, b) = (ss[ch], ss[c + ch]);
            let m = if times { a } else { 1.0 };
            let r = plane * hw..(plane + 1) * hw;
            for ((o, &gv), &xv) in op.iter_mut().zip(&g[r.clone()]).zip(&x[r]) {
                *o = gv * act.df(xv * a + b) * m;
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
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
