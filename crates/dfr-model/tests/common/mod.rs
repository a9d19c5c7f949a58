//! Shared test helpers (included with `mod common;`).
#![allow(dead_code)]

use std::path::PathBuf;

/// The fixture directory, or `None` (with a notice) when it is missing and `CI` is
/// unset. Panics when it is missing and `CI` is set.
pub fn fixtures() -> Option<PathBuf> {
    let d = dfr_model::parity::default_fixtures_dir();
    if d.is_dir() {
        return Some(d);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "fixture directory {} is missing (set REFERENCE_VECTORS); CI is set, so this is an error",
            d.display()
        );
    }
    eprintln!(
        "NOTICE: fixture directory {} is missing; skipping (set REFERENCE_VECTORS)",
        d.display()
    );
    None
}
