//! Shared test helpers (included with `mod common;`).

use std::path::PathBuf;

/// The fixture directory, or `None` (with a notice) when it is missing and `CI` is
/// unset; fails the test when it is missing and `CI` is set.
pub fn fixtures() -> Option<PathBuf> {
    dfr_parity::fixtures_for_test("")
}
