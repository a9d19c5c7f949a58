//! Parity with scikit-learn on the shared reference vectors (`metrics_case.json`).
//!
//! Directory: `$REFERENCE_VECTORS` or `../shared/fixtures` from the workspace root. A
//! missing file fails the test when `CI` is set, otherwise it is skipped with a notice.

use dfr_metrics::{check_metrics_case, BinaryReport, DEFAULT_THRESHOLD};

#[test]
fn metrics_case_matches_sklearn() {
    let Some(dir) = dfr_parity::fixtures_for_test(dfr_metrics::METRICS_CASE_FILE) else {
        return;
    };
    let path = dir.join(dfr_metrics::METRICS_CASE_FILE);
    let checks = check_metrics_case(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for c in &checks {
        eprintln!("{c}");
    }
    let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
    for required in [
        "accuracy",
        "f1_macro",
        "roc_auc",
        "average_precision",
        "eer",
        "confusion[1][1]",
    ] {
        assert!(
            names.contains(&required),
            "no check named {required}: {names:?}"
        );
    }
    let failed: Vec<_> = checks.iter().filter(|c| !c.passed).collect();
    assert!(failed.is_empty(), "parity failures: {failed:#?}");

    // The directory form of the path works too, and the report agrees with the checks.
    let again = check_metrics_case(path.parent().unwrap()).unwrap();
    assert_eq!(again, checks);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let labels: Vec<u8> = doc["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u8)
        .collect();
    let scores: Vec<f32> = doc["scores_fake"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    let report = BinaryReport::compute(&labels, &scores, DEFAULT_THRESHOLD).unwrap();
    let get = |name: &str| doc[name].as_f64().unwrap();
    for (name, ours) in [
        ("accuracy", report.accuracy),
        ("f1_macro", report.macro_f1),
        ("roc_auc", report.roc_auc),
        ("average_precision", report.average_precision),
        ("eer", report.eer),
    ] {
        assert!(
            (ours - get(name)).abs() <= 1e-9,
            "report {name}: {ours} vs {}",
            get(name)
        );
    }
}
