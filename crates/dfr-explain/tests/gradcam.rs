//! Grad-CAM on a randomly initialised B0 (no fixtures needed): the closed form at the
//! head, finite differences at an inner stage, every stage's shapes, closures, errors.

use candle_core::{DType, Device, Tensor};
use dfr_explain::{
    gradcam, gradcam_from_features, postprocess_cam, CamModel, ExplainError, FnCamModel, Target,
};
use dfr_model::{Arch, EfficientNet, EfficientNetConfig};

fn model() -> EfficientNet {
    let cfg = EfficientNetConfig::new(Arch::B0, 2).without_stochastic();
    EfficientNet::new(cfg, &Device::Cpu, 7).expect("model")
}

fn images(n: usize, size: usize) -> Tensor {
    Tensor::rand(0f32, 1f32, (n, 3, size, size), &Device::Cpu).expect("images")
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// At `features.8` the logit is `W_t · mean_hw(A) + b_t`, so `w_c = W[t, c] / (h·w)`
/// and `cam_lowres = ReLU(Σ_c W[t, c] A_c / (h·w))`.
#[test]
fn head_stage_matches_closed_form() {
    let m = model();
    let x = images(2, 64);
    let labels = vec![1u32, 0];
    let out = gradcam(&m, &x, 8, &Target::Label(labels.clone())).unwrap();
    assert_eq!(out.targets, labels);
    let a = m.forward_to_stage(&x, 8, false).unwrap(); // 2×1280×2×2
    let (n, c, h, w) = a.dims4().unwrap();
    assert_eq!(
        (out.lowres.len(), out.lowres.height(), out.lowres.width()),
        (n, h, w)
    );
    assert_eq!(out.weights.dims(), &[n, c]);
    let wcls = m
        .param("classifier.1.weight")
        .unwrap()
        .var()
        .as_tensor()
        .detach();
    let idx = Tensor::new(labels.as_slice(), &Device::Cpu).unwrap();
    let want_w = (wcls.index_select(&idx, 0).unwrap() / (h * w) as f64).unwrap();
    let got_w: Vec<f32> = out.weights.flatten_all().unwrap().to_vec1().unwrap();
    let want_wv: Vec<f32> = want_w.flatten_all().unwrap().to_vec1().unwrap();
    assert!(max_abs(&got_w, &want_wv) < 1e-7);
    let want_cam = a
        .broadcast_mul(&want_w.unsqueeze(2).unwrap().unsqueeze(3).unwrap())
        .unwrap()
        .sum(1)
        .unwrap()
        .relu()
        .unwrap();
    let want: Vec<f32> = want_cam.flatten_all().unwrap().to_vec1().unwrap();
    assert!(max_abs(out.lowres.data(), &want) < 1e-5);
    // logits are the eval-mode logits
    let logits: Vec<f32> = out.logits.flatten_all().unwrap().to_vec1().unwrap();
    let eval: Vec<f32> = m
        .forward(&x)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert!(max_abs(&logits, &eval) < 1e-5);
    // up-sampled maps: post-processing of the low-resolution ones, in [0, 1]
    assert_eq!((out.cam.height(), out.cam.width()), (64, 64));
    for (lo, up) in out.lowres.iter().zip(out.cam.iter()) {
        assert_eq!(postprocess_cam(lo, h, w, 64, 64).unwrap(), up);
        assert!(up.iter().all(|&v| (0.0..=1.0).contains(&v)));
    }
    // parameters are trainable again afterwards
    assert!(m.named_params().iter().all(|(_, p)| p.is_trainable()));
}

/// At an inner stage, `Σ_hw ∂logit/∂A_c = h·w·w_c` must match a central finite
/// difference of the logit along channel `c`.
#[test]
fn inner_stage_weights_match_finite_differences() {
    let m = model();
    let x = images(2, 64);
    let layer = 4;
    let out = gradcam(&m, &x, layer, &Target::Class(1)).unwrap();
    let a = m.forward_to_stage(&x, layer, false).unwrap();
    let (n, c, h, w) = a.dims4().unwrap();
    assert_eq!((out.lowres.height(), out.lowres.width()), (h, w));
    let weights: Vec<f32> = out.weights.flatten_all().unwrap().to_vec1().unwrap();
    for i in 0..n {
        let row = &weights[i * c..(i + 1) * c];
        let mut order: Vec<usize> = (0..c).collect();
        order.sort_by(|&p, &q| row[q].abs().total_cmp(&row[p].abs()));
        for &ch in &order[..3] {
            let eps = 1e-2f64;
            let mut bump = vec![0f32; n * c * h * w];
            for k in 0..h * w {
                bump[((i * c + ch) * h * w) + k] = 1.0;
            }
            let bump = Tensor::from_vec(bump, (n, c, h, w), &Device::Cpu).unwrap();
            let logit = |s: f64| -> f64 {
                let ap = (&a + (&bump * s).unwrap()).unwrap();
                let l = m.forward_from_stage(&ap, layer, false).unwrap();
                l.get(i)
                    .unwrap()
                    .get(1)
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap() as f64
            };
            let fd = (logit(eps) - logit(-eps)) / (2.0 * eps);
            let analytic = (h * w) as f64 * row[ch] as f64;
            assert!(
                (fd - analytic).abs() <= 2e-3 * analytic.abs().max(1.0),
                "image {i} channel {ch}: finite difference {fd} vs {analytic}"
            );
        }
    }
}

#[test]
fn every_stage_gives_maps_of_its_resolution() {
    let m = model();
    let x = images(2, 64);
    let eval: Vec<f32> = m
        .forward(&x)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let predicted: Vec<u32> = eval
        .chunks_exact(2)
        .map(|r| u32::from(r[1] > r[0]))
        .collect();
    for layer in 0..m.num_cam_layers() {
        let a = m.forward_to_stage(&x, layer, false).unwrap();
        let (_, _, h, w) = a.dims4().unwrap();
        let out = gradcam(&m, &x, layer, &Target::Predicted).unwrap();
        assert_eq!(out.targets, predicted, "layer {layer}");
        assert_eq!((out.lowres.height(), out.lowres.width()), (h, w));
        assert_eq!(
            (out.cam.len(), out.cam.height(), out.cam.width()),
            (2, 64, 64)
        );
        assert!(out.lowres.data().iter().all(|&v| v >= 0.0 && v.is_finite()));
        // (peaks may stay well below 1: with random weights the maps of early stages
        // span less than the 1e-7 that the scaling adds, as in pytorch-grad-cam)
        for (lo, up) in out.lowres.iter().zip(out.cam.iter()) {
            assert!(up.iter().all(|&v| (0.0..=1.0).contains(&v)));
            assert_eq!(postprocess_cam(lo, h, w, 64, 64).unwrap(), up);
        }
    }
}

#[test]
fn frozen_parameters_stay_frozen() {
    let m = model();
    m.set_trainable_where(false, |n| n.starts_with("features.0."));
    let before: Vec<bool> = m
        .named_params()
        .iter()
        .map(|(_, p)| p.is_trainable())
        .collect();
    gradcam(&m, &images(1, 32), 3, &Target::Class(0)).unwrap();
    let after: Vec<bool> = m
        .named_params()
        .iter()
        .map(|(_, p)| p.is_trainable())
        .collect();
    assert_eq!(before, after);
    assert!(before.iter().any(|&t| t) && before.iter().any(|&t| !t));
}

/// A toy model through closures: features = the image itself, logits = a linear map
/// of the per-channel means, so `w_c = W[t, c] / (H·W)`.
#[test]
fn closure_model_and_precomputed_features() {
    let wmat = Tensor::new(&[[1f32, -2.0, 0.5], [-1.0, 3.0, 0.0]], &Device::Cpu).unwrap();
    let head = |f: &Tensor| -> dfr_explain::Result<Tensor> {
        let pooled = f.mean((2, 3))?; // N×3
        Ok(pooled.matmul(&wmat.t()?)?)
    };
    let toy = FnCamModel::new(1, |x: &Tensor, _| Ok(x.clone()), |f: &Tensor, _| head(f));
    let x = images(3, 6);
    let out = gradcam(&toy, &x, 0, &Target::Label(vec![0, 1, 1])).unwrap();
    let xs: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
    let wv: Vec<f32> = wmat.flatten_all().unwrap().to_vec1().unwrap();
    for (i, &t) in [0usize, 1, 1].iter().enumerate() {
        let lo = out.lowres.map(i).unwrap();
        for p in 0..36 {
            let s: f32 = (0..3)
                .map(|c| wv[t * 3 + c] / 36.0 * xs[(i * 3 + c) * 36 + p])
                .sum();
            assert!((lo[p] - s.max(0.0)).abs() < 1e-6);
        }
    }
    // the same through a precomputed activation, up-sampled to another size
    let out2 = gradcam_from_features(&x, head, &Target::Label(vec![0, 1, 1]), (12, 9)).unwrap();
    assert_eq!(out2.lowres, out.lowres);
    assert_eq!((out2.cam.height(), out2.cam.width()), (12, 9));
    // a head that ignores the activation has no gradient: an error, not a panic
    let err = gradcam_from_features(
        &x,
        |f: &Tensor| Ok(Tensor::zeros((f.dim(0)?, 2), DType::F32, &Device::Cpu)?),
        &Target::Class(0),
        (6, 6),
    );
    assert!(matches!(err, Err(ExplainError::InvalidInput(_))), "{err:?}");
}

#[test]
fn bad_input_is_an_error() {
    let m = model();
    let x = images(2, 32);
    let is_invalid = |r: dfr_explain::Result<_>| matches!(r, Err(ExplainError::InvalidInput(_)));
    assert!(is_invalid(gradcam(&m, &x, 9, &Target::Predicted)));
    assert!(is_invalid(gradcam(&m, &x, 8, &Target::Label(vec![0]))));
    assert!(is_invalid(gradcam(&m, &x, 8, &Target::Label(vec![0, 2]))));
    assert!(is_invalid(gradcam(&m, &x, 8, &Target::Class(7))));
    let flat = x.flatten_from(2).unwrap();
    assert!(is_invalid(gradcam(&m, &flat, 8, &Target::Predicted)));
    let empty = Tensor::zeros((0, 3, 32, 32), DType::F32, &Device::Cpu).unwrap();
    assert!(is_invalid(gradcam(&m, &empty, 8, &Target::Predicted)));
    let nan = (x.ones_like().unwrap() * f64::NAN).unwrap();
    assert!(gradcam(&m, &nan, 8, &Target::Predicted).is_err());
}
