//! Eval-mode BatchNorm applied inside the convolution that produces its input (inference).
//!
//! Op by op, `conv → BN (eval) → activation [→ + residual]` is three or four passes over
//! memory: the convolution writes its output, the BN + activation pass reads it back and
//! writes a new tensor, and the residual add reads two tensors and writes a third. When
//! nothing is tracked (inference: no graph, so no intermediate is kept), the 1×1 and
//! depthwise kernels take an [`Epilogue`] and apply it in place to each sample's or plane's
//! output right after writing it, while it is in cache, and the separate passes, their
//! allocations and the residual add are gone. (By `perf` of an eval forward at 64×16 the
//! separate BN + activation pass was about a fifth of the samples; moved into the kernels it
//! still was: its cost is the activation's arithmetic, an `exp` and a division per value, not
//! the memory traffic. Running the activation over groups of planes, so that 2×2 and 4×4 maps
//! vectorise, took it to about 15 %. The eval forward gained 15–25 % in all.)
//!
//! The arithmetic is the op-by-op path's, element by element (`act(h·scale + shift)`, then
//! `+ residual`), so the results are bit-identical to it; the tests check that.

use candle_core::{Result, Tensor};
use rayon::prelude::*;

use crate::storage::{untracked_cpu_f32, with_host_f32};

use super::{
    act_in_place, act_residual_in_place, affine_in_place, planes_per_group, FusedAct, Identity,
    Relu6Act, SiluAct,
};

/// Eval-mode BN, its activation and an optional residual, as the layers hold them: what a
/// convolution's output passes through before it is handed on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EvalBn<'t> {
    /// Per-channel scale `γ / √(running_var + ε)`, shape (C).
    pub scale: &'t Tensor,
    /// Per-channel shift `β − running_mean · scale`, shape (C).
    pub shift: &'t Tensor,
    /// The activation after BN (`None`: the projection convolution).
    pub act: Option<FusedAct>,
    /// Added after the activation, shape of the output (the block's input).
    pub residual: Option<&'t Tensor>,
}

impl EvalBn<'_> {
    /// Whether these operands and the convolution's (`conv`: input and weight) can take the
    /// in-place path: f32 on the CPU, nothing tracked.
    pub(crate) fn applies(&self, conv: [&Tensor; 2]) -> bool {
        conv.into_iter()
            .chain([self.scale, self.shift])
            .chain(self.residual)
            .all(untracked_cpu_f32)
    }

    /// Runs `f` with the host view of these operands for an output of shape `out`
    /// (`(N, C, H, W)`); errors when the shapes do not fit.
    pub(crate) fn with_host<R>(
        &self,
        out: (usize, usize, usize, usize),
        f: impl FnOnce(&Epilogue<'_>) -> Result<R>,
    ) -> Result<R> {
        let (n, c, h, w) = out;
        let (scale, shift) = (self.scale.to_vec1::<f32>()?, self.shift.to_vec1::<f32>()?);
        if scale.len() != c || shift.len() != c {
            candle_core::bail!(
                "eval BN: scale {:?} and shift {:?} must have {c} elements, one per output channel",
                self.scale.shape(),
                self.shift.shape()
            )
        }
        let run = |residual: Option<&[f32]>| {
            f(&Epilogue {
                scale: &scale,
                shift: &shift,
                act: self.act,
                residual,
                plane: h * w,
            })
        };
        let Some(r) = self.residual else {
            return run(None);
        };
        if r.dims() != [n, c, h, w] {
            candle_core::bail!(
                "eval BN: residual {:?} must have the output's shape {:?}",
                r.dims(),
                [n, c, h, w]
            )
        }
        with_host_f32(r, "eval BN", "residual", |res| run(Some(res)))
    }
}

/// The host view of an [`EvalBn`]: applied by the convolution kernels to the planes they
/// have just written.
pub(crate) struct Epilogue<'a> {
    scale: &'a [f32],
    shift: &'a [f32],
    act: Option<FusedAct>,
    /// The residual's values, NCHW like the output.
    residual: Option<&'a [f32]>,
    /// Values per `(n, c)` plane.
    plane: usize,
}

