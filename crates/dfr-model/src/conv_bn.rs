//! A 1×1 or depthwise convolution and the eval-mode BN (+ activation) after it as one op with
//! an input gradient: the path of attacks and explanations (frozen parameters, a tracked
//! input).
//!
//! Op by op, `conv → BN + activation` is two nodes of candle's graph, and the backward of
//! every node's output is accumulated: the gradient of the convolution's output `h` is
//! written into a fresh zero tensor and added to it (`GradStore::or_insert`, then `add`)
//! before the convolution's backward reads it: a memset, a read-read-write pass and two
//! allocations the size of `h`, for each of the two large tensors of every MBConv block (the
//! expansion's and the depthwise convolution's outputs). As one node, the BN's input gradient
//! is handed straight to the convolution's input-gradient kernel inside the op's backward.
//!
//! The op runs the very kernels of the op-by-op path in the same order (the convolution's
//! forward, [`crate::batch_norm::eval_bn_act`], then in the backward
//! [`crate::batch_norm::eval_bn_act_input_grad`] and the convolution's input gradient), so its
//! output and its input gradient equal that path's value for value; the tests check it.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

use crate::batch_norm::{eval_bn_act, eval_bn_act_input_grad, FusedAct};
use crate::depthwise::DepthwisePlan;
use crate::layers::Conv2d;
use crate::pointwise;
use crate::storage::{contiguous_f32, untracked_cpu_f32, with_host_f32};

/// The convolution of a [`ConvBnEval`].
#[derive(Debug, Clone, Copy)]
enum Kernel {
    /// 1×1, stride 1: `(O, C)` weights.
    Pointwise { o: usize, c: usize },
    /// Depthwise.
    Depthwise(DepthwisePlan),
}

/// `act(conv(x) · scale + shift)` with a frozen weight and BN; the forward leaves the
/// convolution's output for the activation's gradient.
struct ConvBnEval {
    kernel: Kernel,
    /// The convolution's weight (untracked, f32 on the CPU).
    weight: Tensor,
    scale: Vec<f32>,
    shift: Vec<f32>,
    act: Option<FusedAct>,
    /// Whether the backward will run (the input is tracked): only then is `h` kept.
    keep: bool,
    /// The convolution's output `h`, for the backward (with an activation only).
    conv_out: Mutex<Option<Arc<Vec<f32>>>>,
}

impl ConvBnEval {
    /// `(N, O, HW)` of the output for an input of `(n, c, h, w)`.
    fn out_dims(&self, (n, _, h, w): (usize, usize, usize, usize)) -> (usize, usize, usize, usize) {
        match self.kernel {
            Kernel::Pointwise { o, .. } => (n, o, h, w),
            Kernel::Depthwise(plan) => plan.out_dims(),
        }
    }
}

fn dims4(l: &Layout) -> Result<(usize, usize, usize, usize)> {
    match l.shape().dims() {
        &[n, c, h, w] => Ok((n, c, h, w)),
        d => candle_core::bail!("conv_bn: input must be NCHW, got {d:?}"),
    }
}

