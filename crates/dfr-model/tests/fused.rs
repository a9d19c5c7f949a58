//! The fused CPU ops (train-mode BN + activation, squeeze-excitation) against the composed
//! candle ops they replace: values and every gradient, on random shapes including batch 1,
//! 1×1 maps and odd sizes; and a whole B0 step (train and eval mode, stride-2 blocks
//! included) fused against unfused.

use candle_core::{DType, Device, Tensor, Var, D};
use dfr_model::batch_norm::{batch_norm_train, batch_norm_train_act, force_unfused, FusedAct};
use dfr_model::loss::weighted_cross_entropy;
use dfr_model::squeeze_excite::squeeze_excite;
use dfr_model::{Arch, EfficientNet, EfficientNetConfig};

use crate::common::{diff, max_abs};

/// Relative max difference, scaled by the larger magnitude (at least 1e-3).
fn rel(a: &Tensor, b: &Tensor) -> f32 {
    diff(a, b) / max_abs(a).max(max_abs(b)).max(1e-3)
}

fn composed_act(z: &Tensor, act: FusedAct) -> Tensor {
    match act {
        FusedAct::Silu => z.silu().unwrap(),
        FusedAct::Relu6 => z.relu().unwrap().minimum(6f32).unwrap(),
    }
}

#[test]
fn train_bn_with_activation_matches_bn_then_activation() {
    let dev = Device::Cpu;
    let shapes = [
        (1, 3, 5, 7),
        (3, 5, 1, 1),
        (2, 4, 3, 3),
        (5, 7, 9, 2),
        (1, 1, 1, 1),
    ];
    for (i, &(n, c, h, w)) in shapes.iter().enumerate() {
        for act in [FusedAct::Silu, FusedAct::Relu6] {
            for track in [true, false] {
                let x = Var::from_tensor(
                    &(Tensor::randn(0.5f32, 2., (n, c, h, w), &dev).unwrap() * (i + 1) as f64)
                        .unwrap(),
                )
                .unwrap();
                let g0 = Tensor::randn(1f32, 0.5, c, &dev).unwrap();
                let b0 = Tensor::randn(0f32, 0.5, c, &dev).unwrap();
                let (gv, bv) = (
                    Var::from_tensor(&g0).unwrap(),
                    Var::from_tensor(&b0).unwrap(),
                );
                let (g, b) = if track {
                    (gv.as_tensor().clone(), bv.as_tensor().clone())
                } else {
                    (g0.clone(), b0.clone())
                };
                let (fused, m1, v1) =
                    batch_norm_train_act(x.as_tensor(), &g, &b, 1e-3, act).unwrap();
                let (z, m2, v2) = batch_norm_train(x.as_tensor(), &g, &b, 1e-3).unwrap();
                let composed = composed_act(&z, act);
                let what = format!("{act:?} {:?} params tracked {track}", (n, c, h, w));
                assert!(diff(&fused, &composed) < 1e-6, "{what}: forward");
                assert_eq!(diff(&m1, &m2), 0.0, "{what}: mean");
                assert_eq!(diff(&v1, &v2), 0.0, "{what}: variance");
                let r = Tensor::randn(0f32, 1., fused.dims(), &dev).unwrap();
                let g1 = (&fused * &r)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                let g2 = (&composed * &r)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                let dx = (
                    g1.get(x.as_tensor()).unwrap(),
                    g2.get(x.as_tensor()).unwrap(),
                );
                assert!(rel(dx.0, dx.1) < 1e-4, "{what}: dx {}", rel(dx.0, dx.1));
                for (name, p) in [("gamma", &gv), ("beta", &bv)] {
                    match (g1.get(p.as_tensor()), g2.get(p.as_tensor())) {
                        (Some(a), Some(b)) => assert!(rel(a, b) < 1e-4, "{what}: {name}"),
                        (None, None) => assert!(!track, "{what}: no {name} gradient"),
                        _ => panic!("{what}: {name} gradient in one path only"),
                    }
                }
            }
        }
    }
}

