//! What a user running, killing and resuming trainings must be able to rely on: exact resume
//! across unreadable images, recorded bad files, checks before anything is written, resume
//! keys named, changed data detected, stale temporary files removed, and weight files named
//! in errors.

use crate::common::{config, dataset, tensors};
use dfr_train::trainer::{files, train, TrainOptions};
use dfr_train::ExperimentConfig;
use std::path::{Path, PathBuf};

fn stop_after(steps: usize) -> TrainOptions {
    TrainOptions {
        stop_after_steps: Some(steps),
        ..Default::default()
    }
}

fn resume() -> TrainOptions {
    TrainOptions {
        resume: true,
        ..Default::default()
    }
}

fn corrupt(path: &Path) {
    std::fs::write(path, b"not an image").unwrap();
}

fn train_image(root: &Path, source: &str, i: usize) -> PathBuf {
    let dir = root.join(source).join("train");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files[i].clone()
}

#[test]
fn resume_is_exact_when_unreadable_images_fill_whole_batches() {
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path());
    // batch size 1: each unreadable image is a whole batch the loader never delivers
    corrupt(&train_image(&root, "ffhq", 0));
    corrupt(&train_image(&root, "stargan", 0));
    corrupt(&train_image(&root, "pggan_v1", 0));
    let extra = [
        "train.batch_size=1",
        "data.max_bad_fraction=0.5",
        "train.checkpoint_every=0",
    ];
    let full = train(
        &config(dir.path(), "full", &extra),
        &TrainOptions::default(),
    )
    .unwrap();
    assert_eq!(full.steps, 2 * 9, "9 readable images per epoch");
    // stopped twice mid-epoch, resumed each time
    let cut = config(dir.path(), "cut", &extra);
    let first = train(&cut, &stop_after(5)).unwrap();
    assert_eq!(first.steps, 5);
    assert!(
        first.stop_reason.contains("stopped after 5 steps"),
        "{}",
        first.stop_reason
    );
    let mut opts = resume();
    opts.stop_after_steps = Some(13);
    assert_eq!(train(&cut, &opts).unwrap().steps, 13);
    let done = train(&cut, &resume()).unwrap();
    assert_eq!(done.steps, full.steps);
    let run = |n: &str| dir.path().join("results").join(n);
    assert_eq!(
        tensors(&run("full").join(files::LAST)),
        tensors(&run("cut").join(files::LAST)),
        "resumed weights differ from the uninterrupted run"
    );
    for (a, b) in full.epochs.iter().zip(&done.epochs) {
        assert_eq!((a.val_loss, a.train_loss), (b.val_loss, b.train_loss));
    }
    // every skipped file is in the run's data report
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run("cut").join(files::DATA_REPORT)).unwrap(),
    )
    .unwrap();
    let bad = report["bad_files"].as_array().expect("bad_files listed");
    assert_eq!(bad.len(), 3, "{bad:?}");
    assert!(bad.iter().all(|b| b["error"].as_str().is_some()));
}

#[test]
fn a_bad_validation_image_or_weight_file_fails_before_the_run_directory_exists() {
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path());
    let run_dir = dir.path().join("results/bad");
    // a weight file that is not one (and a directory), named in the error
    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"\xff\xff\xff\xff\xff\xff\xff\xffgarbage").unwrap();
    for w in [junk.clone(), dir.path().to_path_buf()] {
        let cfg = config(
            dir.path(),
            "bad",
            &[&format!("model.weights=\"{}\"", w.display())],
        );
        let e = train(&cfg, &TrainOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains(&w.display().to_string()), "{e}");
        assert!(
            !run_dir.exists(),
            "a failed start left {}",
            run_dir.display()
        );
    }
    // an unreadable validation image: refused before training, nothing written
    let val = root.join("celeba/validation");
    let first = std::fs::read_dir(&val)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    corrupt(&first);
    let e = train(&config(dir.path(), "bad", &[]), &TrainOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("validation"), "{e}");
    assert!(!run_dir.exists());
}

#[test]
fn run_names_that_leave_the_results_directory_are_refused() {
    for name in [".", "..", "", " x", "a/b"] {
        let e = ExperimentConfig::from_toml_str("", &[format!("run.name=\"{name}\"")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("run.name"), "{name:?}: {e}");
    }
}

#[test]
fn resume_names_changed_keys_accepts_harmless_ones_and_detects_changed_data() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "r", &[]);
    train(&cfg, &stop_after(1)).unwrap();
    // a changed learning rate is refused, naming the key
    let lr = config(dir.path(), "r", &["train.lr=5e-4"]);
    let e = train(&lr, &resume()).unwrap_err().to_string();
    assert!(
        e.contains("train.lr") && !e.contains("train.progress"),
        "{e}"
    );
    // progress bar, threads and prefetch do not change what is computed
    let harmless = config(
        dir.path(),
        "r",
        &[
            "train.threads=1",
            "train.prefetch=3",
            "train.progress=false",
        ],
    );
    let mut opts = resume();
    opts.stop_after_steps = Some(2);
    assert_eq!(train(&harmless, &opts).unwrap().steps, 2);
    // a changed data set is detected
    let root = dir.path().join("data");
    let extra = root.join("ffhq/train/zz_extra.png");
    std::fs::copy(train_image(&root, "ffhq", 1), &extra).unwrap();
    let e = train(&cfg, &resume()).unwrap_err().to_string();
    assert!(e.contains("data set changed"), "{e}");
    std::fs::remove_file(&extra).unwrap();
    // restored: resumes
    assert!(train(&cfg, &resume()).is_ok());
}

#[test]
fn stale_temporary_files_are_removed_and_a_damaged_log_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "t", &[]);
    train(&cfg, &stop_after(1)).unwrap();
    let run = dir.path().join("results/t");
    // what a write killed mid-way leaves behind
    let stale = run.join(".resume.safetensors.Ab12Cd.tmp");
    std::fs::write(&stale, vec![0u8; 1 << 16]).unwrap();
    let mut opts = resume();
    opts.stop_after_steps = Some(2);
    train(&cfg, &opts).unwrap();
    assert!(!stale.exists(), "stale temporary file left");
    // finish epoch 1, then damage its log line
    opts.stop_after_steps = Some(4);
    train(&cfg, &opts).unwrap();
    let log = run.join(files::METRICS_JSONL);
    assert!(std::fs::read_to_string(&log).unwrap().lines().count() >= 1);
    std::fs::write(&log, "{\"epoch\": 0, truncated\n").unwrap();
    let e = train(&cfg, &resume()).unwrap_err().to_string();
    assert!(e.contains("metrics.jsonl") && e.contains("line 1"), "{e}");
}
