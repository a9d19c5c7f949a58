//! Shared test support: running the `dfr` binary.

use std::path::Path;
use std::process::{Command, Output};

/// The `dfr` binary under test.
pub const DFR: &str = env!("CARGO_BIN_EXE_dfr");

/// Runs `dfr ARGS` in `cwd` and returns its output.
pub fn dfr(args: &[&str], cwd: &Path) -> Output {
    Command::new(DFR)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

/// The process's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
