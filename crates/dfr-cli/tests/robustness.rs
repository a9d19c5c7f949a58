//! The defects a new user hit, each with a real process: one writer per run directory,
//! quiet exits on closed pipes, `dfr cam` keeping every output, `dfr attack` tolerating
//! unreadable images and checking `--out` first, and input sizes bounded with a reason.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{dfr, stderr, DFR};

/// A tiny synthetic DFFD and a trained 1-epoch checkpoint in `d`.
fn setup(d: &Path) -> &'static str {
    let o = dfr(
        &[
            "data",
            "synth",
            "--out",
            "data",
            "--size",
            "32",
            "--train",
            "2,1",
            "--validation",
            "1,1",
            "--test",
            "1,1",
        ],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(
        d.join("exp.toml"),
        "[run]\nname = \"tiny\"\nresults_dir = \"results\"\n[data]\nroot = \"data\"\n\
         [model]\nimage_size = 32\n[train]\nepochs = 1\nbatch_size = 4\nprogress = false\n",
    )
    .unwrap();
    let o = dfr(&["train", "--config", "exp.toml"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    // logs to a pipe or file carry no colour codes
    assert!(
        !stderr(&o).contains('\u{1b}'),
        "ANSI codes in: {}",
        stderr(&o)
    );
    "results/tiny/best.safetensors"
}

#[test]
fn a_train_split_with_one_class_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);
    let fake = dfr_data::synth::SOURCES
        .iter()
        .filter(|s| !["ffhq", "celeba"].contains(s));
    for src in fake {
        for f in std::fs::read_dir(d.join("data").join(src).join("train")).unwrap() {
            std::fs::remove_file(f.unwrap().path()).unwrap();
        }
    }
    let o = dfr(
        &["train", "--config", "exp.toml", "--set", "run.name=one"],
        d,
    );
    assert!(stderr(&o).contains("only one class"), "{}", stderr(&o));
}

#[test]
fn a_second_training_of_the_same_run_is_refused_naming_the_first_ones_pid() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);
    let long = |name: &str| {
        let mut c = Command::new(DFR);
        c.args(["train", "--config", "exp.toml", "--set"])
            .arg(format!("run.name={name}"))
            .args(["--set", "train.epochs=200"])
            .current_dir(d)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    };
    let mut first = long("busy").spawn().unwrap();
    let lock = d.join("results/busy/.lock");
    let start = Instant::now();
    while !std::fs::read_to_string(&lock).is_ok_and(|s| s.trim() == first.id().to_string()) {
        assert!(start.elapsed() < Duration::from_secs(60), "no lock taken");
        assert!(
            first.try_wait().unwrap().is_none(),
            "first training ended early"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // --resume gets it past "already holds a run" once the first has checkpointed
    let second = dfr(
        &[
            "train",
            "--config",
            "exp.toml",
            "--set",
            "run.name=busy",
            "--set",
            "train.epochs=200",
            "--resume",
        ],
        d,
    );
    let e = stderr(&second);
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(!second.status.success(), "two writers of one run directory");
    assert!(e.contains(&format!("process {}", first.id())), "{e}");
    // the lock dies with its holder: resuming the killed run works
    let again = dfr(
        &[
            "train",
            "--config",
            "exp.toml",
            "--set",
            "run.name=busy",
            "--set",
            "train.epochs=1",
            "--resume",
        ],
        d,
    );
    // (the killed run may or may not have written a resume checkpoint: either way the
    // error, if any, is about the configuration, never the lock)
    assert!(!stderr(&again).contains("in use by"), "{}", stderr(&again));
}

#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = dfr(&["data", "synth", "--out", "data", "--size", "16"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    // `dfr data inspect data | head -0`: the reader is gone before the first line
    let mut child = Command::new(DFR)
        .args(["data", "inspect", "data"])
        .current_dir(d)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let e = stderr(&out);
    assert!(!e.contains("panicked") && !e.contains("Broken pipe"), "{e}");
    assert_ne!(out.status.code(), Some(101), "{e}");
    assert!(
        out.status.success() || out.status.signal() == Some(libc::SIGPIPE),
        "{:?}: {e}",
        out.status
    );
}