impl CustomOp1 for ConvBnEval {
    fn name(&self) -> &'static str {
        "conv-bn-eval"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s, l, "conv_bn", "input")?;
        let dims = dims4(l)?;
        let (n, o, ho, wo) = self.out_dims(dims);
        let h = with_host_f32(&self.weight, "conv_bn", "weight", |w| {
            Ok(match self.kernel {
                Kernel::Pointwise { o, c } => {
                    pointwise::cpu::forward(w, x, (n, o, c, dims.2 * dims.3), None)
                }
                Kernel::Depthwise(plan) => plan.forward(x, w),
            })
        })?;
        let y = eval_bn_act(&h, (o, ho * wo), (&self.scale, &self.shift), self.act);
        if self.keep && self.act.is_some() {
            *self.conv_out.lock().expect("conv_bn cache lock poisoned") = Some(Arc::new(h));
        }
        Ok((CpuStorage::F32(y), Shape::from((n, o, ho, wo))))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        if !x.track_op() {
            return Ok(None);
        }
        let h = if self.act.is_some() {
            let cached = self
                .conv_out
                .lock()
                .expect("conv_bn cache lock poisoned")
                .clone();
            match cached {
                Some(h) => Some(h),
                None => candle_core::bail!("conv_bn: backward before forward"),
            }
        } else {
            None
        };
        let (n, c, hi, wi) = x.dims4()?;
        let (_, o, ho, wo) = grad.dims4()?;
        let gx = with_host_f32(grad, "conv_bn", "gradient", |g| {
            let h = h.as_deref().map_or(&[][..], |v| &v[..]);
            let gh =
                eval_bn_act_input_grad(g, h, (o, ho * wo), (&self.scale, &self.shift), self.act);
            with_host_f32(&self.weight, "conv_bn", "weight", |w| {
                Ok(match self.kernel {
                    Kernel::Pointwise { o, c } => {
                        pointwise::cpu::input_grad(w, &gh, (n, o, c, hi * wi))
                    }
                    Kernel::Depthwise(plan) => plan.input_grad(&gh, w),
                })
            })
        })?;
        Ok(Some(Tensor::from_vec(gx, (n, c, hi, wi), x.device())?))
    }
}

