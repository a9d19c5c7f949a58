//! Robust evaluation: structure of the report, sanity checks (passing and failing),
//! writers, saved adversarial examples, bad input.

use crate::common;

use candle_core::{Device, Tensor};
use dfr_attacks::{
    evaluate_batches, evaluate_samples, parse_attacks, AttackError, AttackKind, EvalBatch,
    FnClassifier, RobustEvalConfig, RobustReport,
};
use dfr_data::synth::{generate, SplitCounts, SynthConfig};
use dfr_data::{DataConfig, EvalTransform, LayoutKind, Loader, LoaderConfig, Split, Transform};

/// The test split of a tiny synthetic DFFD (12 images at 32 px) and a B0 whose
/// BatchNorm statistics are calibrated on the train split (64 images).
fn synthetic_setup(dir: &std::path::Path) -> (Vec<dfr_data::Sample>, dfr_model::EfficientNet) {
    let cfg = SynthConfig {
        size: 32,
        seed: 3,
        train: SplitCounts {
            real_per_source: 8,
            fake_per_source: 8,
        },
        validation: SplitCounts {
            real_per_source: 1,
            fake_per_source: 1,
        },
        test: SplitCounts {
            real_per_source: 3,
            fake_per_source: 1,
        },
        trace_gain: 1,
    };
    let root = dir.join("synth");
    generate(&cfg, &root, false).unwrap();
    let ds = DataConfig::new(&root, LayoutKind::Dffd).scan().unwrap();
    let train = ds.split(Split::Train);
    let loader = Loader::new(
        train,
        Split::Train,
        Transform::Eval(EvalTransform { size: 32 }),
        LoaderConfig {
            batch_size: 64,
            shuffle: false,
            threads: 1,
            ..LoaderConfig::default()
        },
        0.0,
    )
    .unwrap();
    let b = loader.epoch(0, 0).next().unwrap().unwrap();
    let calib = Tensor::from_vec(b.images, b.shape.to_vec(), &Device::Cpu).unwrap();
    (ds.split(Split::Test), common::calibrated_b0_on(11, &calib))
}

fn check(report: &RobustReport, name: &str) -> bool {
    report
        .sanity
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no sanity check {name}"))
        .passed
}

