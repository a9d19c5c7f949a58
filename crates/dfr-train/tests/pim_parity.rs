//! The Perturbation Injection Module against PyTorch (`pim_case.safetensors`).

#[test]
fn pim_step_matches_pytorch() {
    let Some(dir) = crate::common::fixtures("pim_case.safetensors") else {
        return;
    };
    let checks = dfr_train::parity::check_pim_case(&dir).unwrap();
    for c in &checks {
        eprintln!("{:<45} {:.3e} (tol {:.1e})", c.name, c.max_abs, c.tolerance);
    }
    assert_eq!(
        checks
            .iter()
            .filter(|c| c.name.starts_with("grad."))
            .count(),
        5
    );
    assert!(checks.len() >= 15);
    let failed: Vec<_> = checks.iter().filter(|c| !c.passed).collect();
    assert!(failed.is_empty(), "failed: {failed:?}");
}

#[test]
fn frozen_shallow_part_gets_no_gradient() {
    let Some(dir) = crate::common::fixtures("pim_case.safetensors") else {
        return;
    };
    let dev = candle_core::Device::Cpu;
    let model = dfr_model::parity::load_b0_fixture_model(&dir, &dev).unwrap();
    model.set_stages_trainable(1, false);
    let x = candle_core::Tensor::rand(0f32, 1.0, (2, 3, 32, 32), &dev).unwrap();
    let y = candle_core::Tensor::new(&[0u32, 1], &dev).unwrap();
    let out = dfr_train::pim::pim_step(&model, &x, &y, None, &Default::default(), 0).unwrap();
    let stem = model.param("features.0.0.weight").unwrap();
    assert!(out.grads.get(stem.var().as_tensor()).is_none());
    let head = model.param("classifier.1.weight").unwrap();
    assert!(out.grads.get(head.var().as_tensor()).is_some());
}

/// Running statistics of every BatchNorm after one step, in model order.
fn running_stats(model: &dfr_model::EfficientNet) -> Vec<Vec<f32>> {
    model
        .named_buffers()
        .iter()
        .map(|(_, b)| b.get().flatten_all().unwrap().to_vec1::<f32>().unwrap())
        .collect()
}

/// `bn_update = "clean"` (the default): after a gradient-regularised step with r > 0 the
/// running statistics equal those of the clean pass alone (`frozen_shallow_step`, the same
/// seed); `"both"` updates them a second time from the perturbed features.
#[test]
fn only_the_clean_pass_updates_running_statistics_by_default() {
    use dfr_train::config::{BnUpdate, GradRegConfig};
    let dev = candle_core::Device::Cpu;
    let fresh = || {
        let cfg = dfr_model::EfficientNetConfig::new(dfr_model::Arch::B0, 2);
        let m = dfr_model::EfficientNet::new(cfg, &dev, 3).unwrap();
        m.set_stages_trainable(1, false);
        m
    };
    let x = candle_core::Tensor::rand(0f32, 1.0, (4, 3, 32, 32), &dev).unwrap();
    let y = candle_core::Tensor::new(&[0u32, 1, 0, 1], &dev).unwrap();
    let gr = GradRegConfig {
        alpha: 0.5,
        r: 0.5,
        ..Default::default()
    };
    assert_eq!(gr.bn_update, BnUpdate::Clean);

    let clean_only = fresh();
    let before = running_stats(&clean_only);
    dfr_train::pim::frozen_shallow_step(&clean_only, &x, &y, None, gr.stage, 11).unwrap();
    let want = running_stats(&clean_only);
    assert_ne!(want, before, "the clean pass updates the statistics");

    let model = fresh();
    let out = dfr_train::pim::pim_step(&model, &x, &y, None, &gr, 11).unwrap();
    assert!(out.loss_perturbed.is_some(), "the perturbed pass ran");
    assert_eq!(running_stats(&model), want);

    let both = fresh();
    let naive = GradRegConfig {
        bn_update: BnUpdate::Both,
        ..gr
    };
    dfr_train::pim::pim_step(&both, &x, &y, None, &naive, 11).unwrap();
    let got = running_stats(&both);
    assert_eq!(got.len(), want.len());
    // the shallow part (eval mode) is untouched either way; the deep part moved again
    assert_eq!(got[0], want[0]);
    assert_ne!(got, want);
}
