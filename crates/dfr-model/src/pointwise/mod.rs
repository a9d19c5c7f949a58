//! 1×1 convolution as a batched matrix product, with a backward that skips what is not
//! needed.
//!
//! candle's matmul backward computes the gradient of both operands whenever any part of the
//! graph is tracked. In an adversarial attack the weights are constants and only the input
//! gradient is wanted, yet every 1×1 convolution (most of EfficientNet's FLOPs) would also
//! compute a weight gradient as large as its forward pass. [`pointwise_conv`] is a custom op
//! whose forward is the backend's own matmul (CPU or CUDA) and whose backward computes the
//! weight gradient only when the weight is tracked, and the input gradient only when the input
//! is.
//!
//! On the CPU (f32) the forward and both gradients are direct gemm calls on strided views
//! ([`cpu`]): no transposed operand is copied and the weight gradient's sum over the batch
//! accumulates in place. Elsewhere the forward is the backend's matmul and the backward
//! candle's tensor ops.

pub(crate) mod cpu;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::batch_norm::epilogue::EvalBn;
use crate::storage::with_host_f32;

static FORCE_REFERENCE: AtomicBool = AtomicBool::new(false);

/// Makes [`pointwise_conv`] use plain candle ops (process-wide; for benchmarks and tests).
pub fn force_reference_impl(on: bool) {
    FORCE_REFERENCE.store(on, Ordering::Relaxed)
}

/// Whether [`force_reference_impl`] is on.
pub(crate) fn reference_forced() -> bool {
    FORCE_REFERENCE.load(Ordering::Relaxed)
}

/// `(O, C) × (N, C, HW) → (N, O, HW)`: the weight `(O, C)` broadcast over the batch.
#[derive(Debug, Clone, Copy)]
struct Pointwise {
    weight_grad: bool,
    input_grad: bool,
}

impl Pointwise {
    /// `(batch, m, n, k)` of the matmul and the broadcast weight layout.
    fn geometry(wl: &Layout, xl: &Layout) -> Result<((usize, usize, usize, usize), Layout)> {
        let (o, c) = match wl.shape().dims() {
            &[o, c] => (o, c),
            d => candle_core::bail!("pointwise_conv: weight must be (O, C), got {d:?}"),
        };
        let (n, cx, hw) = match xl.shape().dims() {
            &[n, cx, hw] => (n, cx, hw),
            d => candle_core::bail!("pointwise_conv: input must be (N, C, HW), got {d:?}"),
        };
        if c != cx {
            candle_core::bail!("pointwise_conv: weight has {c} input channels, input has {cx}")
        }
        let ws = wl.stride();
        let broadcast = Layout::new(
            Shape::from((n, o, c)),
            vec![0, ws[0], ws[1]],
            wl.start_offset(),
        );
        Ok(((n, o, hw, c), broadcast))
    }
}

impl CustomOp2 for Pointwise {
    fn name(&self) -> &'static str {
        "pointwise-conv"
    }

    fn cpu_fwd(
        &self,
        w: &CpuStorage,
        wl: &Layout,
        x: &CpuStorage,
        xl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (bmnk, wb) = Self::geometry(wl, xl)?;
        let (n, o, hw, c) = bmnk;
        let shape = Shape::from((n, o, hw));
        if let (CpuStorage::F32(_), CpuStorage::F32(_)) = (w, x) {
            let out = cpu::forward(
                f32_operand(w, wl, "weight")?,
                f32_operand(x, xl, "input")?,
                (n, o, c, hw),
                None,
            );
            return Ok((CpuStorage::F32(out), shape));
        }
        let out = w.matmul(x, bmnk, &wb, xl)?;
        Ok((out, shape))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        w: &candle_core::CudaStorage,
        wl: &Layout,
        x: &candle_core::CudaStorage,
        xl: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let (bmnk, wb) = Self::geometry(wl, xl)?;
        let out = w.matmul(x, bmnk, &wb, xl)?;
        Ok((out, Shape::from((bmnk.0, bmnk.1, bmnk.2))))
    }

    fn bwd(
        &self,
        w: &Tensor,
        x: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let fast = grad.device().is_cpu() && grad.dtype() == DType::F32;
        let gw = if self.weight_grad && w.track_op() {
            // Σ_n grad_n · x_nᵀ
            Some(if fast {
                grad.contiguous()?.apply_op2_no_bwd(x, &WeightGrad)?
            } else {
                grad.matmul(&x.t()?)?.sum(0)?
            })
        } else {
            None
        };
        let gx = if self.input_grad && x.track_op() {
            Some(if fast {
                w.apply_op2_no_bwd(&grad.contiguous()?, &InputGrad)?
            } else {
                w.t()?.broadcast_matmul(grad)?
            })
        } else {
            None
        };
        Ok((gw, gx))
    }
}

