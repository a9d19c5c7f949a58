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
//! [`crate::batch_norm::eval_bn_act_input_grad_in_place`] and the convolution's input gradient), so its
//! output and its input gradient equal that path's value for value; the tests check it.
//! [`ConvStage`] holds that pair of kernels on host values, for this op and for the whole
//! MBConv block's ([`crate::mbconv_eval`]).

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

use crate::batch_norm::{eval_bn_act, eval_bn_act_input_grad_in_place, eval_bn_in_place, FusedAct};
use crate::depthwise::DepthwisePlan;
use crate::layers::Conv2d;
use crate::pointwise;
use crate::storage::{contiguous_f32, untracked_cpu_f32, with_host_f32};

/// The convolution of a [`ConvStage`].
#[derive(Debug, Clone, Copy)]
enum Kernel {
    /// 1×1, stride 1: `(O, C)` weights.
    Pointwise { o: usize, c: usize },
    /// Depthwise.
    Depthwise(DepthwisePlan),
}

/// `act(conv(x) · scale + shift)` on host values for one input shape, with a frozen weight
/// and BN: the forward and the input gradient.
pub(crate) struct ConvStage {
    kernel: Kernel,
    /// The input's `(N, C, H, W)`.
    input: (usize, usize, usize, usize),
    /// The convolution's weight (untracked, f32 on the CPU, contiguous).
    weight: Tensor,
    scale: Vec<f32>,
    shift: Vec<f32>,
    act: Option<FusedAct>,
}

impl ConvStage {
    /// The stage for an input of `input` `(N, C, H, W)`: a 1×1 (stride 1) or depthwise
    /// `conv` whose weight is frozen, with frozen eval-mode BN coefficients `scale` and
    /// `shift` (shape (O)). `None` where it does not apply (another convolution, a tracked
    /// weight or coefficient, another device or dtype, a reference implementation forced).
    pub(crate) fn new(
        input: (usize, usize, usize, usize),
        conv: &Conv2d,
        (scale, shift): (&Tensor, &Tensor),
        act: Option<FusedAct>,
    ) -> Result<Option<Self>> {
        let weight = conv.weight.tensor();
        if ![&weight, scale, shift].into_iter().all(untracked_cpu_f32) {
            return Ok(None);
        }
        let (n, c, h, w) = input;
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
        Ok(Some(Self {
            kernel,
            input,
            weight: weight.contiguous()?,
            scale,
            shift,
            act,
        }))
    }

    /// The input's `(N, C, H, W)`.
    pub(crate) fn input(&self) -> (usize, usize, usize, usize) {
        self.input
    }

    /// The output's `(N, O, HO, WO)`.
    pub(crate) fn out_dims(&self) -> (usize, usize, usize, usize) {
        let (n, _, h, w) = self.input;
        match self.kernel {
            Kernel::Pointwise { o, .. } => (n, o, h, w),
            Kernel::Depthwise(plan) => plan.out_dims(),
        }
    }

    /// The forward of the input values `x`: the output and, with an activation, the
    /// convolution's output `h` the input gradient needs (`None` without one).
    pub(crate) fn forward(&self, x: &[f32]) -> Result<(Vec<f32>, Option<Vec<f32>>)> {
        let (n, c, h, w) = self.input;
        let (_, o, ho, wo) = self.out_dims();
        let conv_out = with_host_f32(&self.weight, "conv_bn", "weight", |k| {
            Ok(match self.kernel {
                Kernel::Pointwise { o, .. } => {
                    pointwise::cpu::forward(k, x, (n, o, c, h * w), None)
                }
                Kernel::Depthwise(plan) => plan.forward(x, k),
            })
        })?;
        let coeffs = (&self.scale[..], &self.shift[..]);
        if self.act.is_none() {
            // nothing to keep: BN in the convolution output's buffer
            let mut y = conv_out;
            eval_bn_in_place(&mut y, (o, ho * wo), coeffs);
            return Ok((y, None));
        }
        let y = eval_bn_act(&conv_out, (o, ho * wo), coeffs, self.act);
        Ok((y, Some(conv_out)))
    }

