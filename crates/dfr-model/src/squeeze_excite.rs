//! Squeeze-excitation as one CPU custom op with a hand-written backward.
//!
//! `y = x · σ(W₂ · silu(W₁ · mean_hw(x) + b₁) + b₂)` over an f32 NCHW tensor. Composed from
//! candle ops this is about a dozen graph nodes, and its backward takes some eight passes
//! over the full-size activation (broadcasts, a broadcast-reduce, and candle's zero-then-add
//! accumulation of the two gradients `x` receives). Here the forward is two passes (the
//! spatial mean and the scaling) and the backward two: one reads `dy` and `x` for
//! `Σ_hw dy·x`, one writes `dx = dy·s + ∂pooled / HW`. The two small fully connected layers
//! (`(N, C) × (C, R)`) run in between on vectors the forward kept.
//!
//! The weights travel packed, `[W₁ (R×C) row-major, b₁ (R)]` and `[W₂ (C×R), b₂ (C)]`, so
//! the op has three operands; [`squeeze_excite`] packs them (a differentiable `cat`, whose
//! backward hands each parameter its part).

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::fast_math::{dot, sigmoid, silu, sum};

fn slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    crate::storage::contiguous_f32(s, l, "squeeze_excite", what)
}

/// `dst += k · src`.
#[inline]
fn axpy(dst: &mut [f32], k: f32, src: &[f32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d += k * s;
    }
}

/// What the forward computed on the small vectors, for the backward.
pub(crate) struct Cache {
    /// `mean_hw(x)`, (N, C).
    pooled: Vec<f32>,
    /// `W₁ · pooled + b₁`, (N, R).
    pre1: Vec<f32>,
    /// `silu(pre1)`, (N, R).
    hidden: Vec<f32>,
    /// The gate `σ(W₂ · hidden + b₂)`, (N, C).
    gate: Vec<f32>,
}

/// Dimensions of one call: batch, channels, reduced channels, spatial size.
#[derive(Clone, Copy)]
struct Dims {
    n: usize,
    c: usize,
    r: usize,
    hw: usize,
}

impl Dims {
    fn of(lx: &Layout, l1: &Layout, l2: &Layout) -> Result<Self> {
        let (n, c, hw) = match lx.shape().dims() {
            &[n, c, h, w] => (n, c, h * w),
            d => candle_core::bail!("squeeze_excite: expected an NCHW input, got {d:?}"),
        };
        let p1 = l1.shape().elem_count();
        // p1 = R·C + R
        if c == 0 || !p1.is_multiple_of(c + 1) {
            candle_core::bail!("squeeze_excite: fc1 holds {p1} values, not R·({c} + 1)")
        }
        let r = p1 / (c + 1);
        if l2.shape().elem_count() != c * r + c {
            candle_core::bail!(
                "squeeze_excite: fc2 holds {} values, expected {c}·{r} + {c}",
                l2.shape().elem_count()
            )
        }
        Ok(Dims { n, c, r, hw })
    }
}

/// The fused op; the forward leaves its [`Cache`] for the backward.
struct SqueezeExciteOp {
    cache: Mutex<Option<Arc<Cache>>>,
}

/// The small layers on the pooled vectors: `(pre1, hidden, gate)`.
fn excite(d: Dims, pooled: &[f32], p1: &[f32], p2: &[f32]) -> Cache {
    let Dims { n, c, r, .. } = d;
    let (w1, b1) = p1.split_at(r * c);
    let (w2, b2) = p2.split_at(c * r);
    let mut pre1 = vec![0f32; n * r];
    let mut hidden = vec![0f32; n * r];
    let mut gate = vec![0f32; n * c];
    for s in 0..n {
        let pv = &pooled[s * c..(s + 1) * c];
        for j in 0..r {
            let z = dot(&w1[j * c..(j + 1) * c], pv) + b1[j];
            pre1[s * r + j] = z;
            hidden[s * r + j] = silu(z);
        }
        let hv = &hidden[s * r..(s + 1) * r];
        for ch in 0..c {
            gate[s * c + ch] = sigmoid(dot(&w2[ch * r..(ch + 1) * r], hv) + b2[ch]);
        }
    }
    Cache {
        pooled: pooled.to_vec(),
        pre1,
        hidden,
        gate,
    }
}

