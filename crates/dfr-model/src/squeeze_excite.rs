//! Squeeze-excitation as one CPU custom op with a hand-written backward.
//!
//! `y = x · σ(W₂ · silu(W₁ · mean_hw(x) + b₁) + b₂)` over an f32 NCHW tensor. Composed from
//! candle ops this is about a dozen graph nodes, and its backward takes some eight passes
//! over the full-size activation (broadcasts, a broadcast-reduce, and candle's zero-then-add
//! accumulation of the two gradients `x` receives). Here the forward is two passes (the
//! spatial mean and the scaling) and the backward two: one reads `dy` and `x` for
//! `Σ_hw dy·x`, one writes `dx = dy·s + ∂pooled / HW`. The two small fully connected layers
//! run in between on vectors the forward kept, as matrix products over the whole batch
//! (`(N, C) × (C, R)`; one matrix-vector product per sample reads the weights N times).
//!
//! The weights travel packed, `[W₁ (R×C) row-major, b₁ (R)]` and `[W₂ (C×R), b₂ (C)]`, so
//! the op has three operands; [`squeeze_excite`] packs them (a differentiable `cat`, whose
//! backward hands each parameter its part).

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use multiversion::multiversion;
use rayon::prelude::*;

use crate::fast_math::{dot, sigmoid, silu, sum};
use crate::matmul::{matmul_into, View};
use gemm::Parallelism;

fn slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    crate::storage::contiguous_f32(s, l, "squeeze_excite", what)
}

