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
    let mut failed = 0usize;
    let mut total = 0usize;
    println!("reference vectors: {}", dir.display());
    println!("{:<44} {:>12} {:>12} {}", "check", "error", "tolerance", "");
    let metrics = dfr_metrics::check_metrics_case(&dir)
        .with_context(|| format!("metrics_case in {}", dir.display()))?;
    for c in metrics {
        total += 1;
        failed += usize::from(!c.pass);
        println!(
            "{:<44} {:>12.3e} {:>12.1e} {}",
            format!("metrics/{}", c.name),
            c.abs_error,
            c.tolerance,
            if c.pass { "ok" } else { "FAIL" }
        );
    }
    println!("{} passed, {} failed", total - failed, failed);
    if failed > 0 {
        bail!("{failed} parity checks failed");
    }
    Ok(())
}