/// The forward on host values: `(y, cache)` for an input `x` of `d`'s shape and the packed
/// parameters `p1`, `p2` (see the module doc).
fn forward_host(d: Dims, x: &[f32], p1: &[f32], p2: &[f32]) -> (Vec<f32>, Cache) {
    let inv_hw = 1.0 / d.hw.max(1) as f32;
    let pooled: Vec<f32> = if d.hw == 0 {
        vec![0.0; d.n * d.c]
    } else {
        x.par_chunks(d.hw).map(|p| sum(p) * inv_hw).collect()
    };
    let cache = excite(d, &pooled, p1, p2);
    let mut y = vec![0f32; x.len()];
    if d.hw > 0 {
        y.par_chunks_mut(d.hw)
            .zip(x.par_chunks(d.hw))
            .zip(cache.gate.par_iter())
            .for_each(|((yp, xp), &g)| {
                for (o, &v) in yp.iter_mut().zip(xp) {
                    *o = v * g;
                }
            });
    }
    (y, cache)
}

impl CustomOp3 for SqueezeExciteOp {
    fn name(&self) -> &'static str {
        "squeeze-excite"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = Dims::of(lx, l1, l2)?;
        let x = slice(sx, lx, "input")?;
        let (p1, p2) = (slice(s1, l1, "fc1")?, slice(s2, l2, "fc2")?);
        let (y, cache) = forward_host(d, x, p1, p2);
        *self
            .cache
            .lock()
            .expect("squeeze-excite cache lock poisoned") = Some(Arc::new(cache));
        Ok((CpuStorage::F32(y), lx.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        p1: &Tensor,
        p2: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (want_x, want_p) = (x.track_op(), p1.track_op() || p2.track_op());
        if !want_x && !want_p {
            return Ok((None, None, None));
        }
        let Some(cache) = self
            .cache
            .lock()
            .expect("squeeze-excite cache lock poisoned")
            .clone()
        else {
            candle_core::bail!("squeeze-excite: backward before forward")
        };
        let (x, grad) = (x.contiguous()?, grad.contiguous()?);
        let op = SqueezeExciteBwd {
            cache,
            p1: p1.flatten_all()?.to_vec1()?,
            p2: p2.flatten_all()?.to_vec1()?,
            want_x,
            params: Mutex::new(None),
        };
        // One pass of Σ dy·x, the small layers' backward, then dx (empty when not wanted).
        let dx = grad.apply_op2_no_bwd(&x, &op)?;
        let (d1, d2) = op
            .params
            .lock()
            .expect("squeeze-excite gradient lock poisoned")
            .take()
            .expect("the backward op sets the parameter gradients");
        let dev = x.device();
        let dp1 = if p1.track_op() {
            Some(Tensor::from_vec(d1, p1.shape(), dev)?)
        } else {
            None
        };
        let dp2 = if p2.track_op() {
            Some(Tensor::from_vec(d2, p2.shape(), dev)?)
        } else {
            None
        };
        Ok((want_x.then_some(dx), dp1, dp2))
    }
}

/// The backward as one op over `(dy, x)`: returns `dx` (or an empty tensor when `x` is not
/// tracked) and leaves the packed parameter gradients in `params`.
struct SqueezeExciteBwd {
    cache: Arc<Cache>,
    p1: Vec<f32>,
    p2: Vec<f32>,
    want_x: bool,
    params: Mutex<Option<(Vec<f32>, Vec<f32>)>>,
}

impl candle_core::CustomOp2 for SqueezeExciteBwd {
    fn name(&self) -> &'static str {
        "squeeze-excite-bwd"
    }

    fn cpu_fwd(
        &self,
        sg: &CpuStorage,
        lg: &Layout,
        sx: &CpuStorage,
        lx: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, c, hw) = match lx.shape().dims() {
            &[n, c, h, w] => (n, c, h * w),
            d => candle_core::bail!("squeeze_excite: expected an NCHW input, got {d:?}"),
        };
        let d = Dims {
            n,
            c,
            r: self.p1.len() / (c + 1),
            hw,
        };
        let (dy, x) = (slice(sg, lg, "gradient")?, slice(sx, lx, "input")?);
        let (dx, d1, d2) = backward_host(d, &self.cache, dy, x, (&self.p1, &self.p2), self.want_x);
        *self
            .params
            .lock()
            .expect("squeeze-excite gradient lock poisoned") = Some((d1, d2));
        match dx {
            Some(dx) => Ok((CpuStorage::F32(dx), lx.shape().clone())),
            None => Ok((CpuStorage::F32(Vec::new()), Shape::from(0))),
        }
    }
}

