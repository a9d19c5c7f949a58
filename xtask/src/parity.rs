//! `cargo xtask parity [DIR]`: every parity check over a reference-vector directory.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;

/// The fixture directory: the argument, `$REFERENCE_VECTORS`, or `../shared/fixtures` beside
/// the workspace.
pub fn fixtures_dir(arg: Option<PathBuf>) -> PathBuf {
    arg.or_else(|| std::env::var_os("REFERENCE_VECTORS").map(PathBuf::from))
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/fixtures"
            ))
        })
}

/// One printed row: (name, error, tolerance, pass, note).
type Row = (String, f64, f64, bool, String);

/// A row of a [`dfr_model::parity::Check`]: its tolerance is `atol + rtol·max|reference|`.
fn model_row(prefix: &str, c: dfr_model::parity::Check) -> Row {
    let scale = (c.max_abs / c.max_rel.max(1e-30)).min(f64::MAX);
    (
        format!("{prefix}/{}", c.name),
        c.max_abs,
        c.atol + c.rtol * scale,
        c.passed,
        c.note,
    )
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
    let mut rows: Vec<Row> = Vec::new();
    let ctx = |what: &str| format!("{what} in {}", dir.display());
    for c in dfr_model::run_parity(&dir)
        .with_context(|| ctx("model vectors (b0_case, lite0)"))?
        .checks
    {
        rows.push(model_row("model", c));
    }
    for c in dfr_train::parity::check_pim_case(&dir).with_context(|| ctx("pim_case"))? {
        rows.push((
            format!("pim/{}", c.name),
            c.max_abs_error,
            c.tolerance,
            c.pass,
            String::new(),
        ));
    }
    let trajectory =
        dfr_train::parity::check_train_trajectory(&dir).with_context(|| ctx("train_trajectory"))?;
    rows.extend(trajectory.checks.into_iter().map(|c| model_row("train", c)));
    for c in dfr_explain::check_fixtures(&dir).with_context(|| ctx("gradcam/cam vectors"))? {
        rows.push((
            format!("explain/{}", c.name),
            c.max_abs_error,
            c.tolerance,
            c.pass,
            String::new(),
        ));
    }
    for c in dfr_metrics::check_metrics_case(&dir).with_context(|| ctx("metrics_case"))? {
        rows.push((
            format!("metrics/{}", c.name),
            c.abs_error,
            c.tolerance,
            c.pass,
            String::new(),
        ));
    }
    println!("reference vectors: {}", dir.display());
    println!(
        "{:<60} {:>11} {:>11}  result",
        "check", "max error", "tolerance"
    );
    for (name, err, tol, pass, note) in &rows {
        let result = if *pass { "ok" } else { "FAIL" };
        if note.is_empty() {
            println!("{name:<60} {err:>11.3e} {tol:>11.1e}  {result}");
        } else {
            println!("{name:<60} {err:>11.3e} {tol:>11.1e}  {result}  ({note})");
        }
    }
    let failed = rows.iter().filter(|r| !r.3).count();
    println!("{} passed, {} failed", rows.len() - failed, failed);
    if failed > 0 {
        bail!("{failed} parity checks failed");
    }
    Ok(())
}
