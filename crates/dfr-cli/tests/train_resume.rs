//! A training process killed with SIGKILL and restarted with `--resume` ends with exactly the
//! weights of an uninterrupted run.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::DFR;

fn tensors(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(n, v)| (n, v.data().to_vec()))
        .collect()
}

fn global_step(resume: &Path) -> Option<u64> {
    let bytes = std::fs::read(resume).ok()?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).ok()?;
    let state = meta.metadata().as_ref()?.get("train_state")?.clone();
    serde_json::from_str::<serde_json::Value>(&state).ok()?["global_step"].as_u64()
}

#[test]
fn sigkill_then_resume_matches_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("data");
    let out = Command::new(DFR)
        .args([
            "data",
            "synth",
            "--size",
            "32",
            "--train",
            "4,2",
            "--validation",
            "2,1",
            "--test",
            "1,1",
            "--out",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = d.join("exp.toml");
    std::fs::write(
        &cfg,
        format!(
            "[run]\nresults_dir = \"{}\"\n[data]\nroot = \"{}\"\n[model]\nimage_size = 32\n\
             [train]\nstrategy = \"gradreg\"\nepochs = 3\nbatch_size = 4\nlr = 1e-3\n\
             checkpoint_every = 1\nprogress = false\nthreads = 1\n",
            d.join("results").display(),
            data.display()
        ),
    )
    .unwrap();
    let train = |name: &str, resume: bool| {
        let mut c = Command::new(DFR);
        c.args(["train", "--config"])
            .arg(&cfg)
            .args(["--set", &format!("run.name={name}")]);
        if resume {
            c.arg("--resume");
        }
        c
    };

    // Uninterrupted reference run.
    let st = train("full", false).output().unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );

    // Interrupted run: kill it once it has written a mid-run checkpoint.
    let resume = d.join("results/killed/resume.safetensors");
    let mut child = train("killed", false).spawn().unwrap();
    let t0 = Instant::now();
    loop {
        if global_step(&resume).is_some_and(|s| s >= 2) {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "training ended before it could be killed"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    let killed_at = global_step(&resume).unwrap();
    assert!(
        !d.join("results/killed/summary.json").exists(),
        "the run finished before the kill"
    );
    assert!(killed_at < 9, "killed mid-run (step {killed_at} of 9)");

    let st = train("killed", true).output().unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    assert_eq!(
        tensors(&d.join("results/full/last.safetensors")),
        tensors(&d.join("results/killed/last.safetensors")),
        "resumed weights differ from the uninterrupted run (killed at step {killed_at})"
    );
    let metrics = |n: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(d.join(format!("results/{n}/metrics.jsonl")))
            .unwrap()
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("images_per_second");
                v
            })
            .collect()
    };
    assert_eq!(metrics("full"), metrics("killed"));
}