impl Epilogue<'_> {
    /// Applies the epilogue in place to whole planes `first, first + 1, …` held one after
    /// the other in `out` (plane `p` is channel `p mod C` of sample `p div C`): the affine map
    /// plane by plane, then the activation (and the residual) over all of `out` in one loop,
    /// as `map_planes` does.
    pub(crate) fn apply(&self, first: usize, out: &mut [f32]) {
        if self.plane == 0 {
            return;
        }
        let c = self.scale.len();
        for (i, y) in out.chunks_mut(self.plane).enumerate() {
            let ch = (first + i) % c;
            affine_in_place(y, self.scale[ch], self.shift[ch]);
        }
        match self.residual {
            Some(r) => {
                let at = first * self.plane;
                let r = &r[at..at + out.len()];
                with_act!(self.act, A => act_residual_in_place::<A>(out, r))
            }
            None => with_act!(self.act, A => act_in_place::<A>(out)),
        }
    }

    /// [`Epilogue::apply`] to every plane of a whole output, in parallel over planes.
    pub(crate) fn apply_all(&self, out: &mut [f32]) {
        if self.plane == 0 {
            return;
        }
        let group = planes_per_group(self.plane);
        out.par_chunks_mut(self.plane * group)
            .enumerate()
            .for_each(|(t, chunk)| self.apply(t * group, chunk));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch_norm::{channel_affine, channel_affine_act};
    use crate::depthwise::{depthwise_conv2d, depthwise_conv2d_eval, Padding2d};
    use crate::pointwise::{pointwise_conv, pointwise_conv_eval};
    use candle_core::{DType, Device, Var};

    /// BN (+ activation) and the residual as separate ops, as the layers run them otherwise.
    fn op_by_op(h: &Tensor, bn: &EvalBn<'_>) -> Tensor {
        let y = match bn.act {
            Some(a) => channel_affine_act(h, bn.scale, bn.shift, a).unwrap(),
            None => channel_affine(h, bn.scale, bn.shift).unwrap(),
        };
        match bn.residual {
            Some(r) => (y + r).unwrap(),
            None => y,
        }
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    /// Runs `f` on every activation, with and without the residual `res`.
    fn each_variant(scale: &Tensor, shift: &Tensor, res: &Tensor, f: impl Fn(&EvalBn<'_>, String)) {
        for act in [None, Some(FusedAct::Silu), Some(FusedAct::Relu6)] {
            for with_res in [false, true] {
                let bn = EvalBn {
                    scale,
                    shift,
                    act,
                    residual: with_res.then_some(res),
                };
                f(&bn, format!("{act:?} residual {with_res}"));
            }
        }
    }

    #[test]
    fn pointwise_with_the_epilogue_is_bit_identical_to_the_ops_one_by_one() {
        let dev = Device::Cpu;
        // batch 1, odd sizes, maps below and above the batched-product threshold (8×8)
        for (n, c, o, h, w) in [
            (1, 5, 7, 3, 3),
            (3, 8, 12, 9, 9),
            (4, 6, 10, 5, 7),
            (2, 3, 4, 1, 1),
        ] {
            let x = Tensor::randn(0f32, 1., (n, c, h, w), &dev).unwrap();
            let wt = Tensor::randn(0f32, 1., (o, c, 1, 1), &dev).unwrap();
            let scale = Tensor::randn(1f32, 0.5, o, &dev).unwrap();
            let shift = Tensor::randn(0f32, 1., o, &dev).unwrap();
            let res = Tensor::randn(0f32, 1., (n, o, h, w), &dev).unwrap();
            each_variant(&scale, &shift, &res, |bn, what| {
                let fused = pointwise_conv_eval(&x, &wt, bn).unwrap().expect("applies");
                let expected = op_by_op(&pointwise_conv(&x, &wt).unwrap(), bn);
                assert_eq!(fused.dims(), expected.dims());
                let what = format!("{:?} {what}", (n, c, o, h, w));
                assert_eq!(values(&fused), values(&expected), "{what}");
            });
        }
    }

    #[test]
    fn depthwise_with_the_epilogue_is_bit_identical_to_the_ops_one_by_one() {
        let dev = Device::Cpu;
        // small maps (channels-last kernels) and larger ones (plane kernels), stride 2,
        // asymmetric padding, batch 1
        for (n, c, h, w, k, stride) in [
            (1, 5, 7, 7, 3, 1),
            (3, 4, 9, 6, 5, 2),
            (2, 3, 20, 19, 3, 1),
            (1, 6, 21, 18, 5, 2),
        ] {
            let x = Tensor::randn(0f32, 1., (n, c, h, w), &dev).unwrap();
            let wt = Tensor::randn(0f32, 1., (c, 1, k, k), &dev).unwrap();
            let pad = Padding2d::tf_same(h, w, k, k, stride);
            let y = depthwise_conv2d(&x, &wt, stride, pad).unwrap();
            let scale = Tensor::randn(1f32, 0.5, c, &dev).unwrap();
            let shift = Tensor::randn(0f32, 1., c, &dev).unwrap();
            let res = Tensor::randn(0f32, 1., y.dims(), &dev).unwrap();
            each_variant(&scale, &shift, &res, |bn, what| {
                let fused = depthwise_conv2d_eval(&x, &wt, stride, pad, bn)
                    .unwrap()
                    .expect("applies");
                let what = format!("{:?} {what}", (n, c, h, w, k, stride));
                assert_eq!(values(&fused), values(&op_by_op(&y, bn)), "{what}");
            });
        }
    }

    #[test]
    fn a_tracked_operand_or_a_wrong_shape_is_not_taken() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1., (2, 3, 4, 4), &dev).unwrap()).unwrap();
        let wt = Tensor::randn(0f32, 1., (5, 3, 1, 1), &dev).unwrap();
        let (scale, shift) = (
            Tensor::ones(5, DType::F32, &dev).unwrap(),
            Tensor::zeros(5, DType::F32, &dev).unwrap(),
        );
        let bn = EvalBn {
            scale: &scale,
            shift: &shift,
            act: Some(FusedAct::Silu),
            residual: None,
        };
        // a tracked input needs the graph: the caller runs the ops one by one
        assert!(pointwise_conv_eval(x.as_tensor(), &wt, &bn)
            .unwrap()
            .is_none());
        let dw = Tensor::randn(0f32, 1., (3, 1, 3, 3), &dev).unwrap();
        let pad = Padding2d::symmetric(1);
        assert!(depthwise_conv2d_eval(x.as_tensor(), &dw, 1, pad, &bn)
            .unwrap()
            .is_none());
        // a residual of another shape is an error naming it
        let bad = Tensor::zeros((2, 4, 4, 4), DType::F32, &dev).unwrap();
        let bn = EvalBn {
            residual: Some(&bad),
            ..bn
        };
        let err = pointwise_conv_eval(&x.as_tensor().detach(), &wt, &bn).unwrap_err();
        assert!(err.to_string().contains("residual"), "{err}");
    }
}