/// SE composed from candle ops, as the layer computed it before the fused op.
fn composed_se(x: &Tensor, w1: &Tensor, b1: &Tensor, w2: &Tensor, b2: &Tensor) -> Tensor {
    let (n, c, _, _) = x.dims4().unwrap();
    let s = x
        .mean_keepdim(D::Minus1)
        .unwrap()
        .mean_keepdim(D::Minus2)
        .unwrap();
    let s = s.reshape((n, c)).unwrap();
    let h = s
        .matmul(&w1.t().unwrap())
        .unwrap()
        .broadcast_add(b1)
        .unwrap()
        .silu()
        .unwrap();
    let pre = h
        .matmul(&w2.t().unwrap())
        .unwrap()
        .broadcast_add(b2)
        .unwrap();
    let gate = candle_nn::ops::sigmoid(&pre).unwrap();
    x.broadcast_mul(&gate.reshape((n, c, 1, 1)).unwrap())
        .unwrap()
}

#[test]
fn squeeze_excite_matches_the_composed_ops() {
    let dev = Device::Cpu;
    // (n, c, r, h, w): batch 1, 1×1 maps, odd sizes, a channel count past the 8-lane sums
    let shapes = [
        (1, 3, 1, 1, 1),
        (2, 5, 2, 3, 7),
        (4, 16, 4, 8, 8),
        (3, 37, 5, 5, 3),
        (1, 24, 6, 11, 13),
    ];
    for &(n, c, r, h, w) in &shapes {
        for (track_x, track_p) in [(true, true), (true, false), (false, true)] {
            let what = format!(
                "{:?} x tracked {track_x}, params tracked {track_p}",
                (n, c, r, h, w)
            );
            let x0 = Tensor::randn(0.3f32, 1., (n, c, h, w), &dev).unwrap();
            let xv = Var::from_tensor(&x0).unwrap();
            let x = if track_x {
                xv.as_tensor().clone()
            } else {
                x0.clone()
            };
            let init: [&[usize]; 4] = [&[r, c], &[r], &[c, r], &[c]];
            let vars: Vec<Var> = init
                .iter()
                .map(|&s| Var::from_tensor(&Tensor::randn(0f32, 0.7, s, &dev).unwrap()).unwrap())
                .collect();
            let p: Vec<Tensor> = vars
                .iter()
                .map(|v| {
                    if track_p {
                        v.as_tensor().clone()
                    } else {
                        v.as_tensor().detach()
                    }
                })
                .collect();
            let fused = squeeze_excite(&x, &p[0], &p[1], &p[2], &p[3]).unwrap();
            let composed = composed_se(&x, &p[0], &p[1], &p[2], &p[3]);
            assert!(rel(&fused, &composed) < 1e-5, "{what}: forward");
            let rnd = Tensor::randn(0f32, 1., fused.dims(), &dev).unwrap();
            let g1 = (&fused * &rnd)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let g2 = (&composed * &rnd)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            if track_x {
                let (a, b) = (
                    g1.get(xv.as_tensor()).unwrap(),
                    g2.get(xv.as_tensor()).unwrap(),
                );
                assert!(rel(a, b) < 1e-4, "{what}: dx {}", rel(a, b));
            } else {
                assert!(g1.get(xv.as_tensor()).is_none(), "{what}: dx of a constant");
            }
            for (i, v) in vars.iter().enumerate() {
                match (g1.get(v.as_tensor()), g2.get(v.as_tensor())) {
                    (Some(a), Some(b)) => {
                        assert!(rel(a, b) < 1e-4, "{what}: parameter {i} {}", rel(a, b))
                    }
                    (None, None) => assert!(!track_p, "{what}: no gradient of parameter {i}"),
                    _ => panic!("{what}: parameter {i} has a gradient in one path only"),
                }
            }
        }
    }
}

#[test]
fn squeeze_excite_rejects_mismatched_weights() {
    let dev = Device::Cpu;
    let x = Tensor::zeros((1, 4, 2, 2), DType::F32, &dev).unwrap();
    let w1 = Tensor::zeros((2, 3), DType::F32, &dev).unwrap();
    let b1 = Tensor::zeros(2, DType::F32, &dev).unwrap();
    let w2 = Tensor::zeros((4, 2), DType::F32, &dev).unwrap();
    let b2 = Tensor::zeros(4, DType::F32, &dev).unwrap();
    let err = squeeze_excite(&x, &w1, &b1, &w2, &b2)
        .unwrap_err()
        .to_string();
    assert!(err.contains("fc1"), "{err}");
}