fn f32_operand<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    crate::storage::contiguous_f32(s, l, "pointwise_conv", what)
}

/// The three dimensions of a `(N, channels, HW)` operand of a gradient op.
fn dims3(l: &Layout, what: &str) -> Result<(usize, usize, usize)> {
    match l.shape().dims() {
        &[p, q, r] => Ok((p, q, r)),
        d => candle_core::bail!("pointwise_conv backward: {what} must be 3-D, got {d:?}"),
    }
}

/// The weight gradient `Σ_n grad_n · x_nᵀ` on the CPU: `(grad (N, O, HW), x (N, C, HW)) → (O, C)`.
struct WeightGrad;

impl CustomOp2 for WeightGrad {
    fn name(&self) -> &'static str {
        "pointwise-conv-weight-grad"
    }

    fn cpu_fwd(
        &self,
        g: &CpuStorage,
        gl: &Layout,
        x: &CpuStorage,
        xl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, o, hw) = dims3(gl, "grad")?;
        let (nx, c, hwx) = dims3(xl, "input")?;
        if (n, hw) != (nx, hwx) {
            candle_core::bail!(
                "pointwise_conv backward: grad {:?} vs input {:?}",
                gl.dims(),
                xl.dims()
            )
        }
        let gw = cpu::weight_grad(
            f32_operand(g, gl, "grad")?,
            f32_operand(x, xl, "input")?,
            (n, o, c, hw),
        );
        Ok((CpuStorage::F32(gw), Shape::from((o, c))))
    }
}

/// The input gradient `wᵀ · grad_n` on the CPU: `(w (O, C), grad (N, O, HW)) → (N, C, HW)`.
struct InputGrad;

impl CustomOp2 for InputGrad {
    fn name(&self) -> &'static str {
        "pointwise-conv-input-grad"
    }

    fn cpu_fwd(
        &self,
        w: &CpuStorage,
        wl: &Layout,
        g: &CpuStorage,
        gl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (o, c) = match wl.shape().dims() {
            &[o, c] => (o, c),
            d => candle_core::bail!("pointwise_conv backward: weight must be (O, C), got {d:?}"),
        };
        let (n, og, hw) = dims3(gl, "grad")?;
        if og != o {
            candle_core::bail!(
                "pointwise_conv backward: weight {:?} vs grad {:?}",
                wl.dims(),
                gl.dims()
            )
        }
        let gx = cpu::input_grad(
            f32_operand(w, wl, "weight")?,
            f32_operand(g, gl, "grad")?,
            (n, o, c, hw),
        );
        Ok((CpuStorage::F32(gx), Shape::from((n, c, hw))))
    }
}

/// 1×1 convolution of `x` `(N, C, H, W)` with `w` `(O, C, 1, 1)`.
pub fn pointwise_conv(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let (n, c, h, wd) = x.dims4()?;
    let o = w.dim(0)?;
    if FORCE_REFERENCE.load(Ordering::Relaxed) || !(x.device().is_cpu() || x.device().is_cuda()) {
        return pointwise_conv_reference(x, w);
    }
    let x3 = x.reshape((n, c, h * wd))?.contiguous()?;
    let w2 = w.reshape((o, c))?.contiguous()?;
    let op = Pointwise {
        weight_grad: w.track_op(),
        input_grad: x.track_op(),
    };
    w2.apply_op2(&x3, op)?.reshape((n, o, h, wd))
}

