//! Model behaviour: split points, modes, weight loading and its errors.

#[cfg(feature = "cuda")]
use crate::common::max_abs;
use crate::common::{self, diff};

use std::collections::HashMap;

use candle_core::{Device, Tensor, Var};
use dfr_model::weights::{load_into, name_map, read_tensors, Naming};
use dfr_model::{Arch, EfficientNet, EfficientNetConfig, Error};

fn small_input(n: usize, hw: usize) -> Tensor {
    Tensor::rand(0f32, 1., (n, 3, hw, hw), &Device::Cpu).unwrap()
}

#[test]
fn split_forward_equals_full_forward() {
    let m = EfficientNet::new(EfficientNetConfig::new(Arch::B0, 2), &Device::Cpu, 1).unwrap();
    let x = small_input(2, 64);
    let full = m.forward_t(&x, false).unwrap();
    assert_eq!(full.dims(), [2, 2]);
    for k in [0, 1, 4, 8] {
        let f = m.forward_to_stage(&x, k, false).unwrap();
        assert_eq!(f.dim(1).unwrap(), m.config().stage_channels(k).unwrap());
        let l = m.forward_from_stage(&f, k, false).unwrap();
        assert!(diff(&l, &full) < 1e-5, "stage {k}");
    }
    let (l, a) = m.forward_with_features(&x, 8, false).unwrap();
    assert_eq!(a.dims(), [2, 1280, 2, 2]);
    assert!(diff(&l, &full) < 1e-5);
    assert!(m.forward_to_stage(&x, 9, false).is_err());
    let p = dfr_model::predict_probs(&m, &x).unwrap();
    let s = p.sum(1).unwrap().to_vec1::<f32>().unwrap();
    assert!(s.iter().all(|v| (v - 1.0).abs() < 1e-5));
}

#[test]
fn lite_and_scaled_variants_run() {
    for arch in [Arch::Lite0, Arch::B1] {
        let m = EfficientNet::new(EfficientNetConfig::new(arch, 2), &Device::Cpu, 1).unwrap();
        let x = small_input(1, 33); // odd size: asymmetric SAME padding
        let (l, a) = m.forward_with_features(&x, 8, false).unwrap();
        assert_eq!(l.dims(), [1, 2]);
        assert_eq!(a.dims(), [1, m.config().head_channels(), 2, 2]);
    }
}

#[test]
fn train_mode_updates_running_stats_and_stochastic_is_seedable() {
    let cfg = EfficientNetConfig::new(Arch::B0, 2);
    let m = EfficientNet::new(cfg, &Device::Cpu, 3).unwrap();
    let x = small_input(4, 32);
    let rm0 = m.buffer("features.0.1.running_mean").unwrap().get();
    let e0 = m.forward_t(&x, false).unwrap();
    m.set_seed(42);
    let a = m.forward_t(&x, true).unwrap();
    let rm1 = m.buffer("features.0.1.running_mean").unwrap().get();
    assert!(diff(&rm0, &rm1) > 0.0, "running mean must move");
    m.set_seed(42);
    let b = m.forward_t(&x, true).unwrap();
    assert!(diff(&a, &b) < 1e-5, "same seed, same masks");
    // stochastic off: train forward deterministic regardless of seed
    m.set_stochastic(false);
    m.set_seed(1);
    let c = m.forward_t(&x, true).unwrap();
    m.set_seed(2);
    let d = m.forward_t(&x, true).unwrap();
    assert!(diff(&c, &d) < 1e-5);
    // eval uses the (moved) running stats
    let e1 = m.forward_t(&x, false).unwrap();
    assert!(diff(&e0, &e1) > 0.0);
}

#[test]
fn frozen_params_get_no_gradients() {
    let m = EfficientNet::new(EfficientNetConfig::new(Arch::B0, 2), &Device::Cpu, 1).unwrap();
    m.set_stages_trainable(1, false); // PIM: shallow part frozen
    let x = Var::from_tensor(&small_input(2, 32)).unwrap();
    let l = m.forward_t(x.as_tensor(), true).unwrap().sum_all().unwrap();
    let g = l.backward().unwrap();
    assert!(g.get(x.as_tensor()).is_some());
    for (n, p) in m.named_params() {
        let has = g.get(p.var().as_tensor()).is_some();
        let shallow = n.starts_with("features.0.") || n.starts_with("features.1.");
        assert_eq!(has, !shallow, "{n}");
    }
    assert_eq!(
        m.trainable_vars().len(),
        m.named_params().len()
            - m.named_params()
                .iter()
                .filter(|(n, _)| n.starts_with("features.0.") || n.starts_with("features.1."))
                .count()
    );
}