/// The backward on host values: the input gradient (when `want_x`) and the packed
/// parameters' gradients `(d1, d2)`, for the output gradient `dy`, the forward's input `x`
/// and its `cache`. One pass of `Σ dy·x`, the small layers' backward, one pass for `dx`.
fn backward_host(
    d: Dims,
    k: &Cache,
    dy: &[f32],
    x: &[f32],
    p: (&[f32], &[f32]),
    want_x: bool,
) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>) {
    let (dpooled, d1, d2) = small_backward(d, k, dy, x, p);
    if !want_x {
        return (None, d1, d2);
    }
    let mut dx = vec![0f32; x.len()];
    input_grad_pass(d, k, &dpooled, &mut dx, Some(dy));
    (Some(dx), d1, d2)
}

/// `Σ_hw dy·x` and the small layers' backward: `(∂pooled, d1, d2)`.
fn small_backward(
    d: Dims,
    k: &Cache,
    dy: &[f32],
    x: &[f32],
    (p1, p2): (&[f32], &[f32]),
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let Dims { n, c, r, hw } = d;
    // ∂gate = Σ_hw dy·x, then through the sigmoid: ∂pre2
    let dpre2: Vec<f32> = if hw == 0 {
        vec![0.0; n * c]
    } else {
        dy.par_chunks(hw)
            .zip(x.par_chunks(hw))
            .zip(k.gate.par_iter())
            .map(|((gp, xp), &g)| dot(gp, xp) * g * (1.0 - g))
            .collect()
    };
    let (w1, w2) = (&p1[..r * c], &p2[..c * r]);
    let (mut d1, mut d2) = (vec![0f32; r * c + r], vec![0f32; c * r + c]);
    let mut dpooled = vec![0f32; n * c];
    let mut dh = vec![0f32; r];
    for s in 0..n {
        let hv = &k.hidden[s * r..(s + 1) * r];
        dh.fill(0.0);
        for ch in 0..c {
            let g = dpre2[s * c + ch];
            axpy(&mut dh, g, &w2[ch * r..(ch + 1) * r]);
            axpy(&mut d2[ch * r..(ch + 1) * r], g, hv);
            d2[c * r + ch] += g;
        }
        let pv = &k.pooled[s * c..(s + 1) * c];
        let dp = &mut dpooled[s * c..(s + 1) * c];
        for j in 0..r {
            let z = k.pre1[s * r + j];
            let g = dh[j] * crate::fast_math::silu_grad(z);
            axpy(&mut d1[j * c..(j + 1) * c], g, pv);
            d1[r * c + j] += g;
            axpy(dp, g, &w1[j * c..(j + 1) * c]);
        }
    }
    (dpooled, d1, d2)
}

/// The pass of the input gradient, `dx = dy · gate + ∂pooled / HW` (`dy` is `None` when
/// `dx` holds it already: the output gradient's own buffer).
fn input_grad_pass(d: Dims, k: &Cache, dpooled: &[f32], dx: &mut [f32], dy: Option<&[f32]>) {
    let hw = d.hw;
    if hw == 0 {
        return;
    }
    let inv_hw = 1.0 / hw as f32;
    let row = |op: &mut [f32], gp: Option<&[f32]>, g: f32, dp: f32| {
        let add = dp * inv_hw;
        match gp {
            Some(gp) => {
                for (o, &v) in op.iter_mut().zip(gp) {
                    *o = v * g + add;
                }
            }
            None => {
                for o in op.iter_mut() {
                    *o = *o * g + add;
                }
            }
        }
    };
    dx.par_chunks_mut(hw)
        .enumerate()
        .zip(k.gate.par_iter().zip(dpooled.par_iter()))
        .for_each(|((i, op), (&g, &dp))| row(op, dy.map(|dy| &dy[i * hw..(i + 1) * hw]), g, dp));
}

/// Squeeze-excitation with frozen parameters on host values for one input shape: the kernels
/// of [`squeeze_excite`]'s op, for ops that run SE inside their own pass
/// ([`crate::mbconv_eval`]).
pub(crate) struct FrozenSe {
    d: Dims,
    p1: Vec<f32>,
    p2: Vec<f32>,
}

/// What [`FrozenSe::forward`] leaves for [`FrozenSe::input_grad`].
pub(crate) struct SeSaved(Cache);