/// What the forward computed on the small vectors, for the backward.
struct Cache {
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

/// The small layers on the pooled vectors: `(pre1, hidden, gate)`, as two matrix products
/// over the whole batch.
fn excite(d: Dims, pooled: &[f32], p1: &[f32], p2: &[f32]) -> Cache {
    let Dims { n, c, r, .. } = d;
    let (w1, b1) = p1.split_at(r * c);
    let (w2, b2) = p2.split_at(c * r);
    let mut pre1 = vec![0f32; n * r];
    // pooled (N×C) · W₁ᵀ (C×R)
    matmul_into(
        (n, r, c),
        &mut pre1,
        false,
        View::rows(pooled, c),
        View::transposed(w1, c),
        Parallelism::None,
    );
    let mut hidden = vec![0f32; n * r];
    add_bias_act(&mut pre1, &mut hidden, b1, silu);
    let mut gate = vec![0f32; n * c];
    // hidden (N×R) · W₂ᵀ (R×C)
    matmul_into(
        (n, c, r),
        &mut gate,
        false,
        View::rows(&hidden, r),
        View::transposed(w2, r),
        Parallelism::None,
    );
    let mut pre2 = std::mem::take(&mut gate);
    gate = vec![0f32; n * c];
    add_bias_act(&mut pre2, &mut gate, b2, sigmoid);
    Cache {
        pooled: pooled.to_vec(),
        pre1,
        hidden,
        gate,
    }
}

/// `z += bias` (per column of row-major rows of `bias.len()`), then `out = f(z)`.
#[multiversion(targets = "simd")]
fn add_bias_act(z: &mut [f32], out: &mut [f32], bias: &[f32], f: impl Fn(f32) -> f32 + Copy) {
    if bias.is_empty() {
        return;
    }
    for (zr, or) in z
        .chunks_exact_mut(bias.len())
        .zip(out.chunks_exact_mut(bias.len()))
    {
        for ((zv, o), &b) in zr.iter_mut().zip(or).zip(bias) {
            *zv += b;
            *o = f(*zv);
        }
    }
}

/// `y = x · k + add` over one plane.
#[multiversion(targets = "simd")]
fn scale_plane(y: &mut [f32], x: &[f32], k: f32, add: f32) {
    for (o, &v) in y.iter_mut().zip(x) {
        *o = v * k + add;
    }
}

/// `Σ a·b` ([`dot`] at the best SIMD level).
#[multiversion(targets = "simd")]
fn dot_plane(a: &[f32], b: &[f32]) -> f32 {
    dot(a, b)
}

/// `Σ a` ([`sum`] at the best SIMD level).
#[multiversion(targets = "simd")]
fn sum_plane(a: &[f32]) -> f32 {
    sum(a)
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
        let inv_hw = 1.0 / d.hw.max(1) as f32;
        let pooled: Vec<f32> = if d.hw == 0 {
            vec![0.0; d.n * d.c]
        } else {
            x.par_chunks(d.hw).map(|p| sum_plane(p) * inv_hw).collect()
        };
        let cache = excite(d, &pooled, p1, p2);
        let mut y = vec![0f32; x.len()];
        if d.hw > 0 {
            y.par_chunks_mut(d.hw)
                .zip(x.par_chunks(d.hw))
                .zip(cache.gate.par_iter())
                .for_each(|((yp, xp), &g)| scale_plane(yp, xp, g, 0.0));
        }
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

/// The small layers' backward as matrix products over the batch: the packed gradients of
/// `[W₁; b₁]` and `[W₂; b₂]`, and `∂pooled` (N, C).
fn excite_backward(
    k: &Cache,
    p1: &[f32],
    p2: &[f32],
    dpre2: &[f32],
    (n, c, r): (usize, usize, usize),
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (w1, w2) = (&p1[..r * c], &p2[..c * r]);
    let (mut d1, mut d2) = (vec![0f32; r * c + r], vec![0f32; c * r + c]);
    let none = Parallelism::None;
    // ∂W₂ (C×R) = ∂pre2ᵀ (C×N) · hidden (N×R); ∂b₂ = Σ_n ∂pre2
    matmul_into(
        (c, r, n),
        &mut d2[..c * r],
        false,
        View::transposed(dpre2, c),
        View::rows(&k.hidden, r),
        none,
    );
    column_sums(dpre2, &mut d2[c * r..]);
    // ∂hidden (N×R) = ∂pre2 (N×C) · W₂ (C×R), then through the SiLU
    let mut dpre1 = vec![0f32; n * r];
    matmul_into(
        (n, r, c),
        &mut dpre1,
        false,
        View::rows(dpre2, c),
        View::rows(w2, r),
        none,
    );
    for (g, &z) in dpre1.iter_mut().zip(&k.pre1) {
        *g *= crate::fast_math::silu_grad(z);
    }
    // ∂W₁ (R×C) = ∂pre1ᵀ (R×N) · pooled (N×C); ∂b₁ = Σ_n ∂pre1
    matmul_into(
        (r, c, n),
        &mut d1[..r * c],
        false,
        View::transposed(&dpre1, r),
        View::rows(&k.pooled, c),
        none,
    );
    column_sums(&dpre1, &mut d1[r * c..]);
    // ∂pooled (N×C) = ∂pre1 (N×R) · W₁ (R×C)
    let mut dpooled = vec![0f32; n * c];
    matmul_into(
        (n, c, r),
        &mut dpooled,
        false,
        View::rows(&dpre1, r),
        View::rows(w1, c),
        none,
    );
    (d1, d2, dpooled)
}

/// `out[j] = Σ_rows m[row][j]` for row-major rows of `out.len()`, rows in order.
fn column_sums(m: &[f32], out: &mut [f32]) {
    out.fill(0.0);
    if out.is_empty() {
        return;
    }
    for row in m.chunks_exact(out.len()) {
        for (o, &v) in out.iter_mut().zip(row) {
            *o += v;
        }
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
        let r = self.p1.len() / (c + 1);
        let (dy, x) = (slice(sg, lg, "gradient")?, slice(sx, lx, "input")?);
        let k = &self.cache;
        // ∂gate = Σ_hw dy·x, then through the sigmoid: ∂pre2
        let dpre2: Vec<f32> = if hw == 0 {
            vec![0.0; n * c]
        } else {
            dy.par_chunks(hw)
                .zip(x.par_chunks(hw))
                .zip(k.gate.par_iter())
                .map(|((gp, xp), &g)| dot_plane(gp, xp) * g * (1.0 - g))
                .collect()
        };
        let (d1, d2, dpooled) = excite_backward(k, &self.p1, &self.p2, &dpre2, (n, c, r));
        *self
            .params
            .lock()
            .expect("squeeze-excite gradient lock poisoned") = Some((d1, d2));
        if !self.want_x {
            return Ok((CpuStorage::F32(Vec::new()), Shape::from(0)));
        }
        let inv_hw = 1.0 / hw.max(1) as f32;
        let mut dx = vec![0f32; x.len()];
        if hw > 0 {
            dx.par_chunks_mut(hw)
                .zip(dy.par_chunks(hw))
                .zip(k.gate.par_iter().zip(dpooled.par_iter()))
                .for_each(|((op, gp), (&g, &dp))| scale_plane(op, gp, g, dp * inv_hw));
        }
        Ok((CpuStorage::F32(dx), lx.shape().clone()))
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
