//! The command line end to end on a tiny synthetic DFFD: synth → inspect → train → predict →
//! attack → cam, plus clear errors for bad input.

use std::process::Output;

use crate::common::dfr;

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn err(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "expected failure: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn synth_train_predict_attack_cam() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&dfr(
        &[
            "data",
            "synth",
            "--out",
            "data",
            "--size",
            "32",
            "--train",
            "3,1",
            "--validation",
            "2,1",
            "--test",
            "2,1",
        ],
        d,
    ));
    let inspect = ok(&dfr(&["data", "inspect", "data", "--verify"], d));
    assert!(
        inspect.contains("stylegan_ffhq") && inspect.contains("bad files: none"),
        "{inspect}"
    );
    std::fs::write(
        d.join("exp.toml"),
        "[run]\nname = \"tiny\"\nresults_dir = \"results\"\n[data]\nroot = \"data\"\n\
         [model]\nimage_size = 32\n[train]\nepochs = 1\nbatch_size = 4\nlr = 1e-3\nprogress = false\n",
    )
    .unwrap();
    let train = ok(&dfr(&["train", "--config", "exp.toml"], d));
    assert!(train.contains("completed 1 epochs"), "{train}");
    let ckpt = "results/tiny/best.safetensors";

    let pred = ok(&dfr(
        &[
            "predict",
            "--weights",
            ckpt,
            "--json",
            "data/ffhq/test/ffhq_00000.png",
        ],
        d,
    ));
    let v: serde_json::Value = serde_json::from_str(&pred).unwrap();
    let p = v[0]["real"].as_f64().unwrap() + v[0]["fake"].as_f64().unwrap();
    assert!((p - 1.0).abs() < 1e-5, "{pred}");

    let att = ok(&dfr(
        &[
            "attack",
            "--checkpoint",
            ckpt,
            "--data",
            "data",
            "--attack",
            "fgsm,pgd",
            "--eps",
            "0.001,0.01",
            "--steps",
            "2",
            "--out",
            "attack",
        ],
        d,
    ));
    assert!(
        att.contains("eps0_reproduces_clean") && att.contains("linf_within_eps"),
        "{att}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("attack/report.json")).unwrap())
            .unwrap();
    assert_eq!(report["n_samples"].as_u64(), Some(10));
    assert!(d.join("attack/report.csv").is_file());

    let cam = ok(&dfr(
        &[
            "cam",
            "--checkpoint",
            ckpt,
            "--images",
            "data/pggan_v1/test/pggan_v1_00000.png",
            "--attack",
            "fgsm",
            "--eps",
            "0.01",
            "--out",
            "cam",
        ],
        d,
    ));
    assert!(cam.contains("NC↓"), "{cam}");
    for f in [
        "0000_pggan_v1_00000_clean.png",
        "0000_pggan_v1_00000_fgsm_0.01.png",
        "cam.json",
    ] {
        assert!(d.join("cam").join(f).is_file(), "{f} missing");
    }
    let img = image::open(d.join("cam/0000_pggan_v1_00000_clean.png")).unwrap();
    assert_eq!((img.width(), img.height()), (32, 32));
}

#[test]
fn bad_input_gets_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let e = err(&dfr(&["data", "inspect", "missing"], d));
    assert!(
        e.contains("missing") && e.contains("<root>/<source>"),
        "{e}"
    );
    std::fs::write(d.join("bad.toml"), "[train]\nlearning_rate = 1\n").unwrap();
    let e = err(&dfr(&["train", "--config", "bad.toml"], d));
    assert!(e.contains("bad.toml") && e.contains("learning_rate"), "{e}");
    std::fs::write(d.join("alpha.toml"), "").unwrap();
    let e = err(&dfr(
        &[
            "train",
            "--config",
            "alpha.toml",
            "--set",
            "gradreg.alpha=2",
        ],
        d,
    ));
    assert!(e.contains("gradreg.alpha"), "{e}");
    let e = err(&dfr(&["train", "--config", "nope.toml"], d));
    assert!(e.contains("nope.toml"), "{e}");
    let e = err(&dfr(
        &["attack", "--checkpoint", "nope.safetensors", "--data", "."],
        d,
    ));
    assert!(e.contains("nope.safetensors"), "{e}");
    let e = err(&dfr(
        &["predict", "--weights", "x.safetensors", "img.png"],
        d,
    ));
    assert!(e.contains("--arch"), "{e}");
}
