//! `cargo xtask parity [DIR]`: every parity check over a reference-vector directory.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;

/// The fixture directory: the argument, else [`dfr_parity::fixtures_dir`]
/// (`$REFERENCE_VECTORS` or `../shared/fixtures` beside the workspace).
pub fn fixtures_dir(arg: Option<PathBuf>) -> PathBuf {
    arg.unwrap_or_else(dfr_parity::fixtures_dir)
}

/// Runs all checks and fails if any does.
pub fn run(dir: Option<PathBuf>) -> Result<()> {
    let dir = fixtures_dir(dir);
    if !dir.is_dir() {
        bail!(
            "reference-vector directory `{}` not found; pass one as `cargo xtask parity DIR` \
             or set REFERENCE_VECTORS",
            dir.display()
        );
    }
    let mut report = dfr_parity::Report::new(&dir);
    let ctx = |what: &str| format!("{what} in {}", dir.display());
    let mut add = |prefix: &str, checks: Vec<dfr_parity::Check>| {
        report
            .checks
            .extend(checks.into_iter().map(|c| c.prefixed(prefix)))
    };
    add(
        "model",
        dfr_model::run_parity(&dir)
            .with_context(|| ctx("model vectors (b0_case, lite0)"))?
            .checks,
    );
    add(
        "pim",
        dfr_train::parity::check_pim_case(&dir).with_context(|| ctx("pim_case"))?,
    );
    add(
        "train",
        dfr_train::parity::check_train_trajectory(&dir)
            .with_context(|| ctx("train_trajectory"))?
            .checks,
    );
    add(
        "explain",
        dfr_explain::check_fixtures(&dir).with_context(|| ctx("gradcam/cam vectors"))?,
    );
    add(
        "metrics",
        dfr_metrics::check_metrics_case(&dir).with_context(|| ctx("metrics_case"))?,
    );
    println!("{report}");
    let failed = report.failures().len();
    if failed > 0 {
        bail!("{failed} parity checks failed");
    }
    Ok(())
}