impl FrozenSe {
    /// The SE of an `(N, C, H, W)` input with `w1` of shape (R, C) or (R, C, 1, 1), `b1`
    /// (R), `w2` (C, R) or (C, R, 1, 1), `b2` (C); `None` when a parameter is tracked or not
    /// an f32 CPU tensor.
    pub(crate) fn new(
        (n, c, h, w): (usize, usize, usize, usize),
        (w1, b1): (&Tensor, &Tensor),
        (w2, b2): (&Tensor, &Tensor),
    ) -> Result<Option<Self>> {
        if ![w1, b1, w2, b2]
            .into_iter()
            .all(crate::storage::untracked_cpu_f32)
        {
            return Ok(None);
        }
        let r = w1.dim(0)?;
        let (n1, n2) = (w1.elem_count(), w2.elem_count());
        if n1 != r * c || b1.elem_count() != r || n2 != c * r || b2.elem_count() != c {
            candle_core::bail!(
                "squeeze_excite: fc1 {:?} + {:?} and fc2 {:?} + {:?} do not fit {c} channels",
                w1.dims(),
                b1.dims(),
                w2.dims(),
                b2.dims()
            )
        }
        let pack = |w: &Tensor, b: &Tensor| -> Result<Vec<f32>> {
            let mut v = w.flatten_all()?.to_vec1::<f32>()?;
            v.extend(b.flatten_all()?.to_vec1::<f32>()?);
            Ok(v)
        };
        Ok(Some(Self {
            d: Dims { n, c, r, hw: h * w },
            p1: pack(w1, b1)?,
            p2: pack(w2, b2)?,
        }))
    }

    /// `x · gate` and what the input gradient needs.
    pub(crate) fn forward(&self, x: &[f32]) -> (Vec<f32>, SeSaved) {
        let (y, cache) = forward_host(self.d, x, &self.p1, &self.p2);
        (y, SeSaved(cache))
    }

    /// The input gradient for the output gradient `dy` (computed in its buffer), the
    /// forward's input `x` and what it left.
    pub(crate) fn input_grad(&self, saved: &SeSaved, mut dy: Vec<f32>, x: &[f32]) -> Vec<f32> {
        let p = (&self.p1[..], &self.p2[..]);
        let (dpooled, _, _) = small_backward(self.d, &saved.0, &dy, x, p);
        input_grad_pass(self.d, &saved.0, &dpooled, &mut dy, None);
        dy
    }
}

/// Squeeze-excitation of an f32 NCHW CPU tensor in one op: `x · σ(fc2(silu(fc1(mean_hw x))))`
/// with `w1` of shape (R, C) or (R, C, 1, 1), `b1` (R), `w2` (C, R) or (C, R, 1, 1), `b2` (C).
/// Gradients flow to every tracked operand.
///
/// ```
/// use candle_core::{Device, Tensor, D};
/// use dfr_model::squeeze_excite::squeeze_excite;
/// let dev = Device::Cpu;
/// let x = Tensor::randn(0f32, 1., (2, 4, 3, 3), &dev)?;
/// let (w1, b1) = (Tensor::randn(0f32, 0.5, (2, 4), &dev)?, Tensor::randn(0f32, 0.5, 2, &dev)?);
/// let (w2, b2) = (Tensor::randn(0f32, 0.5, (4, 2), &dev)?, Tensor::randn(0f32, 0.5, 4, &dev)?);
/// let y = squeeze_excite(&x, &w1, &b1, &w2, &b2)?;
/// // the same as the composed ops
/// let pooled = x.mean_keepdim(D::Minus1)?.mean_keepdim(D::Minus2)?.reshape((2, 4))?;
/// let h = pooled.matmul(&w1.t()?)?.broadcast_add(&b1)?.silu()?;
/// let gate = candle_nn::ops::sigmoid(&h.matmul(&w2.t()?)?.broadcast_add(&b2)?)?;
/// let composed = x.broadcast_mul(&gate.reshape((2, 4, 1, 1))?)?;
/// let diff: f32 = (y - composed)?.abs()?.max_all()?.to_scalar()?;
/// assert!(diff < 1e-6);
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn squeeze_excite(
    x: &Tensor,
    w1: &Tensor,
    b1: &Tensor,
    w2: &Tensor,
    b2: &Tensor,
) -> Result<Tensor> {
    if !x.device().is_cpu() || x.dtype() != candle_core::DType::F32 {
        candle_core::bail!("squeeze_excite: the fused op takes f32 CPU tensors")
    }
    let p1 = Tensor::cat(&[w1.flatten_all()?, b1.flatten_all()?], 0)?;
    let p2 = Tensor::cat(&[w2.flatten_all()?, b2.flatten_all()?], 0)?;
    x.contiguous()?.apply_op3(
        &p1,
        &p2,
        SqueezeExciteOp {
            cache: Mutex::new(None),
        },
    )
}
