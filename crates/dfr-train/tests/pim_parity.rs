//! The Perturbation Injection Module against PyTorch (`pim_case.safetensors`).

use std::path::PathBuf;

fn fixtures() -> Option<PathBuf> {
    let dir = std::env::var_os("REFERENCE_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/fixtures"
            ))
        });
    if dir.join("pim_case.safetensors").is_file() {
        return Some(dir);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "reference vectors not found at {} (CI is set: they are required)",
            dir.display()
        );
    }
    eprintln!("skipping: reference vectors not found at {}", dir.display());
    None
}

#[test]
fn pim_step_matches_pytorch() {
    let Some(dir) = fixtures() else { return };
    let checks = dfr_train::parity::check_pim_case(&dir).unwrap();
    for c in &checks {
        eprintln!(
            "{:<45} {:.3e} (tol {:.1e})",
            c.name, c.max_abs_error, c.tolerance
        );
    }
    assert_eq!(
        checks
            .iter()
            .filter(|c| c.name.starts_with("grad."))
            .count(),
        5
    );
    assert!(checks.len() >= 15);
    let failed: Vec<_> = checks.iter().filter(|c| !c.pass).collect();
    assert!(failed.is_empty(), "failed: {failed:?}");
}

#[test]
fn frozen_shallow_part_gets_no_gradient() {
    let Some(dir) = fixtures() else { return };
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