#[test]
fn robust_evaluation_on_a_tiny_synthetic_set() {
    let dir = tempfile::tempdir().unwrap();
    let (samples, model) = synthetic_setup(dir.path());
    assert_eq!(samples.len(), 12); // 2 real sources x 3 + 6 fake sources x 1
    let adv_dir = dir.path().join("adv");
    let config = RobustEvalConfig {
        attacks: parse_attacks("all").unwrap(),
        eps: vec![8.0 / 255.0, 2.0 / 255.0],
        steps: 3,
        image_size: 32,
        batch_size: 5,
        limit: Some(10),
        steps_check: true,
        steps_check_samples: 4,
        save_adversarial: Some(adv_dir.clone()),
        threads: 1,
        ..RobustEvalConfig::default()
    };
    let report = evaluate_samples(&model, &samples, Split::Test, &config).unwrap();
    println!("{report}");
    assert_eq!(report.n_samples, 10);
    assert_eq!(report.n_real + report.n_fake, 10);
    assert!(
        report.n_real > 0 && report.n_fake > 0,
        "limit keeps both classes"
    );
    assert_eq!(report.attacks.len(), 4);
    let grid = config.eps_grid();
    assert_eq!(grid, vec![0.0, 2.0 / 255.0, 8.0 / 255.0]);
    for a in &report.attacks {
        assert_eq!(a.results.len(), 3);
        // ε = 0 reproduces the clean evaluation exactly
        let zero = &a.results[0];
        assert_eq!(zero.eps, 0.0);
        assert_eq!(zero.metrics.accuracy, report.clean.accuracy, "{}", a.attack);
        assert_eq!(zero.metrics.confusion, report.clean.confusion);
        assert_eq!(zero.linf_max, 0.0);
        for r in &a.results {
            assert!(
                r.linf_max <= r.eps + 1e-6,
                "{} at {}: {}",
                a.attack,
                r.eps,
                r.linf_max
            );
            assert_eq!(r.metrics.n, 10);
            let total: usize = r.per_source.iter().map(|p| p.n).sum();
            assert_eq!(total, 10);
            assert!(r.l2_mean >= r.linf_mean - 1e-9);
        }
    }
    // (accuracy vs ε is not checked here: a random-weight B0 is so non-linear that
    // sign steps of ε/5 overshoot at large ε; see the smooth-model test below)
    // worst case: no better than any single attack, per ε
    assert_eq!(report.worst_case.len(), 3);
    for (ei, w) in report.worst_case.iter().enumerate() {
        for a in &report.attacks {
            assert!(w.accuracy <= a.results[ei].metrics.accuracy + 1e-12);
        }
    }
    assert_eq!(report.worst_case[0].accuracy, report.clean.accuracy);
    // sanity checks
    for name in [
        "eps0_reproduces_clean",
        "linf_within_eps",
        "adversarial_in_unit_range",
        "more_steps_not_weaker",
        "no_gradient_masking",
    ] {
        assert!(check(&report, name), "{name} failed:\n{report}");
    }
    // table, JSON and CSV
    let table = report.to_string();
    assert!(table.contains("sanity checks") && table.contains("apgd") && table.contains("worst"));
    let jp = dir.path().join("out/report.json");
    report.write_json(&jp).unwrap();
    let back: RobustReport = serde_json::from_str(&std::fs::read_to_string(&jp).unwrap()).unwrap();
    assert_eq!(back.n_samples, report.n_samples);
    // (serde_json's default float parsing may differ in the last ulp)
    assert_eq!(back.attacks.len(), report.attacks.len());
    for (a, b) in back.attacks.iter().zip(&report.attacks) {
        assert_eq!(a.attack, b.attack);
        for (x, y) in a.results.iter().zip(&b.results) {
            assert_eq!(x.metrics.confusion, y.metrics.confusion);
            assert!((x.metrics.accuracy - y.metrics.accuracy).abs() < 1e-12);
            assert!((x.l2_mean - y.l2_mean).abs() < 1e-12);
            assert_eq!(x.per_source.len(), y.per_source.len());
        }
    }
    assert_eq!(back.sanity, report.sanity);
    let cp = dir.path().join("out/report.csv");
    report.write_csv(&cp).unwrap();
    let csv = std::fs::read_to_string(&cp).unwrap();
    let header = csv.lines().next().unwrap();
    let ncols = header.split(',').count();
    assert!(header.starts_with("attack,eps,"));
    assert!(csv.lines().all(|l| l.split(',').count() == ncols));
    assert!(csv.lines().any(|l| l.starts_with("worst,")));
    // no temporary files left behind
    let names: Vec<String> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    // saved adversarial examples: lossless, re-evaluate to the saved scores
    assert_eq!(report.adversarial_dir.as_deref(), Some(adv_dir.as_path()));
    let manifest: Vec<dfr_attacks::SavedFile> =
        serde_json::from_str(&std::fs::read_to_string(adv_dir.join("manifest.json")).unwrap())
            .unwrap();
    // 2 batches x (clean + 4 attacks x 3 eps)
    assert_eq!(manifest.len(), 2 * (1 + 4 * 3));
    let f = manifest
        .iter()
        .find(|f| f.attack == "pgd" && f.eps > 0.03)
        .unwrap();
    let (t, meta) = dfr_attacks::read_saved_batch(&adv_dir.join(&f.file), &Device::Cpu).unwrap();
    assert_eq!(meta["attack"], "pgd");
    // the saved step size and steps are the report's
    let r = report.get(AttackKind::Pgd, f.eps).unwrap();
    assert_eq!(meta["step_size"].parse::<f64>().unwrap(), r.step_size);
    assert_eq!(meta["steps"].parse::<usize>().unwrap(), r.steps);
    for kind in [AttackKind::Fgsm, AttackKind::Apgd] {
        let g = manifest
            .iter()
            .find(|g| g.attack == kind.name() && g.eps == f.eps)
            .unwrap();
        let (_, m) = dfr_attacks::read_saved_batch(&adv_dir.join(&g.file), &Device::Cpu).unwrap();
        let r = report.get(kind, f.eps).unwrap();
        assert_eq!(
            m["step_size"].parse::<f64>().unwrap(),
            r.step_size,
            "{kind}"
        );
        assert_eq!(m["steps"].parse::<usize>().unwrap(), r.steps, "{kind}");
    }
    let images = &t["images"];
    assert_eq!(images.dims(), &[f.n, 3, 32, 32]);
    let probs = candle_nn::ops::softmax_last_dim(&model.forward_t(images, false).unwrap()).unwrap();
    let fake: Vec<f32> = probs
        .narrow(1, 1, 1)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let saved: Vec<f32> = t["scores"].to_vec1().unwrap();
    assert_eq!(fake, saved);
    let delta_max = t["delta"]
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(delta_max <= f.eps as f32 + 1e-6);
}