/// Loss, input gradient and every parameter gradient of one B0 step, with the fused ops or
/// without them (on this thread).
fn b0_step(model: &EfficientNet, x: &Tensor, train: bool, fused: bool) -> Vec<(String, Tensor)> {
    force_unfused(!fused);
    let xv = Var::from_tensor(x).unwrap();
    let logits = model.forward_t(xv.as_tensor(), train).unwrap();
    force_unfused(false);
    let y = Tensor::new(&[0u32, 1, 1][..x.dim(0).unwrap()], x.device()).unwrap();
    let w = Tensor::new(&[2f32, 1.], x.device()).unwrap();
    let loss = weighted_cross_entropy(&logits, &y, Some(&w)).unwrap();
    let grads = loss.backward().unwrap();
    let mut out = vec![
        ("loss".to_string(), loss.clone()),
        (
            "input".to_string(),
            grads.get(xv.as_tensor()).unwrap().clone(),
        ),
    ];
    for (name, p) in model.named_params() {
        if let Some(g) = grads.get(p.var().as_tensor()) {
            out.push((name.clone(), g.clone()));
        }
    }
    out
}

#[test]
fn a_b0_step_is_the_same_with_and_without_the_fused_ops() {
    let dev = Device::Cpu;
    let model = EfficientNet::new(EfficientNetConfig::new(Arch::B0, 2), &dev, 3).unwrap();
    model.set_stochastic(false);
    for (n, res, train) in [(3, 35, true), (1, 32, true), (3, 33, false)] {
        // Fixed pseudo-random pixels in [0, 1), so that a failure reproduces
        let len = n * 3 * res * res;
        let px: Vec<f32> = (0..len as u64)
            .map(|i| ((i.wrapping_mul(2_654_435_761) >> 7) % 1000) as f32 / 1000.0)
            .collect();
        let x = Tensor::from_vec(px, (n, 3, res, res), &dev).unwrap();
        // Train mode moves the running statistics; both paths must start from the same ones.
        let saved: Vec<Tensor> = model.named_buffers().iter().map(|(_, b)| b.get()).collect();
        let fused = b0_step(&model, &x, train, true);
        let after_fused: Vec<Tensor> = model.named_buffers().iter().map(|(_, b)| b.get()).collect();
        for ((_, b), t) in model.named_buffers().iter().zip(&saved) {
            b.set(t.clone());
        }
        let unfused = b0_step(&model, &x, train, false);
        let what = format!("batch {n}, {res} px, train {train}");
        assert_eq!(fused.len(), unfused.len(), "{what}: gradient count");
        assert!(fused.len() > 100, "{what}: only {} gradients", fused.len());
        for ((name, a), (_, b)) in fused.iter().zip(&unfused) {
            let tol = if name == "loss" { 1e-5 } else { 2e-3 };
            assert!(rel(a, b) < tol, "{what}: {name} differs by {}", rel(a, b));
        }
        for (((name, b), t), u) in model.named_buffers().iter().zip(&after_fused).zip(&saved) {
            let now = b.get();
            // absolute at the statistics' scale (a 1×1 map at batch 1 has mean ≈ 0); batch-1
            // train mode normalises 1–4 values per channel in the deep stages, which amplifies
            // rounding differences between the paths
            let tol = 1e-4 * max_abs(t).max(1.0);
            assert!(
                diff(&now, t) < tol,
                "{what}: running statistic {name} differs by {}",
                diff(&now, t)
            );
            if train && name.ends_with("running_mean") {
                assert!(diff(&now, u) > 0.0, "{what}: {name} did not move");
            }
        }
    }
}