fn b0_tensors() -> Option<HashMap<String, Tensor>> {
    let dir = common::fixtures()?;
    Some(read_tensors(&dir.join("effnet_b0_torchvision.safetensors"), &Device::Cpu).unwrap())
}

#[test]
fn timm_and_effnet_pytorch_namings_load_identically() {
    let Some(tv) = b0_tensors() else { return };
    let cfg = EfficientNetConfig::new(Arch::B0, 2);
    let x = small_input(2, 64);
    let reference = EfficientNet::new(cfg.clone(), &Device::Cpu, 0).unwrap();
    let r = load_into(&reference, tv.clone(), 0).unwrap();
    assert_eq!(r.naming, Naming::Torchvision);
    assert!(!r.head_initialised);
    let want = reference.forward_t(&x, false).unwrap();
    for naming in [Naming::Timm, Naming::EfficientNetPytorch] {
        let renamed: HashMap<String, Tensor> = name_map(&cfg, naming)
            .into_iter()
            .map(|(int, ext)| (format!("module.{ext}"), tv[&int].clone()))
            .collect();
        let m = EfficientNet::new(cfg.clone(), &Device::Cpu, 9).unwrap();
        let r = load_into(&m, renamed, 0).unwrap();
        assert_eq!(r.naming, naming);
        assert!(
            diff(&m.forward_t(&x, false).unwrap(), &want) < 1e-6,
            "{naming}"
        );
    }
}

#[test]
fn other_head_is_initialised_and_other_errors_are_typed() {
    let Some(tv) = b0_tensors() else { return };
    // 2-class weights into a 5-class model: head re-initialised, backbone loaded
    let m = EfficientNet::new(EfficientNetConfig::new(Arch::B0, 5), &Device::Cpu, 0).unwrap();
    let r = load_into(&m, tv.clone(), 0).unwrap();
    assert!(r.head_initialised);
    let w = m
        .param("classifier.1.weight")
        .unwrap()
        .var()
        .as_tensor()
        .clone();
    assert_eq!(w.dims(), [5, 1280]);
    let bound = 1.0 / (1280f32).sqrt();
    assert!(
        w.abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
            <= bound
    );
    let stem = m
        .param("features.0.0.weight")
        .unwrap()
        .var()
        .as_tensor()
        .clone();
    assert!(diff(&stem, &tv["features.0.0.weight"]) == 0.0);
    // backbone-only file (no classifier)
    let mut no_head = tv.clone();
    no_head.retain(|k, _| !k.starts_with("classifier"));
    let m2 = EfficientNet::new(EfficientNetConfig::new(Arch::B0, 2), &Device::Cpu, 0).unwrap();
    assert!(load_into(&m2, no_head, 0).unwrap().head_initialised);
    // missing tensor
    let mut missing = tv.clone();
    missing.remove("features.3.1.block.1.1.running_var");
    match load_into(&m2, missing, 0) {
        Err(Error::MissingTensor { name, expected, .. }) => {
            assert_eq!(name, "features.3.1.block.1.1.running_var");
            assert_eq!(expected, [240]);
        }
        other => panic!("expected MissingTensor, got {other:?}"),
    }
    // mis-shaped tensor
    let mut bad = tv.clone();
    bad.insert(
        "features.2.0.block.0.0.weight".into(),
        Tensor::zeros((96, 8, 1, 1), candle_core::DType::F32, &Device::Cpu).unwrap(),
    );
    let e = load_into(&m2, bad, 0).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::ShapeMismatch { .. }), "{e:?}");
    assert!(
        msg.contains("[96, 8, 1, 1]") && msg.contains("[96, 16, 1, 1]"),
        "{msg}"
    );
    // wrong architecture
    let m3 = EfficientNet::new(EfficientNetConfig::new(Arch::B2, 2), &Device::Cpu, 0).unwrap();
    assert!(load_into(&m3, tv, 0).is_err());
}

/// `max |a − b| / max |b|` (tensors on any devices).
#[cfg(feature = "cuda")]
fn rel_diff(a: &Tensor, b: &Tensor) -> f32 {
    diff(a, b) / max_abs(b).max(1e-12)
}

