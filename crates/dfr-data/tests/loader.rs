//! Batching: determinism across thread counts, epochs, resumption, and bad files.

use dfr_data::synth::{generate, SplitCounts, SynthConfig};
use dfr_data::{
    Batch, DataConfig, DataError, EvalTransform, LayoutKind, Loader, LoaderConfig, Split,
    TrainAugment, Transform,
};

fn tiny() -> (tempfile::TempDir, dfr_data::Dataset) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("dffd");
    let counts = SplitCounts {
        real_per_source: 5,
        fake_per_source: 2,
    };
    let cfg = SynthConfig {
        size: 40,
        seed: 3,
        train: counts,
        validation: counts,
        test: counts,
        trace_gain: 1,
    };
    generate(&cfg, &root, false).unwrap();
    let ds = DataConfig::new(&root, LayoutKind::Dffd).scan().unwrap();
    (dir, ds)
}

fn train_loader(ds: &dfr_data::Dataset, threads: usize, max_bad: f64) -> Loader {
    let aug = TrainAugment {
        size: 32,
        ..TrainAugment::default()
    };
    let cfg = LoaderConfig {
        batch_size: 4,
        threads,
        prefetch: 2,
        seed: 11,
        ..LoaderConfig::default()
    };
    Loader::new(
        ds.split(Split::Train),
        Split::Train,
        Transform::Train(aug),
        cfg,
        max_bad,
    )
    .unwrap()
}

fn collect(l: &Loader, epoch: u64, skip: usize) -> Vec<Batch> {
    l.epoch(epoch, skip).collect::<Result<Vec<_>, _>>().unwrap()
}

#[test]
fn batches_are_identical_whatever_the_thread_count() {
    let (_d, ds) = tiny();
    let one = train_loader(&ds, 1, 0.001);
    let two = train_loader(&ds, 2, 0.001);
    for epoch in 0..2 {
        let a = collect(&one, epoch, 0);
        let b = collect(&two, epoch, 0);
        assert_eq!(a.len(), 6, "22 samples in batches of 4");
        assert_eq!(a, b, "epoch {epoch} differs between 1 and 2 threads");
        assert_eq!(a[0].shape, [4, 3, 32, 32]);
        assert_eq!(a.last().unwrap().shape[0], 2);
        assert!(a
            .iter()
            .flat_map(|b| &b.images)
            .all(|v| (0.0..=1.0).contains(v)));
    }
}

#[test]
fn epochs_reshuffle_and_reaugment_and_every_sample_appears_once() {
    let (_d, ds) = tiny();
    let l = train_loader(&ds, 2, 0.001);
    let e0 = collect(&l, 0, 0);
    let e1 = collect(&l, 1, 0);
    let order = |e: &[Batch]| e.iter().flat_map(|b| b.indices.clone()).collect::<Vec<_>>();
    assert_ne!(order(&e0), order(&e1), "order should change between epochs");
    let mut o = order(&e0);
    o.sort();
    assert_eq!(o, (0..22).collect::<Vec<_>>());
    // The same sample is augmented differently in another epoch.
    assert_ne!(l.load_one(0, 0).unwrap(), l.load_one(1, 0).unwrap());
    // Labels follow the samples.
    for b in &e0 {
        for (i, &lab) in b.indices.iter().zip(&b.labels) {
            assert_eq!(lab as usize, l.samples()[*i].label.index());
        }
    }
}

#[test]
fn skipping_batches_resumes_mid_epoch_exactly() {
    let (_d, ds) = tiny();
    let l = train_loader(&ds, 2, 0.001);
    let full = collect(&l, 4, 0);
    let resumed = collect(&l, 4, 2);
    assert_eq!(&full[2..], &resumed[..]);
}

#[test]
fn eval_loader_is_ordered_and_deterministic() {
    let (_d, ds) = tiny();
    let cfg = LoaderConfig {
        batch_size: 5,
        shuffle: false,
        ..LoaderConfig::default()
    };
    let l = Loader::new(
        ds.split(Split::Test),
        Split::Test,
        Transform::Eval(EvalTransform { size: 24 }),
        cfg,
        0.001,
    )
    .unwrap();
    let a = collect(&l, 0, 0);
    let b = collect(&l, 7, 0);
    assert_eq!(a, b, "evaluation does not depend on the epoch");
    assert_eq!(a[0].indices, vec![0, 1, 2, 3, 4]);
}

#[test]
fn corrupt_and_truncated_images_are_skipped_counted_and_listed() {
    let (_d, ds) = tiny();
    let train = ds.split(Split::Train);
    // Truncate one PNG and overwrite another with garbage.
    let bytes = std::fs::read(&train[3].path).unwrap();
    std::fs::write(&train[3].path, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(&train[8].path, b"not a png at all").unwrap();
    let l = train_loader(&ds, 2, 0.1);
    let batches = collect(&l, 0, 0);
    let seen: usize = batches.iter().map(|b| b.len()).sum();
    assert_eq!(seen, 20);
    assert!(batches
        .iter()
        .all(|b| !b.indices.contains(&3) && !b.indices.contains(&8)));
    let bad = l.bad_files().list();
    assert_eq!(bad.len(), 2);
    assert_eq!(bad[0].path, train[3].path);
    // A second epoch does not retry or double-count them.
    let _ = collect(&l, 1, 0);
    assert_eq!(l.bad_files().len(), 2);

    // Above the allowed fraction (0.1% of 22), the epoch aborts naming the files.
    let strict = train_loader(&ds, 2, 0.001);
    let err = strict.epoch(0, 0).find_map(|b| b.err()).expect("an error");
    assert!(matches!(err, DataError::TooManyBadFiles { .. }));
    let msg = err.to_string();
    assert!(msg.contains(&*train[3].path.to_string_lossy()), "{msg}");
}

#[test]
fn zero_batch_size_and_bad_augment_are_rejected() {
    let (_d, ds) = tiny();
    let cfg = LoaderConfig {
        batch_size: 0,
        ..LoaderConfig::default()
    };
    let err = Loader::new(
        ds.split(Split::Train),
        Split::Train,
        Transform::Eval(EvalTransform::default()),
        cfg,
        0.0,
    );
    assert!(err.err().unwrap().to_string().contains("batch_size"));
    let aug = TrainAugment {
        scale: (0.5, 2.0),
        ..TrainAugment::default()
    };
    let err = Loader::new(
        ds.split(Split::Train),
        Split::Train,
        Transform::Train(aug),
        LoaderConfig::default(),
        0.0,
    );
    assert!(err.err().unwrap().to_string().contains("augment.scale"));
}
