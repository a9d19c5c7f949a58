//! A whole MBConv block in eval mode with frozen parameters as one op with an input gradient:
//! the path of attacks and explanations (a tracked input).
//!
//! With [`crate::conv_bn`] a block is still four or five nodes of candle's graph (expansion,
//! depthwise convolution, squeeze-excitation, projection, the residual add), and the backward
//! accumulates the gradient of every node's output: a fresh zero tensor, an add, two
//! allocations per node, three of them at the expanded width. As one node, each stage's input
//! gradient is handed straight to the stage before it, and only what the backward reads is
//! kept (the two convolutions' outputs before their BN, and the SE input), not every node's
//! input. The BN and SE gradients are computed in the buffer of the gradient they are
//! handed, and the projection's BN is applied in its convolution's output buffer: no
//! allocation (and no zeroing) for them.
//!
//! The op runs the kernels of the op-by-op path ([`ConvStage`], [`FrozenSe`]) in the same
//! order, so its output and its input gradient equal that path's value for value; the tests
//! check it, at block level here and at model level in `tests/fused.rs`.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::conv_bn::{dims4, ConvStage};
use crate::squeeze_excite::{FrozenSe, SeSaved};
use crate::storage::{contiguous_f32, with_host_f32};

/// The stages of one block for one input shape, each with frozen parameters.
pub(crate) struct MbConvPlan {
    /// The 1×1 expansion (absent for an expand ratio of 1).
    pub(crate) expand: Option<ConvStage>,
    /// The depthwise convolution.
    pub(crate) depthwise: ConvStage,
    /// Squeeze-excitation (absent in Lite models).
    pub(crate) se: Option<FrozenSe>,
    /// The 1×1 projection (no activation).
    pub(crate) project: ConvStage,
    /// Whether the block's input is added to the projection's output.
    pub(crate) residual: bool,
}

/// What the forward leaves for the backward.
struct Saved {
    /// The expansion's convolution output (before its BN).
    expand_h: Option<Vec<f32>>,
    /// The depthwise convolution's output (before its BN).
    depthwise_h: Option<Vec<f32>>,
    /// The SE input and what the SE forward left.
    se: Option<(Vec<f32>, SeSaved)>,
}

/// The block as a graph op.
struct MbConvEval {
    plan: MbConvPlan,
    input: (usize, usize, usize, usize),
    saved: Mutex<Option<Arc<Saved>>>,
}

/// `dst[i] += src[i]`, in parallel chunks.
fn add_into(dst: &mut [f32], src: &[f32]) {
    const CHUNK: usize = 1 << 14;
    dst.par_chunks_mut(CHUNK)
        .zip(src.par_chunks(CHUNK))
        .for_each(|(d, s)| {
            for (o, &v) in d.iter_mut().zip(s) {
                *o += v;
            }
        });
}

impl CustomOp1 for MbConvEval {
    fn name(&self) -> &'static str {
        "mbconv-eval"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s, l, "mbconv_eval", "input")?;
        if dims4(l, "mbconv_eval")? != self.input {
            candle_core::bail!(
                "mbconv_eval: input {:?} is not the planned {:?}",
                l.dims(),
                self.input
            )
        }
        let p = &self.plan;
        let (expanded, expand_h) = match &p.expand {
            Some(e) => {
                let (y, h) = e.forward(x)?;
                (Some(y), h)
            }
            None => (None, None),
        };
        let (a, depthwise_h) = p.depthwise.forward(expanded.as_deref().unwrap_or(x))?;
        drop(expanded);
        let (a, se) = match &p.se {
            Some(se) => {
                let (y, saved) = se.forward(&a);
                (y, Some((a, saved)))
            }
            None => (a, None),
        };
        let (mut y, _) = p.project.forward(&a)?;
        drop(a);
        if p.residual {
            add_into(&mut y, x);
        }
        *self.saved.lock().expect("mbconv_eval cache lock poisoned") = Some(Arc::new(Saved {
            expand_h,
            depthwise_h,
            se,
        }));
        Ok((CpuStorage::F32(y), Shape::from(p.project.out_dims())))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        if !x.track_op() {
            return Ok(None);
        }
        let saved = self
            .saved
            .lock()
            .expect("mbconv_eval cache lock poisoned")
            .clone();
        let Some(saved) = saved else {
            candle_core::bail!("mbconv_eval: backward before forward")
        };
        let p = &self.plan;
        let gx = with_host_f32(grad, "mbconv_eval", "gradient", |g| {
            // each stage's gradient is computed in the buffer of the one after it
            let mut ga = p.project.input_grad(g.to_vec(), None)?;
            if let (Some(se), Some((se_in, se_saved))) = (&p.se, &saved.se) {
                ga = se.input_grad(se_saved, ga, se_in);
            }
            ga = p.depthwise.input_grad(ga, saved.depthwise_h.as_deref())?;
            if let Some(e) = &p.expand {
                ga = e.input_grad(ga, saved.expand_h.as_deref())?;
            }
            if p.residual {
                add_into(&mut ga, g);
            }
            Ok(ga)
        })?;
        Ok(Some(Tensor::from_vec(gx, self.input, x.device())?))
    }
}