/// Inference (every parameter frozen, an untracked input) runs BN, the activation and the
/// residual inside the 1×1 and depthwise kernels' passes; it must give the op-by-op eval
/// forward's values bit for bit (the same model with its parameters tracked takes that path).
#[test]
fn inference_with_bn_inside_the_conv_passes_is_bit_identical_to_the_op_by_op_forward() {
    let dev = Device::Cpu;
    let model = EfficientNet::new(EfficientNetConfig::new(Arch::B0, 2), &dev, 5).unwrap();
    model.set_stochastic(false);
    let pixels = |n: usize, res: usize, salt: u64| {
        let px: Vec<f32> = (0..(n * 3 * res * res) as u64)
            .map(|i| (((i + salt).wrapping_mul(2_654_435_761) >> 7) % 1000) as f32 / 1000.0)
            .collect();
        Tensor::from_vec(px, (n, 3, res, res), &dev).unwrap()
    };
    // Running statistics away from (0, 1), so that every BN's scale and shift matter.
    for salt in 0..2 {
        model.forward_t(&pixels(4, 40, salt), true).unwrap();
    }
    // batch 1 and odd sizes; maps above 16×16 (plane kernels) and below (channels-last ones)
    for (n, res) in [(1, 33), (3, 35), (2, 70)] {
        let x = pixels(n, res, 7);
        let tracked = model.forward_to_stage(&x, 8, false).unwrap();
        assert!(
            tracked.track_op(),
            "the reference forward must be the op-by-op one"
        );
        let tracked_logits = model.classify(&tracked, false).unwrap();
        let (feat, logits) = {
            let _frozen = model.freeze();
            let f = model.forward_to_stage(&x, 8, false).unwrap();
            assert!(!f.track_op());
            let l = model.classify(&f, false).unwrap();
            (f, l)
        };
        let v = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(v(&feat), v(&tracked), "batch {n}, {res} px: head features");
        assert_eq!(
            v(&logits),
            v(&tracked_logits),
            "batch {n}, {res} px: logits"
        );
    }
}

/// The attack setting (every parameter frozen, a tracked input) runs each MBConv block as one
/// op (`mbconv_eval`) and the head's 1×1 convolution with its BN and activation as one op
/// (`conv_bn`); its logits and its input gradient must equal the op-by-op path's (the same
/// model with its parameters tracked) value for value, B0 (SiLU, SE) and Lite0 (ReLU6, no
/// SE), batch 1, odd sizes, stride-2 blocks.
#[test]
fn the_attack_path_with_conv_and_bn_as_one_op_gives_the_op_by_op_input_gradient() {
    let dev = Device::Cpu;
    for (arch, seed) in [(Arch::B0, 11), (Arch::Lite0, 12)] {
        let model = EfficientNet::new(EfficientNetConfig::new(arch, 2), &dev, seed).unwrap();
        model.set_stochastic(false);
        let pixels = |n: usize, res: usize, salt: u64| {
            let px: Vec<f32> = (0..(n * 3 * res * res) as u64)
                .map(|i| (((i + salt).wrapping_mul(2_654_435_761) >> 7) % 1000) as f32 / 1000.0)
                .collect();
            Tensor::from_vec(px, (n, 3, res, res), &dev).unwrap()
        };
        // Running statistics away from (0, 1), so that every BN's scale and shift matter.
        model.forward_t(&pixels(4, 40, 1), true).unwrap();
        for (n, res) in [(1, 33), (3, 37)] {
            let x = pixels(n, res, 9);
            let y = Tensor::new(&[0u32, 1, 1][..n], &dev).unwrap();
            let step = || {
                let xv = Var::from_tensor(&x).unwrap();
                let logits = model.forward_t(xv.as_tensor(), false).unwrap();
                let loss = weighted_cross_entropy(&logits, &y, None).unwrap();
                let g = loss.backward().unwrap();
                let v = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                (v(&logits), v(g.get(xv.as_tensor()).unwrap()))
            };
            let (ref_logits, ref_grad) = step();
            let (logits, grad) = {
                let _frozen = model.freeze();
                step()
            };
            let what = format!("{arch:?}, batch {n}, {res} px");
            assert_eq!(logits, ref_logits, "{what}: logits");
            assert!(grad.iter().any(|&g| g != 0.0), "{what}: a zero gradient");
            assert_eq!(grad, ref_grad, "{what}: input gradient");
        }
    }
}