#[test]
fn cam_keeps_every_output_and_records_unreadable_images() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ckpt = setup(d);
    // two different images with the same file name, and one unreadable file
    std::fs::create_dir_all(d.join("a")).unwrap();
    std::fs::create_dir_all(d.join("b")).unwrap();
    std::fs::copy(d.join("data/ffhq/test/ffhq_00000.png"), d.join("a/x.png")).unwrap();
    std::fs::copy(
        d.join("data/stargan/test/stargan_00000.png"),
        d.join("b/x.png"),
    )
    .unwrap();
    std::fs::write(d.join("bad.png"), b"not a png").unwrap();
    let o = dfr(
        &[
            "cam",
            "--checkpoint",
            ckpt,
            "--images",
            "a/x.png",
            "bad.png",
            "b/x.png",
            "--out",
            "cam",
        ],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let cam: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("cam/cam.json")).unwrap()).unwrap();
    let entries = cam.as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert!(entries[1]["error"].as_str().is_some(), "{cam}");
    let overlays: Vec<&str> = [0, 2]
        .iter()
        .map(|&i| entries[i]["clean_overlay"].as_str().unwrap())
        .collect();
    assert_ne!(overlays[0], overlays[1], "overlays overwrite each other");
    assert!(overlays
        .iter()
        .all(|p| d.join(p).is_file() || Path::new(p).is_file()));
}

#[test]
fn attack_skips_unreadable_images_when_allowed_and_checks_out_first() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ckpt = setup(d);
    std::fs::write(d.join("data/ffhq/test/ffhq_00000.png"), b"broken").unwrap();
    let base = [
        "attack",
        "--checkpoint",
        ckpt,
        "--data",
        "data",
        "--attack",
        "fgsm",
        "--eps",
        "0.01",
    ];
    // refused by default, allowed with --max-bad-fraction
    let o = dfr(&base, d);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("ffhq_00000.png"), "{}", stderr(&o));
    let mut tolerant = base.to_vec();
    tolerant.extend(["--max-bad-fraction", "0.2", "--out", "att"]);
    let o = dfr(&tolerant, d);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(d.join("att/report.json").is_file());
    // an --out that cannot be written is reported before the evaluation
    std::fs::write(d.join("file"), b"x").unwrap();
    let mut bad_out = base.to_vec();
    bad_out.extend(["--out", "file/sub"]);
    let t = Instant::now();
    let o = dfr(&bad_out, d);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--out"), "{}", stderr(&o));
    assert!(
        !stderr(&o).contains("robust evaluation"),
        "it evaluated first"
    );
    assert!(t.elapsed() < Duration::from_secs(60));
}

#[test]
fn input_sizes_are_bounded_with_a_reason_and_arch_is_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ckpt = setup(d);
    let img = "data/ffhq/test/ffhq_00000.png";
    for size in ["1", "4096"] {
        let o = dfr(&["predict", "--weights", ckpt, "--size", size, img], d);
        assert!(!o.status.success(), "--size {size} accepted");
        assert!(stderr(&o).contains("between 16 and 1024"), "{}", stderr(&o));
    }
    let o = dfr(
        &[
            "cam",
            "--checkpoint",
            ckpt,
            "--images",
            img,
            "--out",
            "c",
            "--image-size",
            "2",
        ],
        d,
    );
    assert!(stderr(&o).contains("between 16 and 1024"), "{}", stderr(&o));
    let o = dfr(
        &[
            "attack",
            "--checkpoint",
            ckpt,
            "--data",
            "data",
            "--image-size",
            "1",
        ],
        d,
    );
    assert!(stderr(&o).contains("between 16 and 1024"), "{}", stderr(&o));
    // the checkpoint is B0; asking for another architecture is an error, not ignored
    let o = dfr(&["predict", "--weights", ckpt, "--arch", "lite0", img], d);
    assert!(
        !o.status.success() && stderr(&o).contains("--arch"),
        "{}",
        stderr(&o)
    );
    // a trace gain that is not a whole number names the range
    let o = dfr(&["data", "synth", "--out", "x", "--trace-gain", "2.5"], d);
    assert!(
        stderr(&o).contains("whole number from 1 to 20"),
        "{}",
        stderr(&o)
    );
}
