//! Properties of the attacks: ε-ball and [0, 1], targeted attacks, APGD best-loss
//! tracking, seeded random starts, frozen parameters, bad input.

use crate::common;

use candle_core::{Tensor, D};
use dfr_attacks::{
    perturbation_norms, run_attack, AttackError, AttackKind, AttackParams, Classifier, Goal,
};

fn log_probs(model: &impl Classifier, x: &Tensor) -> Vec<Vec<f32>> {
    candle_nn::ops::log_softmax(&model.logits(x).unwrap(), D::Minus1)
        .unwrap()
        .to_vec2()
        .unwrap()
}

fn check_ball(clean: &Tensor, adv: &Tensor, eps: f32, what: &str) {
    let (linf, _) = perturbation_norms(clean, adv).unwrap();
    for (i, v) in linf.iter().enumerate() {
        assert!(
            *v <= eps + 1e-6,
            "{what}: sample {i} ||delta||_inf = {v} > {eps}"
        );
    }
    let lo = adv.min_all().unwrap().to_scalar::<f32>().unwrap();
    let hi = adv.max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(
        (0.0..=1.0).contains(&lo) && hi <= 1.0,
        "{what}: range [{lo}, {hi}]"
    );
}

#[test]
fn every_attack_stays_in_the_ball_and_unit_range() {
    let (n, s) = (6, 8);
    let model = common::linear_model(3 * s * s, 2, 1);
    let x = common::images(n, s, 2);
    let labels = [0u32, 1, 0, 1, 1, 0];
    let targets: Vec<u32> = labels.iter().map(|l| 1 - l).collect();
    for kind in AttackKind::ALL {
        for eps in [0.0f32, 1.0 / 255.0, 0.03, 0.3] {
            for random_start in [false, true] {
                for targeted in [false, true] {
                    let p = AttackParams {
                        kind,
                        eps,
                        steps: 7,
                        random_start,
                        seed: 5,
                        ..AttackParams::default()
                    };
                    let goal = if targeted {
                        Goal::Targeted(&targets)
                    } else {
                        Goal::Untargeted
                    };
                    let out = run_attack(&model, &p, &x, &labels, goal, None).unwrap();
                    let what = format!("{kind} eps {eps} rs {random_start} targeted {targeted}");
                    check_ball(&x, &out.adversarial, eps, &what);
                    if eps == 0.0 {
                        let d = (&out.adversarial - &x).unwrap().abs().unwrap();
                        assert_eq!(
                            d.max_all().unwrap().to_scalar::<f32>().unwrap(),
                            0.0,
                            "{what}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn attacks_on_efficientnet_stay_in_the_ball_and_restore_trainable_params() {
    let model = common::small_b0(3);
    let x = common::images(2, 32, 4);
    let labels = [0u32, 1];
    for kind in AttackKind::ALL {
        let p = AttackParams {
            kind,
            eps: 8.0 / 255.0,
            steps: 3,
            random_start: true,
            ..AttackParams::default()
        };
        let out = run_attack(&model, &p, &x, &labels, Goal::Untargeted, None).unwrap();
        check_ball(&x, &out.adversarial, p.eps, kind.name());
        assert_eq!(
            out.grad_stats.evaluations,
            if kind == AttackKind::Fgsm {
                1
            } else if kind == AttackKind::Apgd {
                4
            } else {
                3
            }
        );
    }
    // the attack froze the parameters only while it ran
    assert!(model.named_params().iter().all(|(_, p)| p.is_trainable()));
    model.set_trainable_where(false, |n| n.starts_with("features.0"));
    let p = AttackParams::new(AttackKind::Fgsm, 0.01);
    run_attack(&model, &p, &x, &labels, Goal::Untargeted, None).unwrap();
    for (name, p) in model.named_params() {
        assert_eq!(p.is_trainable(), !name.starts_with("features.0"), "{name}");
    }
}

#[test]
fn untargeted_attacks_raise_the_loss() {
    let (n, s) = (4, 8);
    let model = common::linear_model(3 * s * s, 2, 11);
    let x = common::images(n, s, 12);
    let labels = [0u32, 1, 1, 0];
    let clean = log_probs(&model, &x);
    for kind in AttackKind::ALL {
        let p = AttackParams {
            kind,
            eps: 0.02,
            steps: 10,
            ..AttackParams::default()
        };
        let out = run_attack(&model, &p, &x, &labels, Goal::Untargeted, None).unwrap();
        let adv = log_probs(&model, &out.adversarial);
        for i in 0..n {
            let l = labels[i] as usize;
            assert!(
                adv[i][l] < clean[i][l],
                "{kind}: sample {i}: log p(label) {} -> {}",
                clean[i][l],
                adv[i][l]
            );
        }
    }
}

#[test]
fn targeted_attacks_increase_the_target_logit() {
    // a smooth model: one sign step moves along the first-order direction
    let (n, s) = (4, 8);
    let model = common::linear_model(3 * s * s, 3, 21);
    let x = common::images(n, s, 22);
    let labels = [0u32, 1, 2, 0];
    let targets = [1u32, 2, 0, 2];
    let clean_logits: Vec<Vec<f32>> = model.logits(&x).unwrap().to_vec2().unwrap();
    let clean = log_probs(&model, &x);
    for kind in AttackKind::ALL {
        let p = AttackParams {
            kind,
            eps: 2.0 / 255.0,
            steps: 5,
            ..AttackParams::default()
        };
        let out = run_attack(&model, &p, &x, &labels, Goal::Targeted(&targets), None).unwrap();
        let adv_logits: Vec<Vec<f32>> = model.logits(&out.adversarial).unwrap().to_vec2().unwrap();
        let adv = log_probs(&model, &out.adversarial);
        for i in 0..n {
            let t = targets[i] as usize;
            assert!(
                adv_logits[i][t] > clean_logits[i][t],
                "{kind}: target logit of sample {i}: {} -> {}",
                clean_logits[i][t],
                adv_logits[i][t]
            );
            assert!(
                adv[i][t] > clean[i][t],
                "{kind}: log p(target) of sample {i}"
            );
        }
    }
    // EfficientNet (random weights, calibrated BN: a very non-linear function): APGD's
    // best-loss tracking guarantees the target probability never drops
    let model = common::calibrated_b0(7, 32);
    let x = common::images(3, 32, 8);
    let labels = [0u32, 1, 0];
    let targets = [1u32, 0, 1];
    let clean = log_probs(&model, &x);
    let p = AttackParams {
        kind: AttackKind::Apgd,
        eps: 4.0 / 255.0,
        steps: 5,
        ..AttackParams::default()
    };
    let out = run_attack(&model, &p, &x, &labels, Goal::Targeted(&targets), None).unwrap();
    let adv = log_probs(&model, &out.adversarial);
    for i in 0..3 {
        let t = targets[i] as usize;
        assert!(
            adv[i][t] >= clean[i][t] - 1e-5,
            "APGD: log p(target) {} -> {}",
            clean[i][t],
            adv[i][t]
        );
    }
    assert!(
        (0..3)
            .map(|i| adv[i][targets[i] as usize] - clean[i][targets[i] as usize])
            .sum::<f32>()
            > 0.0
    );
}

#[test]
fn apgd_best_loss_is_monotone_and_never_below_the_clean_loss() {
    let model = common::calibrated_b0(5, 32);
    let x = common::images(3, 32, 6);
    let labels = [1u32, 0, 1];
    let p = AttackParams {
        kind: AttackKind::Apgd,
        eps: 2.0 / 255.0,
        steps: 12,
        random_start: false,
        ..AttackParams::default()
    };
    let out = run_attack(&model, &p, &x, &labels, Goal::Untargeted, None).unwrap();
    let trace = out.best_loss_trace.expect("APGD returns its trace");
    assert_eq!(trace.len(), 13);
    let clean = log_probs(&model, &x);
    for i in 0..3 {
        let clean_loss = -clean[i][labels[i] as usize];
        assert!(
            (trace[0][i] - clean_loss).abs() < 1e-4,
            "row 0 is the clean loss"
        );
        for k in 1..trace.len() {
            assert!(
                trace[k][i] >= trace[k - 1][i],
                "best loss decreased at step {k}"
            );
        }
        assert!(trace[12][i] >= clean_loss);
    }
    // returned images: the loss of a non-successful sample is its best loss
    let adv = log_probs(&model, &out.adversarial);
    let success = out.success.unwrap();
    for i in 0..3 {
        let l = -adv[i][labels[i] as usize];
        if !success[i] {
            assert!(
                (l - trace[12][i]).abs() < 1e-3,
                "sample {i}: {l} vs best {}",
                trace[12][i]
            );
        }
        assert!(l >= -clean[i][labels[i] as usize] - 1e-4);
    }
}

#[test]
fn random_start_is_seeded_and_batch_independent() {
    let (n, s) = (3, 8);
    let model = common::linear_model(3 * s * s, 2, 1);
    let x = common::images(n, s, 9);
    let labels = [0u32, 1, 0];
    let eps = 0.05;
    // α = 0: the output is the random starting point itself
    let start = |seed: u64, kind: AttackKind, x: &Tensor, labels: &[u32], ids: &[u64]| {
        let p = AttackParams {
            kind,
            eps,
            steps: 1,
            alpha: Some(0.0),
            random_start: true,
            seed,
            ..AttackParams::default()
        };
        run_attack(&model, &p, x, labels, Goal::Untargeted, Some(ids))
            .unwrap()
            .adversarial
    };
    let ids = [10u64, 11, 12];
    let a = start(1, AttackKind::Pgd, &x, &labels, &ids);
    let b = start(1, AttackKind::Pgd, &x, &labels, &ids);
    let c = start(2, AttackKind::Pgd, &x, &labels, &ids);
    let diff = |u: &Tensor, v: &Tensor| {
        (u - v)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    assert_eq!(diff(&a, &b), 0.0, "same seed, same start");
    assert!(diff(&a, &c) > 0.0, "another seed, another start");
    assert!(diff(&a, &x) > 0.0 && diff(&a, &x) <= eps + 1e-6);
    // the noise of a sample depends on its id, not on its batch
    let single = start(
        1,
        AttackKind::Pgd,
        &x.narrow(0, 1, 1).unwrap(),
        &labels[1..2],
        &ids[1..2],
    );
    assert_eq!(diff(&single, &a.narrow(0, 1, 1).unwrap()), 0.0);
    // full PGD runs are reproducible too
    let p = AttackParams {
        kind: AttackKind::Pgd,
        eps,
        steps: 4,
        random_start: true,
        seed: 3,
        ..AttackParams::default()
    };
    let r1 = run_attack(&model, &p, &x, &labels, Goal::Untargeted, None).unwrap();
    let r2 = run_attack(&model, &p, &x, &labels, Goal::Untargeted, None).unwrap();
    assert_eq!(diff(&r1.adversarial, &r2.adversarial), 0.0);
    // APGD's start: x + eps * t / ||t||_inf, so one element per sample sits at eps
    // (unless clamped)
    let p = AttackParams {
        kind: AttackKind::Apgd,
        eps,
        steps: 3,
        random_start: true,
        seed: 3,
        ..AttackParams::default()
    };
    let r1 = run_attack(&model, &p, &x, &labels, Goal::Untargeted, None).unwrap();
    let r2 = run_attack(&model, &p, &x, &labels, Goal::Untargeted, None).unwrap();
    assert_eq!(diff(&r1.adversarial, &r2.adversarial), 0.0);
}

#[test]
fn bad_attack_parameters_are_typed_errors() {
    let model = common::linear_model(3 * 4 * 4, 2, 1);
    let x = common::images(2, 4, 1);
    let labels = [0u32, 1];
    let run = |p: AttackParams| run_attack(&model, &p, &x, &labels, Goal::Untargeted, None);
    assert!(matches!(
        run(AttackParams::new(AttackKind::Pgd, -0.1)),
        Err(AttackError::InvalidEps(_))
    ));
    assert!(matches!(
        run(AttackParams::new(AttackKind::Fgsm, f32::NAN)),
        Err(AttackError::InvalidEps(_))
    ));
    assert!(matches!(
        run(AttackParams::new(AttackKind::Fgsm, 1.5)),
        Err(AttackError::InvalidEps(_))
    ));
    for kind in [AttackKind::Pgd, AttackKind::MiFgsm, AttackKind::Apgd] {
        let p = AttackParams {
            kind,
            steps: 0,
            ..AttackParams::default()
        };
        assert!(
            matches!(run(p), Err(AttackError::InvalidSteps { .. })),
            "{kind}"
        );
    }
    let p = AttackParams {
        alpha: Some(-1.0),
        ..AttackParams::default()
    };
    assert!(matches!(
        run(p),
        Err(AttackError::InvalidParam { name: "alpha", .. })
    ));
    let p = AttackParams {
        class_weights: Some(vec![1.0, 2.0, 3.0]),
        ..AttackParams::default()
    };
    assert!(matches!(
        run(p),
        Err(AttackError::InvalidParam {
            name: "class_weights",
            ..
        })
    ));
    // labels out of range, wrong count, images outside [0, 1], wrong rank
    let p = AttackParams::default();
    assert!(matches!(
        run_attack(&model, &p, &x, &[0, 2], Goal::Untargeted, None),
        Err(AttackError::InvalidInput(_))
    ));
    assert!(matches!(
        run_attack(&model, &p, &x, &[0], Goal::Untargeted, None),
        Err(AttackError::InvalidInput(_))
    ));
    let bad = (&x * 2.0).unwrap();
    assert!(matches!(
        run_attack(&model, &p, &bad, &labels, Goal::Untargeted, None),
        Err(AttackError::InvalidInput(_))
    ));
    let flat = x.flatten_all().unwrap();
    assert!(matches!(
        run_attack(&model, &p, &flat, &labels, Goal::Untargeted, None),
        Err(AttackError::InvalidInput(_))
    ));
    assert!(matches!(
        run_attack(&model, &p, &x, &labels, Goal::Targeted(&[0, 5]), None),
        Err(AttackError::InvalidInput(_))
    ));
    // class weights (valid) run
    let p = AttackParams {
        class_weights: Some(vec![0.5, 2.0]),
        ..AttackParams::default()
    };
    assert!(run(p).is_ok());
}

#[test]
fn an_attack_grid_gives_what_each_attack_gives_alone() {
    let (n, s) = (4, 8);
    let model = common::small_b0(3);
    let x = common::images(n, s, 5);
    let labels = [0u32, 1, 1, 0];
    let config = dfr_attacks::RobustEvalConfig {
        eps: vec![0.002, 0.01, 0.03],
        ..Default::default()
    };
    for kind in [AttackKind::Fgsm, AttackKind::Pgd] {
        // ε = 0 included: its parameters differ in `steps` too (one step), which FGSM ignores.
        let grid: Vec<AttackParams> = config
            .eps_grid()
            .iter()
            .map(|&e| config.params(kind, e).unwrap())
            .collect();
        let all = dfr_attacks::run_attack_grid(&model, &grid, &x, &labels, Goal::Untargeted, None)
            .unwrap();
        assert_eq!(all.len(), grid.len());
        for (p, out) in grid.iter().zip(&all) {
            let one = run_attack(&model, p, &x, &labels, Goal::Untargeted, None).unwrap();
            let (a, b) = (
                out.adversarial
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap(),
                one.adversarial
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap(),
            );
            assert_eq!(a, b, "{kind:?} ε {}", p.eps);
            assert_eq!(out.grad_stats, one.grad_stats, "{kind:?} ε {}", p.eps);
            check_ball(&x, &out.adversarial, p.eps, "grid");
        }
        // The FGSM images differ between ε (the test is not vacuous).
        let first = all[1]
            .adversarial
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let last = all[3]
            .adversarial
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_ne!(first, last);
    }
}

/// PGD continued for k more steps from its k-step images is the 2k-step PGD, bit for bit
/// (random start included; the steps check relies on it), and only PGD can be continued.
#[test]
fn pgd_continued_is_pgd_with_the_steps_added() {
    let (n, s) = (3, 8);
    let model = common::small_b0(4);
    let x = common::images(n, s, 6);
    let labels = [1u32, 0, 1];
    let ids = [7u64, 8, 9];
    let mut p = AttackParams::new(AttackKind::Pgd, 0.02);
    p.random_start = true;
    p.alpha = Some(0.004);
    p.steps = 3;
    let flat = |t: &candle_core::Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let k = run_attack(&model, &p, &x, &labels, Goal::Untargeted, Some(&ids)).unwrap();
    let cont = dfr_attacks::continue_pgd(
        &model,
        &p,
        &x,
        &k.adversarial,
        &labels,
        Goal::Untargeted,
        Some(&ids),
    )
    .unwrap();
    let mut p2 = p.clone();
    p2.steps = 6;
    let direct = run_attack(&model, &p2, &x, &labels, Goal::Untargeted, Some(&ids)).unwrap();
    assert_eq!(flat(&cont.adversarial), flat(&direct.adversarial));
    assert_ne!(
        flat(&k.adversarial),
        flat(&direct.adversarial),
        "vacuous: 3 more steps changed nothing"
    );
    check_ball(&x, &cont.adversarial, p.eps, "continued");
    let mut mi = p.clone();
    mi.kind = AttackKind::MiFgsm;
    let e = dfr_attacks::continue_pgd(
        &model,
        &mi,
        &x,
        &k.adversarial,
        &labels,
        Goal::Untargeted,
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("PGD"), "{e}");
}
