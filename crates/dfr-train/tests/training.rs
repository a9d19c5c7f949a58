//! End-to-end training on a tiny synthetic DFFD: reproducibility, the r = 0 and α = 0
//! reductions to baseline training, bad input, and non-finite losses.

use dfr_train::trainer::{files, train, TrainOptions};
use dfr_train::{ExperimentConfig, TrainError};

use crate::common::{config, tensors};

fn run(cfg: &ExperimentConfig) -> dfr_train::TrainOutcome {
    train(cfg, &TrainOptions::default()).unwrap()
}

#[test]
fn same_config_and_seed_give_bit_identical_weights_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let a = run(&config(dir.path(), "a", &["train.strategy=\"gradreg\""]));
    let b = run(&config(dir.path(), "b", &["train.strategy=\"gradreg\""]));
    assert_eq!(a.epochs.len(), 2);
    assert_eq!(
        tensors(&a.run_dir.join(files::LAST)),
        tensors(&b.run_dir.join(files::LAST))
    );
    for (x, y) in a.epochs.iter().zip(&b.epochs) {
        assert_eq!(
            (x.train_loss, x.val_loss, x.val_macro_f1, x.val_auc),
            (y.train_loss, y.val_loss, y.val_macro_f1, y.val_auc)
        );
    }
    // A different seed gives different weights (the comparison above can fail).
    let c = run(&config(
        dir.path(),
        "c",
        &["train.strategy=\"gradreg\"", "run.seed=7"],
    ));
    assert_ne!(
        tensors(&a.run_dir.join(files::LAST)),
        tensors(&c.run_dir.join(files::LAST))
    );
    // Logs and checkpoints are all there.
    for f in [
        files::CONFIG,
        files::METRICS_CSV,
        files::METRICS_JSONL,
        files::BEST,
        files::RESUME,
        files::SUMMARY,
        files::DATA_REPORT,
    ] {
        assert!(a.run_dir.join(f).is_file(), "{f} missing");
    }
    let csv = std::fs::read_to_string(a.run_dir.join(files::METRICS_CSV)).unwrap();
    assert_eq!(csv.lines().count(), 3, "header + 2 epochs:\n{csv}");
}

#[test]
fn r_zero_and_alpha_zero_reproduce_baseline_training_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let base = run(&config(dir.path(), "base", &["train.freeze_shallow=true"]));
    let r0 = run(&config(
        dir.path(),
        "r0",
        &["train.strategy=\"gradreg\"", "gradreg.r=0"],
    ));
    let a0 = run(&config(
        dir.path(),
        "a0",
        &["train.strategy=\"gradreg\"", "gradreg.alpha=0"],
    ));
    let reg = run(&config(
        dir.path(),
        "reg",
        &["train.strategy=\"gradreg\"", "gradreg.r=0.5"],
    ));
    let w = |o: &dfr_train::TrainOutcome| tensors(&o.run_dir.join(files::LAST));
    assert_eq!(w(&base), w(&r0), "r = 0 must reduce to baseline training");
    assert_eq!(w(&base), w(&a0), "α = 0 must ignore the perturbed pass");
    assert_ne!(
        w(&base),
        w(&reg),
        "a real perturbation must change training"
    );
    // The frozen shallow part never moves.
    let init = dfr_train::trainer::build_model(
        &config(dir.path(), "x", &["train.freeze_shallow=true"]),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let stem_init = init
        .param("features.0.0.weight")
        .unwrap()
        .var()
        .as_tensor()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let trained = &w(&reg)["features.0.0.weight"];
    let trained: Vec<f32> = trained
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(stem_init, trained);
}

#[test]
fn non_finite_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "nonfinite",
        &["train.lr=1e30", "train.checkpoint_every=1"],
    );
    let err = train(&cfg, &TrainOptions::default()).unwrap_err();
    assert!(matches!(err, TrainError::NonFinite { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("step"), "{msg}");
    assert!(
        cfg.run_dir().join(files::RESUME).is_file(),
        "the last good checkpoint is kept"
    );
}

#[test]
fn existing_run_needs_resume_and_finished_runs_are_reused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "once", &["train.epochs=1"]);
    run(&cfg);
    let err = train(&cfg, &TrainOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("--resume"), "{err}");
    let again = train(
        &cfg,
        &TrainOptions {
            resume: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(again.reused);
    assert_eq!(again.epochs.len(), 1);
    // Resuming with another configuration is refused.
    let other = config(dir.path(), "once", &["train.epochs=1", "train.lr=5e-4"]);
    let err = train(
        &other,
        &TrainOptions {
            resume: true,
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("different configuration"), "{err}");
}
