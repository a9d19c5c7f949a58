//! Shared test support: the reference-vector directory.

use std::path::PathBuf;

/// The fixture directory when it holds `file`; `None` (the test skips) otherwise — or a
/// failure when `CI` is set, where the vectors are required.
pub fn fixtures(file: &str) -> Option<PathBuf> {
    dfr_parity::fixtures_for_test(file)
}
