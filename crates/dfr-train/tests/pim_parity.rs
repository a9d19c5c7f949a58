//! The Perturbation Injection Module against PyTorch (`pim_case.safetensors`).

use candle_core::{Device, Tensor};
use dfr_train::config::{Direction, GradRegConfig, NormScope};
use dfr_train::pim::pim_step;
use std::collections::HashMap;
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

fn max_abs(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

fn max_ref(b: &Tensor) -> f32 {
    b.abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

fn scalar(t: &HashMap<String, Tensor>, name: &str) -> f32 {
    t[name].flatten_all().unwrap().to_vec1::<f32>().unwrap()[0]
}

#[test]
fn pim_step_matches_pytorch() {
    let Some(dir) = fixtures() else { return };
    let dev = Device::Cpu;
    let model = dfr_model::parity::load_b0_fixture_model(&dir, &dev).unwrap();
    model.set_stages_trainable(1, false);
    let case = candle_core::safetensors::load(dir.join("pim_case.safetensors"), &dev).unwrap();
    let cfg = GradRegConfig {
        alpha: scalar(&case, "alpha") as f64,
        r: scalar(&case, "r") as f64,
        stage: 1,
        direction: Direction::Gradient,
        norm: NormScope::Batch,
    };
    let y = case["y"].to_dtype(candle_core::DType::U32).unwrap();
    let out = pim_step(&model, &case["x"], &y, Some(&case["class_weight"]), &cfg, 0).unwrap();

    // (name, ours, relative tolerance of the largest reference value)
    let checks: Vec<(&str, &Tensor, f32)> = vec![
        ("shallow_features", &out.features, 1e-4),
        ("mu", &out.mu, 1e-4),
        ("sigma", &out.sigma, 1e-4),
        ("grad_mu", &out.grad_mu, 1e-3),
        ("grad_sigma", &out.grad_sigma, 1e-3),
        ("delta_mu", &out.delta_mu, 1e-3),
        ("delta_sigma", &out.delta_sigma, 1e-3),
    ];
    for (name, ours, rtol) in checks {
        let reference = &case[name];
        let err = max_abs(ours, reference);
        let tol = rtol * max_ref(reference).max(1e-6) + 1e-7;
        eprintln!("{name}: max abs {err:.3e} (tol {tol:.1e})");
        assert!(err <= tol, "{name}: max abs error {err} > {tol}");
    }
    for (name, ours) in [
        ("loss_clean", out.loss_clean),
        (
            "loss_perturbed",
            out.loss_perturbed.expect("perturbed pass ran"),
        ),
        ("loss_total", out.loss_total),
    ] {
        let r = scalar(&case, name);
        eprintln!("{name}: ours {ours} reference {r}");
        assert!(
            (ours - r).abs() <= 1e-4 * r.abs().max(1.0),
            "{name}: {ours} vs {r}"
        );
    }
    let mut n = 0;
    for (key, reference) in case.iter().filter(|(k, _)| k.starts_with("grad.")) {
        let pname = &key["grad.".len()..];
        let p = model
            .param(pname)
            .unwrap_or_else(|| panic!("no parameter {pname}"));
        let g = out
            .grads
            .get(p.var().as_tensor())
            .unwrap_or_else(|| panic!("no gradient for {pname}"));
        let err = max_abs(g, reference);
        let tol = 1e-3 * max_ref(reference) + 1e-7;
        eprintln!("{key}: max abs {err:.3e} (tol {tol:.1e})");
        assert!(err <= tol, "{key}: {err} > {tol}");
        n += 1;
    }
    assert_eq!(n, 5, "five parameter gradients in the fixture");
    // The shallow part is frozen: no gradient reaches it.
    let stem = model.param("features.0.0.weight").unwrap();
    assert!(out.grads.get(stem.var().as_tensor()).is_none());
}
