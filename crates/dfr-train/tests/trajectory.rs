//! The whole training loop against PyTorch: 40 Adam steps on one batch
//! (`train_trajectory.safetensors`).

#[test]
fn forty_step_trajectory_matches_pytorch() {
    let Some(dir) = crate::common::fixtures("train_trajectory.safetensors") else {
        return;
    };
    let t = dfr_train::parity::check_train_trajectory(&dir).unwrap();
    let rel = t.relative_differences();
    for (i, ((a, b), r)) in t.loss.iter().zip(&t.reference).zip(&rel).enumerate() {
        eprintln!("step {i:2}: ours {a:.5} reference {b:.5} rel {r:.2e}");
    }
    for c in &t.checks {
        eprintln!("{:<45} max rel {:.3e}", c.name, c.max_rel);
    }
    assert_eq!(t.loss.len(), 40);
    // The loop must actually learn: the fixture's loss falls over the 40 steps, and so must ours.
    assert!(t.loss[39] < 0.5 * t.loss[0], "loss {:?}", t.loss);
    let failed: Vec<_> = t.checks.iter().filter(|c| !c.passed).collect();
    assert!(failed.is_empty(), "failed: {failed:#?}");
}