#[test]
fn pgd_accuracy_does_not_increase_with_eps_on_a_smooth_model() {
    let s = 8;
    let model = common::linear_model(3 * s * s, 2, 8);
    let mut config = tiny_config("pgd,apgd");
    config.eps = [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
        .iter()
        .map(|e| e / 255.0)
        .collect();
    config.steps = 5;
    config.steps_check = true;
    config.steps_check_samples = 16;
    let batches: Vec<_> = (0..4)
        .map(|k| {
            let mut b = batch(8, s);
            b.images = common::images(8, s, 100 + k);
            b.ids = (0..8).map(|i| 8 * k + i).collect();
            Ok(b)
        })
        .collect();
    let report = evaluate_batches(&model, batches, &config).unwrap();
    println!("{report}");
    assert_eq!(report.n_samples, 32);
    for a in &report.attacks {
        for w in a.results.windows(2) {
            assert!(
                w[1].metrics.accuracy <= w[0].metrics.accuracy,
                "{}: accuracy rose from {} at eps {} to {} at eps {}",
                a.attack,
                w[0].metrics.accuracy,
                w[0].eps,
                w[1].metrics.accuracy,
                w[1].eps
            );
        }
    }
    assert!(report.sanity_passed(), "{report}");
    let pgd = report.get(AttackKind::Pgd, 16.0 / 255.0).unwrap();
    assert!(
        pgd.metrics.accuracy < report.clean.accuracy,
        "the attack works at all"
    );
}

fn batch(n: usize, s: usize) -> EvalBatch {
    EvalBatch {
        images: common::images(n, s, 1),
        labels: (0..n as u32).map(|i| i % 2).collect(),
        sources: (0..n)
            .map(|i| {
                if i % 2 == 0 {
                    "real_src".into()
                } else {
                    "fake_src".into()
                }
            })
            .collect(),
        ids: (0..n as u64).collect(),
    }
}

fn tiny_config(attacks: &str) -> RobustEvalConfig {
    RobustEvalConfig {
        attacks: parse_attacks(attacks).unwrap(),
        eps: vec![4.0 / 255.0],
        steps: 2,
        image_size: 8,
        batch_size: 4,
        ..RobustEvalConfig::default()
    }
}

#[test]
fn sanity_checks_flag_gradient_masking() {
    // constant logits: the input gradient is zero everywhere
    let constant = FnClassifier::new(
        |x: &Tensor| {
            let n = x.dim(0)?;
            let c = Tensor::new(&[[2.0f32, -1.0]], x.device())?.broadcast_as((n, 2))?;
            // depends on x with a zero derivative
            c.broadcast_add(&(x.reshape((n, ()))?.sum_keepdim(1)? * 0.0)?)
        },
        Some(2),
    );
    let report = evaluate_batches(&constant, vec![Ok(batch(4, 8))], &tiny_config("all")).unwrap();
    println!("{report}");
    assert!(!check(&report, "no_gradient_masking"));
    assert!(!report.sanity_passed());
    assert!(report
        .attacks
        .iter()
        .all(|a| a.results.iter().all(|r| r.masked_samples == 4)));
    // the other checks still pass: nothing moves
    assert!(check(&report, "eps0_reproduces_clean"));
    assert!(check(&report, "linf_within_eps"));

    // logits that ignore the input entirely (no gradient at all) and a quantising
    // model (zero gradient almost everywhere) are flagged too
    let ignores = FnClassifier::new(
        |x: &Tensor| {
            Tensor::new(&[[0.5f32, 0.0]], x.device())?
                .broadcast_as((x.dim(0)?, 2))?
                .contiguous()
        },
        Some(2),
    );
    let report = evaluate_batches(&ignores, vec![Ok(batch(4, 8))], &tiny_config("pgd")).unwrap();
    assert!(!check(&report, "no_gradient_masking"));
    let quantised = FnClassifier::new(
        |x: &Tensor| {
            let n = x.dim(0)?;
            let q = (x * 4.0)?.floor()?; // floor has a zero derivative in candle
            let m = q.reshape((n, ()))?.mean_keepdim(1)?;
            Tensor::cat(&[&m, &m.neg()?], 1)
        },
        Some(2),
    );
    let report = evaluate_batches(&quantised, vec![Ok(batch(4, 8))], &tiny_config("fgsm")).unwrap();
    assert!(!check(&report, "no_gradient_masking"));

    // a healthy smooth model passes
    let healthy = common::linear_model(3 * 8 * 8, 2, 4);
    let report = evaluate_batches(&healthy, vec![Ok(batch(4, 8))], &tiny_config("all")).unwrap();
    assert!(report.sanity_passed(), "{report}");
}

#[test]
fn bad_evaluation_input_is_a_typed_error() {
    let model = common::linear_model(3 * 8 * 8, 2, 4);
    let run = |cfg: &RobustEvalConfig| evaluate_batches(&model, vec![Ok(batch(4, 8))], cfg);
    let mut cfg = tiny_config("pgd");
    cfg.eps = vec![0.01, -0.01];
    assert!(matches!(run(&cfg), Err(AttackError::InvalidEps(_))));
    let mut cfg = tiny_config("pgd");
    cfg.steps = 0;
    assert!(matches!(run(&cfg), Err(AttackError::InvalidSteps { .. })));
    let mut cfg = tiny_config("pgd");
    cfg.image_size = 16;
    assert!(matches!(run(&cfg), Err(AttackError::InvalidInput(_))));
    let mut cfg = tiny_config("pgd");
    cfg.batch_size = 0;
    assert!(matches!(run(&cfg), Err(AttackError::InvalidParam { .. })));
    for (subset, limit) in [
        (vec![], None),
        (vec![2, 1], None),
        (vec![1, 1], None),
        (vec![1], Some(3)),
    ] {
        let mut cfg = tiny_config("pgd");
        cfg.subset = Some(subset.clone());
        cfg.limit = limit;
        match run(&cfg) {
            Err(AttackError::InvalidParam { name, .. }) => assert_eq!(name, "subset"),
            other => panic!("subset {subset:?}, limit {limit:?}: {other:?}"),
        }
    }
    assert!(matches!(
        parse_attacks("pgd,cw"),
        Err(AttackError::InvalidParam { .. })
    ));
    assert!(matches!(
        evaluate_batches(
            &model,
            Vec::<dfr_attacks::Result<EvalBatch>>::new(),
            &tiny_config("pgd")
        ),
        Err(AttackError::NoSamples)
    ));
    let mut b = batch(4, 8);
    b.labels[0] = 3;
    assert!(matches!(
        evaluate_batches(&model, vec![Ok(b)], &tiny_config("pgd")),
        Err(AttackError::InvalidInput(_))
    ));
    // a 1000-class model as a binary detector
    let imagenet = common::linear_model(3 * 8 * 8, 1000, 4);
    assert!(matches!(
        evaluate_batches(&imagenet, vec![Ok(batch(4, 8))], &tiny_config("pgd")),
        Err(AttackError::ClassMismatch {
            expected: 2,
            found: 1000
        })
    ));
    let undeclared = FnClassifier::new(
        |x: &Tensor| {
            x.reshape((x.dim(0)?, ()))?
                .repeat((1, 6))?
                .narrow(1, 0, 1000)
        },
        None,
    );
    assert!(matches!(
        evaluate_batches(&undeclared, vec![Ok(batch(4, 8))], &tiny_config("pgd")),
        Err(AttackError::ClassMismatch {
            expected: 2,
            found: 1000
        })
    ));
}

/// An image of a subset is attacked as it is in the whole list: its random start is keyed by
/// its index in the list, not by its place in the subset, and its outcome does not depend on
/// the other images of its batch. What lets the study's worst case attack only the images
/// the earlier attacks left, with the same per-image outcomes.
#[test]
fn a_subset_is_evaluated_as_in_the_whole_list() {
    let dir = tempfile::tempdir().unwrap();
    let (samples, model) = synthetic_setup(dir.path());
    let config = RobustEvalConfig {
        attacks: vec![AttackKind::Pgd, AttackKind::Apgd],
        eps: vec![4.0 / 255.0],
        steps: 3,
        random_start: true,
        seed: 5,
        image_size: 32,
        batch_size: 5,
        threads: 1,
        ..RobustEvalConfig::default()
    };
    let all = evaluate_samples(&model, &samples, Split::Test, &config).unwrap();
    assert_eq!(all.per_sample.index, (0..samples.len()).collect::<Vec<_>>());
    let pick = vec![1, 4, 7, 10, 11];
    let sub = RobustEvalConfig {
        subset: Some(pick.clone()),
        ..config.clone()
    };
    let part = evaluate_samples(&model, &samples, Split::Test, &sub).unwrap();
    assert_eq!(part.n_samples, pick.len());
    assert_eq!(part.per_sample.index, pick);
    for (k, &i) in pick.iter().enumerate() {
        assert_eq!(part.per_sample.labels[k], all.per_sample.labels[i]);
        assert!((part.per_sample.clean_score[k] - all.per_sample.clean_score[i]).abs() < 1e-5);
        for a in 0..2 {
            for e in 0..2 {
                assert_eq!(
                    part.per_sample.adv_pred[a][e][k], all.per_sample.adv_pred[a][e][i],
                    "attack {a}, ε index {e}, sample {i}"
                );
            }
        }
    }
    // `limit` keeps the ids of the spread samples too.
    let spread = RobustEvalConfig {
        limit: Some(4),
        ..config.clone()
    };
    let r = evaluate_samples(&model, &samples, Split::Test, &spread).unwrap();
    assert_eq!(
        r.per_sample.index,
        dfr_attacks::eval::spread_indices(samples.len(), Some(4))
    );
    let beyond = RobustEvalConfig {
        subset: Some(vec![3, samples.len()]),
        ..config
    };
    assert!(matches!(
        evaluate_samples(&model, &samples, Split::Test, &beyond),
        Err(AttackError::InvalidParam { .. })
    ));
}