    /// The input gradient for the output gradient `g` (whose buffer the BN's gradient
    /// reuses), with the `h` [`ConvStage::forward`] returned.
    pub(crate) fn input_grad(&self, mut g: Vec<f32>, h: Option<&[f32]>) -> Result<Vec<f32>> {
        let (n, c, hi, wi) = self.input;
        let (_, o, ho, wo) = self.out_dims();
        if self.act.is_some() && h.is_none() {
            candle_core::bail!("conv_bn: the input gradient needs the convolution's output")
        }
        let coeffs = (&self.scale[..], &self.shift[..]);
        eval_bn_act_input_grad_in_place(&mut g, h.unwrap_or(&[]), (o, ho * wo), coeffs, self.act);
        with_host_f32(&self.weight, "conv_bn", "weight", |k| {
            Ok(match self.kernel {
                Kernel::Pointwise { o, c } => pointwise::cpu::input_grad(k, &g, (n, o, c, hi * wi)),
                Kernel::Depthwise(plan) => plan.input_grad(&g, k),
            })
        })
        .inspect(|gx| debug_assert_eq!(gx.len(), n * c * hi * wi))
    }
}

/// The shape of a 4-d layout, or an error naming `op`.
pub(crate) fn dims4(l: &Layout, op: &str) -> Result<(usize, usize, usize, usize)> {
    match l.shape().dims() {
        &[n, c, h, w] => Ok((n, c, h, w)),
        d => candle_core::bail!("{op}: input must be NCHW, got {d:?}"),
    }
}

/// [`ConvStage`] as a graph op; the forward leaves the convolution's output for the backward.
struct ConvBnEval {
    stage: ConvStage,
    /// Whether the backward will run (the input is tracked): only then is `h` kept.
    keep: bool,
    /// The convolution's output `h`, for the backward (with an activation only).
    conv_out: Mutex<Option<Arc<Vec<f32>>>>,
}

impl CustomOp1 for ConvBnEval {
    fn name(&self) -> &'static str {
        "conv-bn-eval"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s, l, "conv_bn", "input")?;
        if dims4(l, "conv_bn")? != self.stage.input {
            candle_core::bail!(
                "conv_bn: input {:?} is not the planned {:?}",
                l.dims(),
                self.stage.input
            )
        }
        let (y, h) = self.stage.forward(x)?;
        if let (true, Some(h)) = (self.keep, h) {
            *self.conv_out.lock().expect("conv_bn cache lock poisoned") = Some(Arc::new(h));
        }
        Ok((CpuStorage::F32(y), Shape::from(self.stage.out_dims())))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        if !x.track_op() {
            return Ok(None);
        }
        let h = if self.stage.act.is_some() {
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
        let g = with_host_f32(grad, "conv_bn", "gradient", |g| Ok(g.to_vec()))?;
        let gx = self.stage.input_grad(g, h.as_deref().map(|v| &v[..]))?;
        Ok(Some(Tensor::from_vec(gx, self.stage.input, x.device())?))
    }
}

/// The stage `stage` (see the module doc) on an f32 CPU input `x` of its shape as one op;
/// gradients flow to `x` only.
pub(crate) fn conv_bn_eval(x: &Tensor, stage: ConvStage) -> Result<Tensor> {
    if x.dims4()? != stage.input {
        candle_core::bail!(
            "conv_bn: the stage is for an input of {:?}, not {:?}",
            stage.input,
            x.dims()
        )
    }
    let op = ConvBnEval {
        stage,
        keep: x.track_op(),
        conv_out: Mutex::new(None),
    };
    x.contiguous()?.apply_op1(op)
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

    /// The op on `x`, or `None` where the stage does not apply.
    fn one_op(
        x: &Tensor,
        conv: &Conv2d,
        coeffs: (&Tensor, &Tensor),
        act: Option<FusedAct>,
    ) -> Result<Option<Tensor>> {
        match ConvStage::new(x.dims4()?, conv, coeffs, act)? {
            Some(stage) => conv_bn_eval(x, stage).map(Some),
            None => Ok(None),
        }
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
                let one = one_op(x.as_tensor(), &conv, (&scale, &shift), act)
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
        assert!(one_op(&x, &pw, (&scale, &shift), None).unwrap().is_none());
        assert!(one_op(&x, &full, (&scale, &shift), None).unwrap().is_none());
        pw.weight.set_trainable(false);
        let bad = Tensor::ones(5, DType::F32, &dev).unwrap();
        let err = one_op(&x, &pw, (&bad, &shift), None).unwrap_err();
        assert!(err.to_string().contains("one per output channel"), "{err}");
    }
}