/// [`pointwise_conv`] followed by eval-mode BN, its activation and a residual, each sample's
/// output passed through them right after its product (see
/// [`crate::batch_norm::epilogue`]): inference only. `None` when this path does not apply (an
/// operand tracked, not f32 on the CPU, the reference implementation forced); the caller then
/// runs the ops one by one. Bit-identical to them.
pub(crate) fn pointwise_conv_eval(
    x: &Tensor,
    w: &Tensor,
    bn: &EvalBn<'_>,
) -> Result<Option<Tensor>> {
    if FORCE_REFERENCE.load(Ordering::Relaxed) || !bn.applies([x, w]) {
        return Ok(None);
    }
    let (n, c, h, wd) = x.dims4()?;
    let o = w.dim(0)?;
    if w.dims() != [o, c, 1, 1] {
        candle_core::bail!(
            "pointwise_conv: weight {:?} must be ({o}, {c}, 1, 1) for an input of {c} channels",
            w.dims()
        )
    }
    let out = bn.with_host((n, o, h, wd), |epi| {
        with_host_f32(x, "pointwise_conv", "input", |xs| {
            with_host_f32(w, "pointwise_conv", "weight", |ws| {
                Ok(cpu::forward(ws, xs, (n, o, c, h * wd), Some(epi)))
            })
        })
    })?;
    Ok(Some(Tensor::from_vec(out, (n, o, h, wd), x.device())?))
}

/// The same through candle's `broadcast_matmul` (both gradients always computed).
pub fn pointwise_conv_reference(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let (n, c, h, wd) = x.dims4()?;
    let o = w.dim(0)?;
    let x3 = x.reshape((n, c, h * wd))?;
    let w2 = w.reshape((o, c))?;
    w2.broadcast_matmul(&x3)?.reshape((n, o, h, wd))
}

#[cfg(test)]
mod tests {
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
    fn matches_broadcast_matmul_in_values_and_gradients() {
        let dev = Device::Cpu;
        for (n, c, o, h, w) in [
            (2, 3, 5, 4, 4),
            (1, 16, 8, 7, 5),
            (3, 8, 24, 1, 1),
            (5, 7, 3, 3, 5),
            (16, 40, 24, 2, 2),
        ] {
            let x =
                Var::from_tensor(&Tensor::randn(0f32, 1., (n, c, h, w), &dev).unwrap()).unwrap();
            let wt =
                Var::from_tensor(&Tensor::randn(0f32, 1., (o, c, 1, 1), &dev).unwrap()).unwrap();
            let a = pointwise_conv(x.as_tensor(), wt.as_tensor()).unwrap();
            let b = pointwise_conv_reference(x.as_tensor(), wt.as_tensor()).unwrap();
            assert!(max_diff(&a, &b) < 1e-5);
            let r = Tensor::randn(0f32, 1., a.dims(), &dev).unwrap();
            let ga = (a * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let gb = (b * &r).unwrap().sum_all().unwrap().backward().unwrap();
            for v in [&x, &wt] {
                let (p, q) = (
                    ga.get(v.as_tensor()).unwrap(),
                    gb.get(v.as_tensor()).unwrap(),
                );
                assert_eq!(p.dims(), q.dims());
                assert!(max_diff(p, q) < 1e-4, "{n} {c} {o} {h} {w}");
            }
        }
    }

    #[test]
    fn a_constant_weight_gets_no_gradient_and_a_strided_input_works() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1., (2, 6, 3, 5), &dev).unwrap()).unwrap();
        let w = Tensor::randn(0f32, 1., (4, 6, 1, 1), &dev).unwrap();
        // A non-contiguous input (a transposed view) is made contiguous first.
        let xt = x.as_tensor().transpose(2, 3).unwrap();
        let a = pointwise_conv(&xt, &w).unwrap();
        let b = pointwise_conv_reference(&xt, &w).unwrap();
        assert!(max_diff(&a, &b) < 1e-5);
        let g = a.sum_all().unwrap().backward().unwrap();
        assert!(g.get(x.as_tensor()).is_some());
        assert!(g.get(&w).is_none());
        let gref = b.sum_all().unwrap().backward().unwrap();
        assert!(
            max_diff(
                g.get(x.as_tensor()).unwrap(),
                gref.get(x.as_tensor()).unwrap()
            ) < 1e-4
        );
    }
}