/// The whole model on the GPU against the CPU, from the same weights: eval logits, the
/// input gradient in eval mode (what attacks use), train-mode logits, every parameter
/// gradient and the updated running statistics (`cargo test -p dfr-model --features
/// cuda` on a machine with a GPU; `.ci/build-cuda-tests` builds it on one without).
#[cfg(feature = "cuda")]
#[test]
fn cuda_model_matches_cpu() {
    use dfr_model::loss::weighted_cross_entropy;
    let gpu = Device::new_cuda(0).expect("the `cuda` feature's tests need a CUDA device");
    let config = EfficientNetConfig::new(Arch::B0, 2);
    let cpu_model = EfficientNet::new(config.clone(), &Device::Cpu, 3).unwrap();
    let gpu_model = EfficientNet::new(config, &gpu, 4).unwrap();
    let state: HashMap<String, Tensor> = cpu_model
        .state_tensors()
        .into_iter()
        .map(|(n, t)| (n, t.to_device(&gpu).unwrap()))
        .collect();
    load_into(&gpu_model, state, 0).unwrap();
    for m in [&cpu_model, &gpu_model] {
        m.set_stochastic(false);
    }
    let x = small_input(4, 96);
    let y = Tensor::new(&[0u32, 1, 1, 0], &Device::Cpu).unwrap();
    let w = Tensor::new(&[2.5f32, 0.625], &Device::Cpu).unwrap();

    let run = |m: &EfficientNet, train: bool| {
        let dev = m.device();
        let xv = Var::from_tensor(&x.to_device(dev).unwrap()).unwrap();
        let logits = m.forward_t(xv.as_tensor(), train).unwrap();
        let loss = weighted_cross_entropy(
            &logits,
            &y.to_device(dev).unwrap(),
            Some(&w.to_device(dev).unwrap()),
        )
        .unwrap();
        let grads = loss.backward().unwrap();
        let gx = grads.get(xv.as_tensor()).unwrap().clone();
        let gp: Vec<(String, Tensor)> = m
            .named_params()
            .iter()
            .map(|(n, p)| (n.clone(), grads.get(p.var().as_tensor()).unwrap().clone()))
            .collect();
        (logits, gx, gp)
    };

    let (l_cpu, gx_cpu, _) = run(&cpu_model, false);
    let (l_gpu, gx_gpu, _) = run(&gpu_model, false);
    let (e_logits, e_gx) = (rel_diff(&l_gpu, &l_cpu), rel_diff(&gx_gpu, &gx_cpu));
    println!("eval: logits rel {e_logits:.2e}, input gradient rel {e_gx:.2e}");
    assert!(e_logits < 1e-4, "eval logits differ: {e_logits}");
    assert!(e_gx < 1e-3, "eval input gradient differs: {e_gx}");

    let (l_cpu, _, gp_cpu) = run(&cpu_model, true);
    let (l_gpu, _, gp_gpu) = run(&gpu_model, true);
    let e_train = rel_diff(&l_gpu, &l_cpu);
    println!("train: logits rel {e_train:.2e}");
    assert!(e_train < 1e-4, "train logits differ: {e_train}");
    // Each tensor's error relative to the larger of its own scale and 1e-3 of the largest
    // of its kind in the model. Some quantities are exactly zero in exact arithmetic, so
    // both devices return rounding noise there: the gradient of a BN shift followed by a
    // train-mode BN (features.7.0's projection BN feeds the head conv and its BN), and the
    // batch mean of a 1×1 conv of a train-mode BN's output whose shift is still zero.
    // Batch means are small differences of large sums, so the f32 rounding of the conv
    // outputs (cuBLAS vs the CPU gemm) shows at ~2e-4 of that scale (measured on an H200).
    let worst = |pairs: Vec<(String, Tensor, Tensor)>| {
        let global = pairs
            .iter()
            .map(|(_, _, r)| max_abs(r))
            .fold(0f32, f32::max);
        let mut worst = (0f32, String::new());
        for (n, got, reference) in pairs {
            let e = diff(&got, &reference) / max_abs(&reference).max(1e-3 * global);
            if e > worst.0 {
                worst = (e, n);
            }
        }
        worst
    };
    let grads = worst(
        gp_gpu
            .into_iter()
            .zip(gp_cpu)
            .map(|((n, g), (_, r))| (n, g, r))
            .collect(),
    );
    println!(
        "train: worst parameter gradient {:.2e} ({})",
        grads.0, grads.1
    );
    assert!(
        grads.0 < 1e-3,
        "parameter gradient {} differs: {}",
        grads.1,
        grads.0
    );
    for kind in ["running_mean", "running_var"] {
        let stats = worst(
            gpu_model
                .named_buffers()
                .iter()
                .zip(cpu_model.named_buffers())
                .filter(|((n, _), _)| n.ends_with(kind))
                .map(|((n, g), (_, c))| (n.clone(), g.get(), c.get()))
                .collect(),
        );
        println!("train: worst {kind} {:.2e} ({})", stats.0, stats.1);
        assert!(
            stats.0 < 1e-3,
            "{kind} {} differs after a train step: {}",
            stats.1,
            stats.0
        );
    }
}
