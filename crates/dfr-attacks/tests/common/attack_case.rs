//! The attack_case reference vectors and the parity criterion.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use dfr_attacks::{perturbation_norms, run_attack, AttackKind, AttackParams, Goal};
use dfr_model::EfficientNet;

/// Loaded fixture and the B0 fixture model.
pub struct AttackCase {
    pub tensors: HashMap<String, Tensor>,
    pub model: EfficientNet,
    pub labels: Vec<u32>,
    pub eps: f32,
    pub alpha: f32,
    pub decay: f32,
    pub steps: usize,
}

impl AttackCase {
    pub fn load(dir: &Path) -> Self {
        let dev = Device::Cpu;
        let tensors =
            candle_core::safetensors::load(dir.join("attack_case.safetensors"), &dev).unwrap();
        let model = dfr_model::parity::load_b0_fixture_model(dir, &dev).expect("B0 model");
        let labels = tensors["y"]
            .to_vec1::<i64>()
            .unwrap()
            .iter()
            .map(|v| *v as u32)
            .collect();
        let f = |k: &str| tensors[k].flatten_all().unwrap().to_vec1::<f32>().unwrap()[0];
        let steps = tensors["steps"]
            .flatten_all()
            .unwrap()
            .to_vec1::<i64>()
            .unwrap()[0] as usize;
        Self {
            eps: f("eps"),
            alpha: f("alpha"),
            decay: f("decay"),
            steps,
            labels,
            model,
            tensors,
        }
    }
}

/// Outcome of one attack's comparison.
pub struct ParityResult {
    pub fraction_within: f64,
    pub max_diff: f32,
    pub logits_diff: f32,
    pub passed: bool,
}

/// Runs `kind` with the fixture's parameters and compares with tensor `name`.
pub fn check_attack(case: &AttackCase, kind: AttackKind, name: &str) -> ParityResult {
    let params = AttackParams {
        kind,
        eps: case.eps,
        steps: case.steps,
        alpha: Some(case.alpha),
        random_start: false,
        decay: case.decay,
        ..AttackParams::default()
    };
    let x = &case.tensors["x"];
    let out = run_attack(
        &case.model,
        &params,
        x,
        &case.labels,
        Goal::Untargeted,
        None,
    )
    .unwrap();
    let got: Vec<f32> = out.adversarial.flatten_all().unwrap().to_vec1().unwrap();
    let want: Vec<f32> = case.tensors[name].flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(got.len(), want.len());
    let mut within = 0usize;
    let mut max_diff = 0f32;
    for (a, b) in got.iter().zip(&want) {
        let d = (a - b).abs();
        within += usize::from(d <= 1e-5);
        max_diff = max_diff.max(d);
    }
    let fraction_within = within as f64 / got.len() as f64;
    let logits = case.model.forward_t(&out.adversarial, false).unwrap();
    let want_logits = &case.tensors[&format!("logits.{name}")];
    let logits_diff = (&logits - want_logits)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    let scale = want_logits
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    let (linf, _) = perturbation_norms(x, &out.adversarial).unwrap();
    let in_ball = linf.iter().all(|v| *v <= case.eps + 1e-6);
    let passed = fraction_within >= 0.99
        && max_diff <= 2.0 * case.eps
        && logits_diff <= 1e-4 + 1e-3 * scale
        && in_ball;
    println!(
        "{name}: {:.4}% of elements within 1e-5, max |diff| {max_diff:.3e} (2 eps = {:.3e}); \
         logits max |diff| {logits_diff:.3e} (max |logit| {scale:.2}); max ||delta||_inf {:.6} -> {}",
        fraction_within * 100.0,
        2.0 * case.eps,
        linf.iter().fold(0f32, |a, b| a.max(*b)),
        if passed { "ok" } else { "FAIL" }
    );
    ParityResult {
        fraction_within,
        max_diff,
        logits_diff,
        passed,
    }
}
