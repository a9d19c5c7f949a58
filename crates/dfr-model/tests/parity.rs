//! Parity with the PyTorch reference vectors.

use crate::common;

use dfr_model::parity::{b0_checks, lite0_checks, ParityReport};

fn assert_report(name: &str, checks: Vec<dfr_model::parity::Check>, dir: std::path::PathBuf) {
    let report = ParityReport { dir, checks };
    println!("{name}:\n{report}");
    assert!(report.all_passed(), "{name} parity failed:\n{report}");
}

#[test]
fn b0_case_parity() {
    let Some(dir) = common::fixtures() else {
        return;
    };
    let mut checks = Vec::new();
    b0_checks(&dir, &mut checks).expect("b0 fixtures");
    assert_eq!(checks.len(), 1 + 1 + 1 + 6 + 1 + 13 + 2);
    assert_report("b0_case", checks, dir);
}

#[test]
fn lite0_imagenet_parity() {
    let Some(dir) = common::fixtures() else {
        return;
    };
    let mut checks = Vec::new();
    lite0_checks(&dir, &mut checks).expect("lite0 fixtures");
    assert_eq!(checks.len(), 2);
    assert_report("lite0", checks, dir);
}
