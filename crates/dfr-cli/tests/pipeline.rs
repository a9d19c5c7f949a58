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

    // Cross-dataset evaluation: frame-level on the DFFD tree (the same clean AUC as the
    // attack's report), then video-level on a CSV manifest of the same frames grouped into
    // videos, checked against the mean of `dfr predict`'s frame probabilities per video.
    let ev = ok(&dfr(
        &[
            "eval",
            "--checkpoint",
            ckpt,
            "--data",
            "data",
            "--out",
            "eval/dffd.json",
        ],
        d,
    ));
    assert!(ev.contains("frame") && !ev.contains("video"), "{ev}");
    let e: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("eval/dffd.json")).unwrap()).unwrap();
    assert_eq!(e["images"].as_u64(), Some(10));
    assert!(e["video"].is_null());
    let clean_auc = report["clean"]["roc_auc"].as_f64().unwrap();
    assert!(
        (e["frame"]["roc_auc"].as_f64().unwrap() - clean_auc).abs() < 1e-9,
        "{e} vs {report}"
    );
    let frames = [
        ("ffhq/test/ffhq_00000.png", "real", "r1"),
        ("ffhq/test/ffhq_00001.png", "real", "r1"),
        ("celeba/test/celeba_00000.png", "real", "r2"),
        ("celeba/test/celeba_00001.png", "real", "r2"),
        ("pggan_v1/test/pggan_v1_00000.png", "fake", "f1"),
        ("pggan_v2/test/pggan_v2_00000.png", "fake", "f1"),
        ("stargan/test/stargan_00000.png", "fake", "f2"),
        ("faceapp/test/faceapp_00000.png", "fake", "f2"),
        ("stylegan_ffhq/test/stylegan_ffhq_00000.png", "fake", "f3"),
    ];
    let mut manifest = String::from("path,label,split,video\n");
    for (p, l, v) in frames {
        manifest.push_str(&format!("{p},{l},test,{v}\n"));
    }
    std::fs::write(d.join("data/frames.csv"), &manifest).unwrap();
    let ev = ok(&dfr(
        &[
            "eval",
            "--checkpoint",
            ckpt,
            "--data",
            "data/frames.csv",
            "--layout",
            "csv",
            "--out",
            "eval/frames.json",
        ],
        d,
    ));
    assert!(ev.contains("video"), "{ev}");
    let e: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("eval/frames.json")).unwrap())
            .unwrap();
    assert_eq!(
        (e["images"].as_u64(), e["videos"].as_u64()),
        (Some(9), Some(5))
    );
    let mut args = vec!["predict", "--weights", ckpt, "--json"];
    let paths: Vec<String> = frames.iter().map(|(p, _, _)| format!("data/{p}")).collect();
    args.extend(paths.iter().map(String::as_str));
    let probs: serde_json::Value = serde_json::from_str(&ok(&dfr(&args, d))).unwrap();
    let (mut labels, mut scores) = (vec![], vec![]);
    for v in ["r1", "r2", "f1", "f2", "f3"] {
        let of: Vec<f64> = frames
            .iter()
            .enumerate()
            .filter(|(_, f)| f.2 == v)
            .map(|(i, _)| probs[i]["fake"].as_f64().unwrap())
            .collect();
        labels.push(u32::from(v.starts_with('f')));
        scores.push(of.iter().sum::<f64>() / of.len() as f64);
    }
    let want = dfr_metrics::roc_auc(&labels, &scores).unwrap();
    let got = e["video"]["roc_auc"].as_f64().unwrap();
    assert!(
        (got - want).abs() < 1e-6,
        "video AUC {got}, from predict {want}"
    );
    // a frame without its video id, and a video with real and fake frames
    std::fs::write(d.join("data/bad.csv"), manifest.replace(",r2\n", ",\n")).unwrap();
    let e = err(&dfr(
        &[
            "eval",
            "--checkpoint",
            ckpt,
            "--data",
            "data/bad.csv",
            "--layout",
            "csv",
        ],
        d,
    ));
    assert!(e.contains("bad.csv:4") && e.contains("video"), "{e}");
    std::fs::write(d.join("data/mixed.csv"), manifest.replace(",f1\n", ",r1\n")).unwrap();
    let e = err(&dfr(
        &[
            "eval",
            "--checkpoint",
            ckpt,
            "--data",
            "data/mixed.csv",
            "--layout",
            "csv",
        ],
        d,
    ));
    assert!(
        e.contains("video `r1`") && e.contains("real and fake"),
        "{e}"
    );
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
