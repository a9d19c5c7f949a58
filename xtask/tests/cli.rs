//! The xtask command line as a user meets it: closed pipes, conflicting flags, ranges and
//! help texts.

use std::process::{Command, Output, Stdio};

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

fn xtask(args: &[&str]) -> Output {
    Command::new(XTASK)
        .args(args)
        .current_dir(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap()
}

#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_the_cell_list_quietly() {
    let dir = tempfile::tempdir().unwrap();
    // `cargo xtask ablation --list | head -0`
    let mut child = Command::new(XTASK)
        .args(["ablation", "--list", "--results-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!e.contains("panicked"), "{e}");
    assert_ne!(out.status.code(), Some(101), "{e}");
}

#[test]
fn conflicting_or_out_of_range_flags_are_refused_and_help_names_the_right_default() {
    let o = xtask(&["ablation", "--list", "--cell", "3"]);
    assert!(!o.status.success(), "--list silently ignored --cell");
    let o = xtask(&["bench", "data", "--epochs", "0"]);
    assert!(!o.status.success(), "--epochs 0 accepted");
    let o = xtask(&["synth-data", "--trace-gain", "2.5"]);
    assert!(!o.status.success());
    let help = String::from_utf8_lossy(&xtask(&["ablation", "--help"]).stdout).into_owned();
    assert!(help.contains("ablation.toml"), "{help}");
}
