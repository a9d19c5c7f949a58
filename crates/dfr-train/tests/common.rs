//! Shared test support: the reference-vector directory.

use std::path::PathBuf;

/// `$REFERENCE_VECTORS` or `../shared/fixtures` when it holds `file`; otherwise `None` (the
/// test skips) — or a panic when `CI` is set, where the vectors are required.
pub fn fixtures(file: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("REFERENCE_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/fixtures"
            ))
        });
    if dir.join(file).is_file() {
        return Some(dir);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "reference vectors not found at {} (CI is set: they are required)",
            dir.display()
        );
    }
    eprintln!("skipping: reference vectors not found at {}", dir.display());
    None
}