/// The block of `plan` on an f32 CPU input `x` of the plan's shape as one op (see the module
/// doc); gradients flow to `x` only.
pub(crate) fn mbconv_eval(x: &Tensor, plan: MbConvPlan) -> Result<Tensor> {
    let input = x.dims4()?;
    let first = plan.expand.as_ref().unwrap_or(&plan.depthwise);
    if first.input() != input {
        candle_core::bail!(
            "mbconv_eval: the plan is for an input of {:?}, not {input:?}",
            first.input()
        )
    }
    let expanded = plan.expand.as_ref().map_or(input, ConvStage::out_dims);
    let chained =
        plan.depthwise.input() == expanded && plan.project.input() == plan.depthwise.out_dims();
    if !chained {
        candle_core::bail!("mbconv_eval: the plan's stages do not chain")
    }
    if plan.residual && plan.project.out_dims() != input {
        candle_core::bail!(
            "mbconv_eval: a residual block's output {:?} must have its input's shape {input:?}",
            plan.project.out_dims()
        )
    }
    let op = MbConvEval {
        plan,
        input,
        saved: Mutex::new(None),
    };
    x.contiguous()?.apply_op1(op)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch_norm::FusedAct;
    use crate::config::PaddingMode;
    use crate::conv_bn::conv_bn_eval;
    use crate::layers::{Conv2d, Init, Store};
    use crate::squeeze_excite::squeeze_excite;
    use candle_core::{Device, Var};
    use rand::SeedableRng;

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    /// One block's frozen parameters.
    struct Block {
        expand: Option<(Conv2d, Tensor, Tensor)>,
        depthwise: (Conv2d, Tensor, Tensor),
        se: Option<[Tensor; 4]>,
        project: (Conv2d, Tensor, Tensor),
        act: FusedAct,
        residual: bool,
    }

    impl Block {
        fn stage(
            (conv, scale, shift): &(Conv2d, Tensor, Tensor),
            dims: (usize, usize, usize, usize),
            act: Option<FusedAct>,
        ) -> ConvStage {
            ConvStage::new(dims, conv, (scale, shift), act)
                .unwrap()
                .expect("the stage applies")
        }

        fn plan(&self, input: (usize, usize, usize, usize)) -> MbConvPlan {
            let expand = self
                .expand
                .as_ref()
                .map(|e| Self::stage(e, input, Some(self.act)));
            let mid_in = expand.as_ref().map_or(input, ConvStage::out_dims);
            let depthwise = Self::stage(&self.depthwise, mid_in, Some(self.act));
            let mid = depthwise.out_dims();
            let se = self.se.as_ref().map(|[w1, b1, w2, b2]| {
                FrozenSe::new(mid, (w1, b1), (w2, b2))
                    .unwrap()
                    .expect("SE applies")
            });
            MbConvPlan {
                expand,
                depthwise,
                se,
                project: Self::stage(&self.project, mid, None),
                residual: self.residual,
            }
        }

        /// The op-by-op path: one op per stage, the SE op, candle's add.
        fn composed(&self, x: &Tensor) -> Tensor {
            let one = |t: &Tensor, p: &(Conv2d, Tensor, Tensor), act| {
                conv_bn_eval(t, Self::stage(p, t.dims4().unwrap(), act)).unwrap()
            };
            let mut h = match &self.expand {
                Some(e) => one(x, e, Some(self.act)),
                None => x.clone(),
            };
            h = one(&h, &self.depthwise, Some(self.act));
            if let Some([w1, b1, w2, b2]) = &self.se {
                h = squeeze_excite(&h, w1, b1, w2, b2).unwrap();
            }
            h = one(&h, &self.project, None);
            if self.residual {
                h = (h + x).unwrap();
            }
            h
        }
    }

    /// The block as one op against the op-by-op composition of its stages' ops: output and
    /// input gradient equal value for value (with and without expansion, SE and residual;
    /// stride 1 and 2; batch 1 and odd sizes; both activations and padding modes).
    #[test]
    fn one_op_block_equals_the_composition_in_values_and_input_gradient() {
        let dev = Device::Cpu;
        let mut store = Store::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
        // (batch, in, hidden, out, size, kernel, stride, expand, se, act, padding)
        let cases = [
            (
                1,
                6,
                6,
                6,
                9,
                3,
                1,
                false,
                true,
                FusedAct::Silu,
                PaddingMode::Symmetric,
            ),
            (
                3,
                4,
                16,
                4,
                7,
                3,
                1,
                true,
                true,
                FusedAct::Silu,
                PaddingMode::TfSame,
            ),
            (
                2,
                4,
                12,
                6,
                11,
                5,
                2,
                true,
                true,
                FusedAct::Silu,
                PaddingMode::Symmetric,
            ),
            (
                1,
                5,
                20,
                5,
                13,
                5,
                1,
                true,
                false,
                FusedAct::Relu6,
                PaddingMode::TfSame,
            ),
            (
                5,
                3,
                9,
                7,
                6,
                3,
                2,
                true,
                false,
                FusedAct::Relu6,
                PaddingMode::Symmetric,
            ),
            (
                2,
                8,
                8,
                4,
                17,
                3,
                1,
                false,
                false,
                FusedAct::Relu6,
                PaddingMode::Symmetric,
            ),
        ];
        for (i, (n, ci, hid, co, size, k, s, expand, se, act, pad)) in cases.into_iter().enumerate()
        {
            let mut init = Init {
                store: &mut store,
                rng: &mut rng,
                device: &dev,
            };
            let mut conv_bn = |name: &str, ch: (usize, usize), k, s, dw| {
                let conv = Conv2d::new(&mut init, name, ch, k, s, dw, pad).unwrap();
                conv.weight.set_trainable(false);
                let scale = Tensor::randn(1f32, 0.5, ch.1, &dev).unwrap();
                let shift = Tensor::randn(0f32, 1., ch.1, &dev).unwrap();
                (conv, scale, shift)
            };
            let block = Block {
                expand: expand.then(|| conv_bn(&format!("e{i}"), (ci, hid), 1, 1, false)),
                depthwise: conv_bn(&format!("d{i}"), (hid, hid), k, s, true),
                se: se.then(|| {
                    let r = (ci / 4).max(1);
                    let w = |shape: (usize, usize)| Tensor::randn(0f32, 0.5, shape, &dev).unwrap();
                    let b = |len: usize| Tensor::randn(0f32, 0.5, len, &dev).unwrap();
                    [w((r, hid)), b(r), w((hid, r)), b(hid)]
                }),
                project: conv_bn(&format!("p{i}"), (hid, co), 1, 1, false),
                act,
                residual: s == 1 && ci == co,
            };
            let x = Var::from_tensor(&Tensor::randn(0f32, 1., (n, ci, size, size), &dev).unwrap())
                .unwrap();
            let what = format!("case {i}");
            let one = mbconv_eval(x.as_tensor(), block.plan(x.dims4().unwrap())).unwrap();
            let composed = block.composed(x.as_tensor());
            assert_eq!(one.dims(), composed.dims(), "{what}");
            assert_eq!(values(&one), values(&composed), "{what}: forward");
            let r = Tensor::randn(0f32, 1., one.dims(), &dev).unwrap();
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

    #[test]
    fn a_plan_for_another_input_is_an_error() {
        let dev = Device::Cpu;
        let mut store = Store::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let mut init = Init {
            store: &mut store,
            rng: &mut rng,
            device: &dev,
        };
        let pad = PaddingMode::Symmetric;
        let dw = Conv2d::new(&mut init, "dw", (4, 4), 3, 1, true, pad).unwrap();
        let pw = Conv2d::new(&mut init, "pw", (4, 4), 1, 1, false, pad).unwrap();
        for c in [&dw, &pw] {
            c.weight.set_trainable(false);
        }
        let ones = Tensor::ones(4, candle_core::DType::F32, &dev).unwrap();
        let plan = |dims| MbConvPlan {
            expand: None,
            depthwise: ConvStage::new(dims, &dw, (&ones, &ones), Some(FusedAct::Silu))
                .unwrap()
                .unwrap(),
            se: None,
            project: ConvStage::new(dims, &pw, (&ones, &ones), None)
                .unwrap()
                .unwrap(),
            residual: true,
        };
        let x = Tensor::zeros((2, 4, 5, 5), candle_core::DType::F32, &dev).unwrap();
        let err = mbconv_eval(&x, plan((2, 4, 6, 6))).unwrap_err();
        assert!(
            err.to_string().contains("the plan is for an input"),
            "{err}"
        );
        assert!(mbconv_eval(&x, plan((2, 4, 5, 5))).is_ok());
    }
}
