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