/// `act(conv(x) · scale + shift)` as one op (see the module doc) for a 1×1 (stride 1) or
/// depthwise `conv` whose weight is frozen, with frozen eval-mode BN coefficients `scale` and
/// `shift` (shape (O)), on f32 CPU tensors. `None` where it does not apply (another
/// convolution, a tracked weight or coefficient, another device or dtype, a reference
/// implementation forced); the caller then runs the ops one by one.
pub(crate) fn conv_bn_eval(
    x: &Tensor,
    conv: &Conv2d,
    (scale, shift): (&Tensor, &Tensor),
    act: Option<FusedAct>,
) -> Result<Option<Tensor>> {
    let weight = conv.weight.tensor();
    let host = x.device().is_cpu() && x.dtype() == candle_core::DType::F32;
    if !host || ![&weight, scale, shift].into_iter().all(untracked_cpu_f32) {
        return Ok(None);
    }
    let (n, c, h, w) = x.dims4()?;
    let wd = weight.dims4()?;
    let kernel = if conv.depthwise {
        let plan = DepthwisePlan::new((n, c, h, w), wd, conv.stride, conv.padding_for(h, w))?;
        match plan {
            Some(p) => Kernel::Depthwise(p),
            None => return Ok(None),
        }
    } else if conv.kernel == 1 && conv.stride == 1 && !pointwise::reference_forced() {
        if (wd.1, wd.2, wd.3) != (c, 1, 1) {
            candle_core::bail!(
                "pointwise_conv: weight {wd:?} must be ({}, {c}, 1, 1) for an input of {c} channels",
                wd.0
            )
        }
        Kernel::Pointwise { o: wd.0, c }
    } else {
        return Ok(None);
    };
    let (scale, shift) = (scale.to_vec1::<f32>()?, shift.to_vec1::<f32>()?);
    let o = match kernel {
        Kernel::Pointwise { o, .. } => o,
        Kernel::Depthwise(_) => c,
    };
    if scale.len() != o || shift.len() != o {
        candle_core::bail!(
            "eval BN: scale ({}) and shift ({}) must have {o} elements, one per output channel",
            scale.len(),
            shift.len()
        )
    }
    let op = ConvBnEval {
        kernel,
        weight: weight.contiguous()?,
        scale,
        shift,
        act,
        keep: x.track_op(),
        conv_out: Mutex::new(None),
    };
    Ok(Some(x.contiguous()?.apply_op1(op)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch_norm::{channel_affine, channel_affine_act};
    use crate::config::PaddingMode;
    use crate::layers::{Init, Store};
    use candle_core::{DType, Device, Var};
    use rand::SeedableRng;

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    /// The op against the op-by-op composition (the convolution's op, then eval BN with its
    /// activation): output and input gradient equal value for value.
    #[test]
    fn one_op_equals_the_composition_in_values_and_input_gradient() {
        let dev = Device::Cpu;
        let mut store = Store::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        // (batch, in, out, size, kernel, stride, depthwise, padding)
        let cases = [
            (1, 5, 7, 9, 1, 1, false, PaddingMode::Symmetric),
            (3, 8, 4, 6, 1, 1, false, PaddingMode::Symmetric),
            (2, 6, 6, 11, 3, 2, true, PaddingMode::TfSame),
            (1, 4, 4, 7, 5, 1, true, PaddingMode::Symmetric),
            (3, 5, 5, 13, 5, 2, true, PaddingMode::Symmetric),
            (5, 3, 3, 3, 3, 1, true, PaddingMode::TfSame),
        ];
        for (i, (n, ci, co, size, k, s, dw, pad)) in cases.into_iter().enumerate() {
            let mut init = Init {
                store: &mut store,
                rng: &mut rng,
                device: &dev,
            };
            let conv = Conv2d::new(&mut init, &format!("c{i}"), (ci, co), k, s, dw, pad).unwrap();
            conv.weight.set_trainable(false);
            let scale = Tensor::randn(1f32, 0.5, co, &dev).unwrap();
            let shift = Tensor::randn(0f32, 1., co, &dev).unwrap();
            let x = Var::from_tensor(&Tensor::randn(0f32, 1., (n, ci, size, size), &dev).unwrap())
                .unwrap();
            let r =
                Tensor::randn(0f32, 1., (n, co, size.div_ceil(s), size.div_ceil(s)), &dev).unwrap();
            for act in [None, Some(FusedAct::Silu), Some(FusedAct::Relu6)] {
                let what = format!("case {i}, {act:?}");
                let one = conv_bn_eval(x.as_tensor(), &conv, (&scale, &shift), act)
                    .unwrap()
                    .expect("the op applies");
                let h = conv.forward(x.as_tensor()).unwrap();
                let composed = match act {
                    Some(a) => channel_affine_act(&h, &scale, &shift, a).unwrap(),
                    None => channel_affine(&h, &scale, &shift).unwrap(),
                };
                assert_eq!(one.dims(), composed.dims(), "{what}");
                assert_eq!(values(&one), values(&composed), "{what}: forward");
                let g1 = (&one * &r).unwrap().sum_all().unwrap().backward().unwrap();
                let g2 = (&composed * &r)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                let (a, b) = (
                    g1.get(x.as_tensor()).unwrap(),
                    g2.get(x.as_tensor()).unwrap(),
                );
                assert!(values(a).iter().any(|&v| v != 0.0), "{what}: zero gradient");
                assert_eq!(values(a), values(b), "{what}: input gradient");
            }
        }
    }

    #[test]
    fn a_tracked_weight_or_a_full_convolution_takes_the_op_by_op_path() {
        let dev = Device::Cpu;
        let mut store = Store::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut init = Init {
            store: &mut store,
            rng: &mut rng,
            device: &dev,
        };
        let pw = Conv2d::new(&mut init, "pw", (4, 6), 1, 1, false, PaddingMode::Symmetric).unwrap();
        let full = Conv2d::new(
            &mut init,
            "full",
            (4, 6),
            3,
            2,
            false,
            PaddingMode::Symmetric,
        )
        .unwrap();
        full.weight.set_trainable(false);
        let (scale, shift) = (
            Tensor::ones(6, DType::F32, &dev).unwrap(),
            Tensor::zeros(6, DType::F32, &dev).unwrap(),
        );
        let x = Tensor::randn(0f32, 1., (2, 4, 5, 5), &dev).unwrap();
        // pw's weight is still trainable
        assert!(conv_bn_eval(&x, &pw, (&scale, &shift), None)
            .unwrap()
            .is_none());
        assert!(conv_bn_eval(&x, &full, (&scale, &shift), None)
            .unwrap()
            .is_none());
        pw.weight.set_trainable(false);
        let bad = Tensor::ones(5, DType::F32, &dev).unwrap();
        let err = conv_bn_eval(&x, &pw, (&bad, &shift), None).unwrap_err();
        assert!(err.to_string().contains("one per output channel"), "{err}");
    }
}
